import Foundation

/// Approximate nearest neighbours by inner product over unit vectors (cosine similarity):
/// a hierarchical navigable small-world graph (Malkov & Yashunin), as hnswlib builds it — a
/// layered graph, greedy descent through the sparse upper layers, a best-first search of width
/// `ef` on the bottom one, neighbours chosen with the diversity heuristic. Nodes are numbered in
/// insertion order; a removed node stays in the graph as a waypoint but is never a result.
/// Not thread-safe: its owner serialises writers (searches only read).
public struct HNSWGraph: Sendable {
    public let dimensions: Int
    /// Links per node on the upper layers (twice as many on the bottom layer).
    public let m: Int
    public let efConstruction: Int
    private let levelScale: Double

    /// Vectors, unit length, `dimensions` floats per node.
    public private(set) var vectors: [Float] = []
    private var bottom: [Int32] = []
    private var bottomCount: [UInt8] = []
    /// `upper[node][level - 1]`: the node's links on layers above the bottom one.
    private var upper: [[[Int32]]] = []
    private var entry: Int32 = -1
    private var topLevel = -1
    public private(set) var removed: [Bool] = []
    public private(set) var removedCount = 0
    private var random: UInt64

    public init(dimensions: Int, m: Int = 16, efConstruction: Int = 100, seed: UInt64 = 0x5EED) {
        self.dimensions = dimensions
        self.m = max(2, m)
        self.efConstruction = max(efConstruction, m)
        self.levelScale = 1 / log(Double(max(2, m)))
        self.random = seed | 1
    }

    /// Nodes, removed ones included.
    public var count: Int { removed.count }
    public var liveCount: Int { removed.count - removedCount }
    private var m0: Int { 2 * m }

    /// Adds a vector (normalised here); answers its node number.
    @discardableResult
    public mutating func insert(_ vector: [Float]) -> Int32 {
        precondition(vector.count == dimensions, "vector has \(vector.count) dimensions, the graph \(dimensions)")
        let node = Int32(count)
        vectors.append(contentsOf: VectorMath.normalised(vector))
        bottom.append(contentsOf: repeatElement(-1, count: m0))
        bottomCount.append(0)
        removed.append(false)
        let level = drawLevel()
        upper.append(Array(repeating: [], count: level))
        guard entry >= 0 else {
            entry = node
            topLevel = level
            return node
        }
        // The new node's vector is the query of its own searches.
        let query = Array(vectors[(Int(node) * dimensions)..<((Int(node) + 1) * dimensions)])
        query.withUnsafeBufferPointer { qp in
            let q = qp.baseAddress!
            var point = entry
            var pointSimilarity = similarity(q, point)
            if topLevel > level {
                for layer in stride(from: topLevel, to: level, by: -1) {
                    greedy(q, from: &point, similarity: &pointSimilarity, layer: layer)
                }
            }
            var entries = [(pointSimilarity, point)]
            for layer in stride(from: min(level, topLevel), through: 0, by: -1) {
                let found = searchLayer(q, entries: entries, ef: efConstruction, layer: layer, allow: nil)
                let chosen = selectNeighbours(found, limit: m)
                setLinks(node, layer: layer, chosen.map(\.1))
                for (_, other) in chosen { link(other, to: node, layer: layer) }
                entries = found
            }
        }
        if level > topLevel {
            topLevel = level
            entry = node
        }
        return node
    }

    /// Takes a node out of every result (it still routes searches).
    public mutating func remove(_ node: Int32) {
        guard node >= 0, Int(node) < count, !removed[Int(node)] else { return }
        removed[Int(node)] = true
        removedCount += 1
    }

    /// The `k` nodes most similar to `query` among those `allow` admits (all live ones when nil),
    /// best first; `ef` (at least `k`) trades time for recall.
    public func search(_ query: [Float], k: Int, ef: Int, allow: ((Int32) -> Bool)? = nil) -> [(similarity: Float, node: Int32)] {
        guard entry >= 0, k > 0, query.count == dimensions else { return [] }
        let q = VectorMath.normalised(query)
        return q.withUnsafeBufferPointer { qp in
            var point = entry
            var pointSimilarity = similarity(qp.baseAddress!, point)
            for layer in stride(from: topLevel, to: 0, by: -1) {
                greedy(qp.baseAddress!, from: &point, similarity: &pointSimilarity, layer: layer)
            }
            let removed = self.removed
            let admit: (Int32) -> Bool = { node in !removed[Int(node)] && (allow?(node) ?? true) }
            let found = searchLayer(qp.baseAddress!, entries: [(pointSimilarity, point)], ef: max(ef, k), layer: 0, allow: admit)
            return Array(found.prefix(k)).map { (similarity: $0.0, node: $0.1) }
        }
    }

    /// Exact search over the given nodes (for selective filters and for checking the graph).
    public func exhaustive(_ query: [Float], k: Int, among nodes: some Sequence<Int32>) -> [(similarity: Float, node: Int32)] {
        let q = VectorMath.normalised(query)
        var heap = TopK(capacity: k)
        q.withUnsafeBufferPointer { qp in
            for node in nodes where Int(node) < count && !removed[Int(node)] {
                heap.offer(similarity(qp.baseAddress!, node), node)
            }
        }
        return heap.sorted().map { (similarity: $0.0, node: $0.1) }
    }

    /// Cosine similarity of a query to one node.
    public func similarity(_ query: [Float], to node: Int32) -> Float {
        let q = VectorMath.normalised(query)
        return q.withUnsafeBufferPointer { similarity($0.baseAddress!, node) }
    }

    // MARK: Internals

    private mutating func drawLevel() -> Int {
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        let unit = Double(random >> 11) / Double(1 << 53)
        return min(16, Int(-log(max(unit, 1e-12)) * levelScale))
    }

    @inline(__always)
    private func similarity(_ a: Int32, _ b: Int32) -> Float {
        vectors.withUnsafeBufferPointer { v in
            VectorMath.dot(v.baseAddress! + Int(a) * dimensions, v.baseAddress! + Int(b) * dimensions, dimensions)
        }
    }

    @inline(__always)
    private func similarity(_ q: UnsafePointer<Float>, _ b: Int32) -> Float {
        vectors.withUnsafeBufferPointer { v in VectorMath.dot(q, v.baseAddress! + Int(b) * dimensions, dimensions) }
    }

    private func links(_ node: Int32, layer: Int) -> ArraySlice<Int32> {
        if layer == 0 {
            let start = Int(node) * m0
            return bottom[start..<(start + Int(bottomCount[Int(node)]))]
        }
        let levels = upper[Int(node)]
        return layer - 1 < levels.count ? levels[layer - 1][...] : []
    }

    private mutating func setLinks(_ node: Int32, layer: Int, _ nodes: [Int32]) {
        if layer == 0 {
            let start = Int(node) * m0
            for (i, n) in nodes.prefix(m0).enumerated() { bottom[start + i] = n }
            bottomCount[Int(node)] = UInt8(min(nodes.count, m0))
        } else {
            upper[Int(node)][layer - 1] = nodes
        }
    }

    /// Adds `node` to `other`'s links, re-choosing them with the heuristic when full.
    private mutating func link(_ other: Int32, to node: Int32, layer: Int) {
        let limit = layer == 0 ? m0 : m
        var current = Array(links(other, layer: layer))
        if current.contains(node) { return }
        if current.count < limit {
            current.append(node)
            setLinks(other, layer: layer, current)
            return
        }
        current.append(node)
        let scored = current.map { (similarity(other, $0), $0) }.sorted { $0.0 > $1.0 }
        setLinks(other, layer: layer, selectNeighbours(scored, limit: limit).map(\.1))
    }

    /// The diversity heuristic: a candidate is kept only when it is closer to the base than to
    /// every neighbour already kept (candidates sorted best first).
    private func selectNeighbours(_ candidates: [(Float, Int32)], limit: Int) -> [(Float, Int32)] {
        guard candidates.count > limit else { return candidates }
        var chosen: [(Float, Int32)] = []
        for candidate in candidates {
            if chosen.count >= limit { break }
            var keep = true
            for kept in chosen where similarity(candidate.1, kept.1) > candidate.0 {
                keep = false
                break
            }
            if keep { chosen.append(candidate) }
        }
        return chosen
    }

    private func greedy(_ q: UnsafePointer<Float>, from point: inout Int32, similarity best: inout Float, layer: Int) {
        var changed = true
        while changed {
            changed = false
            for n in links(point, layer: layer) {
                let s = similarity(q, n)
                if s > best {
                    best = s
                    point = n
                    changed = true
                }
            }
        }
    }

    /// Best-first search of one layer from `entries`; answers up to `ef` admitted nodes, best first.
    private func searchLayer(_ query: UnsafePointer<Float>, entries: [(Float, Int32)], ef: Int, layer: Int, allow: ((Int32) -> Bool)?) -> [(Float, Int32)] {
        // A bit per node: cheaper than a hash set at every size that matters.
        var visited = [UInt64](repeating: 0, count: (count + 63) / 64)
        @inline(__always) func firstVisit(_ n: Int32) -> Bool {
            let word = Int(n) >> 6
            let bit = UInt64(1) << UInt64(Int(n) & 63)
            if visited[word] & bit != 0 { return false }
            visited[word] |= bit
            return true
        }
        var candidates = Heap(maxFirst: true)
        var results = TopK(capacity: ef)
        for (s, n) in entries where firstVisit(n) {
            candidates.push(s, n)
            if allow?(n) ?? true { results.offer(s, n) }
        }
        while let (s, n) = candidates.pop() {
            // hnswlib's stop: the best unexpanded candidate is worse than the worst result, and
            // the results are full (with a filter, a non-full list keeps the search going).
            if s < results.worst, results.isFull || allow == nil { break }
            for other in links(n, layer: layer) where firstVisit(other) {
                let so = similarity(query, other)
                if !results.isFull || so > results.worst {
                    candidates.push(so, other)
                    if allow?(other) ?? true { results.offer(so, other) }
                }
            }
        }
        return results.sorted()
    }
}

/// The best `capacity` (similarity, node) pairs seen: a min-heap on similarity.
struct TopK {
    let capacity: Int
    private var heap = Heap(maxFirst: false)

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var isFull: Bool { heap.count >= capacity }
    var worst: Float { heap.top?.0 ?? -.infinity }

    mutating func offer(_ s: Float, _ n: Int32) {
        if heap.count < capacity {
            heap.push(s, n)
        } else if s > worst {
            _ = heap.pop()
            heap.push(s, n)
        }
    }

    /// Best first.
    func sorted() -> [(Float, Int32)] { heap.items.sorted { $0.0 > $1.0 } }
}

/// A binary heap of (similarity, node).
struct Heap {
    let maxFirst: Bool
    private(set) var items: [(Float, Int32)] = []

    init(maxFirst: Bool) { self.maxFirst = maxFirst }

    var count: Int { items.count }
    var top: (Float, Int32)? { items.first }

    @inline(__always) private func before(_ a: Float, _ b: Float) -> Bool { maxFirst ? a > b : a < b }

    mutating func push(_ s: Float, _ n: Int32) {
        items.append((s, n))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard before(items[i].0, items[parent].0) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (Float, Int32)? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var best = i
                if l < items.count, before(items[l].0, items[best].0) { best = l }
                if r < items.count, before(items[r].0, items[best].0) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
        }
        return first
    }
}

/// Inner products over unit vectors.
public enum VectorMath {
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = SIMD8<Float>()
        var s1 = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a)
        let rb = UnsafeRawPointer(b)
        while i + 16 <= n {
            s0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            s1 +=
                ra.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            i += 16
        }
        var sum = (s0 + s1).sum()
        while i < n {
            sum += a[i] * b[i]
            i += 1
        }
        return sum
    }

    public static func dot(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in dot(pa.baseAddress!, pb.baseAddress!, a.count) } }
    }

    public static func normalised(_ v: [Float]) -> [Float] {
        let norm = v.withUnsafeBufferPointer { p in dot(p.baseAddress!, p.baseAddress!, v.count) }.squareRoot()
        guard norm > 0, norm.isFinite else { return v }
        if abs(norm - 1) < 1e-5 { return v }
        return v.map { $0 / norm }
    }
}
