import Collections
import Foundation

/// Nearest cached entry by cosine similarity, within a partition (a tenant and a hash of
/// everything but the text that is embedded), in memory.
///
/// A linear scan of 100,000 float vectors reads 150 MB: too slow for a cache lookup. Each vector
/// also keeps its signs as bits (48 bytes for 384 dimensions). Two unit vectors at cosine `c`
/// differ in about `acos(c) / π` of their sign bits, so entries whose bit distance is well past
/// what the threshold allows cannot be hits and are skipped; only the few near ones have their
/// floats compared. The bound has a wide margin (mean + 5 standard deviations + 8 bits), so the
/// filter loses practically no true hits.
public struct SemanticIndex: Sendable {
    /// A hit: the entry's key and its similarity.
    public struct Match: Sendable, Hashable {
        public var key: String
        public var similarity: Float
    }

    /// The vectors' length; 0 until the first insert when not given.
    public private(set) var dimensions: Int
    public let capacity: Int
    private var words: Int
    private var partitions: [String: Partition] = [:]
    /// Every key in insertion order, for evicting the oldest past `capacity`.
    private var order: Deque<(key: String, partition: String)> = []
    private var locations: [String: String] = [:]

    struct Partition: Sendable {
        var keys: [String] = []
        var bits: [UInt64] = []
        var vectors: [Float] = []
        var expiresAt: [Double] = []
        var slot: [String: Int] = [:]

        mutating func append(key: String, bits newBits: [UInt64], vector: [Float], expiresAt t: Double) {
            slot[key] = keys.count
            keys.append(key)
            bits.append(contentsOf: newBits)
            vectors.append(contentsOf: vector)
            expiresAt.append(t)
        }

        /// Swap-remove: the last entry moves into the hole. Returns whether the partition is now empty.
        mutating func remove(key: String, words: Int, dimensions: Int) -> Bool {
            guard let i = slot.removeValue(forKey: key) else { return keys.isEmpty }
            let last = keys.count - 1
            if i != last {
                let moved = keys[last]
                keys[i] = moved
                slot[moved] = i
                expiresAt[i] = expiresAt[last]
                for w in 0..<words { bits[i * words + w] = bits[last * words + w] }
                for d in 0..<dimensions { vectors[i * dimensions + d] = vectors[last * dimensions + d] }
            }
            keys.removeLast()
            expiresAt.removeLast()
            bits.removeLast(words)
            vectors.removeLast(dimensions)
            return keys.isEmpty
        }
    }

    /// An empty index; `dimensions` 0 takes the first inserted vector's length.
    public init(dimensions: Int = 0, capacity: Int) {
        self.dimensions = dimensions
        self.capacity = max(1, capacity)
        self.words = (dimensions + 63) / 64
    }

    /// Entries held.
    public var count: Int { locations.count }

    /// Adds (or replaces) an entry; past `capacity` the oldest entries go.
    public mutating func insert(key: String, partition: String, vector: [Float], expiresAt: Double) {
        if dimensions == 0 && !vector.isEmpty {
            dimensions = vector.count
            words = (dimensions + 63) / 64
        }
        guard vector.count == dimensions else { return }
        if locations[key] != nil { remove(key: key) }
        let unit = Self.normalised(vector)
        let bits = Self.signBits(unit, words: words)
        // In place: a copy of the partition per insert would make filling the index quadratic.
        partitions[partition, default: Partition()].append(key: key, bits: bits, vector: unit, expiresAt: expiresAt)
        locations[key] = partition
        order.append((key, partition))
        while locations.count > capacity, let oldest = order.popFirst() {
            if locations[oldest.key] == oldest.partition { remove(key: oldest.key) }
        }
        // Keys removed or replaced leave stale entries in `order`; keep it from growing unbounded.
        if order.count > 2 * capacity + 1024 {
            order = Deque(order.filter { locations[$0.key] == $0.partition })
        }
    }

    /// Removes an entry, if held.
    public mutating func remove(key: String) {
        guard let name = locations.removeValue(forKey: key), partitions[name] != nil else { return }
        let (words, dimensions) = (self.words, self.dimensions)
        let empty = partitions[name]!.remove(key: key, words: words, dimensions: dimensions)
        if empty { partitions[name] = nil }
    }

    /// Drops every entry that expired at or before `now`; returns how many went.
    @discardableResult
    public mutating func removeExpired(now: Double) -> Int {
        var expired: [String] = []
        for p in partitions.values {
            for (i, t) in p.expiresAt.enumerated() where t <= now { expired.append(p.keys[i]) }
        }
        for key in expired { remove(key: key) }
        return expired.count
    }

    /// The most similar unexpired entry of `partition` at or above `threshold`, if any.
    public func nearest(to vector: [Float], partition: String, threshold: Float, now: Double) -> Match? {
        guard vector.count == dimensions, let p = partitions[partition] else { return nil }
        let query = Self.normalised(vector)
        let queryBits = Self.signBits(query, words: words)
        let allowed = Self.maxBitDistance(threshold: threshold, dimensions: dimensions)
        var best: Match?
        query.withUnsafeBufferPointer { q in
            p.vectors.withUnsafeBufferPointer { vectors in
                p.bits.withUnsafeBufferPointer { bits in
                    for i in 0..<p.keys.count {
                        var distance = 0
                        for w in 0..<words { distance &+= (bits[i * words + w] ^ queryBits[w]).nonzeroBitCount }
                        guard distance <= allowed, p.expiresAt[i] > now else { continue }
                        var dot: Float = 0
                        let base = i * dimensions
                        for d in 0..<dimensions { dot += q[d] * vectors[base + d] }
                        if dot >= threshold, dot > (best?.similarity ?? -2) { best = Match(key: p.keys[i], similarity: dot) }
                    }
                }
            }
        }
        return best
    }

    /// Sign bits past which two unit vectors cannot reach cosine `threshold`, with a margin.
    static func maxBitDistance(threshold: Float, dimensions: Int) -> Int {
        let angle = acos(min(max(Double(threshold), -1), 1))
        let share = angle / Double.pi
        let mean = share * Double(dimensions)
        let sd = (Double(dimensions) * share * (1 - share)).squareRoot()
        return min(dimensions, Int((mean + 5 * sd + 8).rounded(.up)))
    }

    /// `v` scaled to unit length (unchanged when zero).
    public static func normalised(_ v: [Float]) -> [Float] {
        var norm: Float = 0
        for x in v { norm += x * x }
        norm = norm.squareRoot()
        return norm > 0 ? v.map { $0 / norm } : v
    }

    static func signBits(_ v: [Float], words: Int) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: words)
        for (i, x) in v.enumerated() where x > 0 { out[i / 64] |= 1 << UInt64(i % 64) }
        return out
    }
}
