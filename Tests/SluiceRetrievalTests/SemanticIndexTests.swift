import Testing

@testable import SluiceRetrieval

@Suite struct SemanticIndexTests {
    /// A deterministic pseudo-random unit vector.
    static func vector(_ seed: UInt64, dimensions: Int = 384) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<dimensions).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Float(Int64(bitPattern: state) % 10_000) / 10_000
        }
    }

    /// `base` moved toward `other` so that their cosine is about `cosine`.
    static func blend(_ base: [Float], _ other: [Float], cosine: Float) -> [Float] {
        let a = SemanticIndex.normalised(base)
        var b = SemanticIndex.normalised(other)
        // Make b orthogonal to a, then combine.
        let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
        b = SemanticIndex.normalised(zip(b, a).map { $0 - dot * $1 })
        let sine = (1 - cosine * cosine).squareRoot()
        return zip(a, b).map { cosine * $0 + sine * $1 }
    }

    @Test func findsTheNearestAboveTheThresholdWithinThePartition() {
        var index = SemanticIndex(capacity: 100)
        let base = Self.vector(1)
        index.insert(key: "k1", partition: "p", vector: base, expiresAt: 100)
        index.insert(key: "k2", partition: "p", vector: Self.vector(2), expiresAt: 100)
        index.insert(key: "other", partition: "q", vector: base, expiresAt: 100)
        let near = Self.blend(base, Self.vector(3), cosine: 0.97)
        let match = index.nearest(to: near, partition: "p", threshold: 0.95, now: 0)
        #expect(match?.key == "k1")
        #expect(abs((match?.similarity ?? 0) - 0.97) < 0.001)
        #expect(index.nearest(to: near, partition: "p", threshold: 0.98, now: 0) == nil)
        #expect(index.nearest(to: near, partition: "nowhere", threshold: 0.5, now: 0) == nil)
        // Expired entries do not answer.
        #expect(index.nearest(to: near, partition: "p", threshold: 0.95, now: 100) == nil)
    }

    @Test func theBitFilterLosesNoHitsAcrossManyVectors() {
        // A brute-force check: every entry at or above the threshold is found.
        var index = SemanticIndex(capacity: 10_000)
        var stored: [[Float]] = []
        for i in 0..<2000 {
            let v = SemanticIndex.normalised(Self.vector(UInt64(i) + 10))
            stored.append(v)
            index.insert(key: "k\(i)", partition: "p", vector: v, expiresAt: 1)
        }
        var found = 0
        for i in stride(from: 0, to: 2000, by: 20) {
            for cosine: Float in [0.951, 0.96, 0.99] {
                let query = Self.blend(stored[i], Self.vector(UInt64(i) + 50_000), cosine: cosine)
                let match = index.nearest(to: query, partition: "p", threshold: 0.95, now: 0)
                #expect(match?.key == "k\(i)", "cosine \(cosine) of k\(i)")
                if match != nil { found += 1 }
            }
        }
        #expect(found == 300)
    }

    @Test func capacityEvictsTheOldestAndRemovalKeepsTheRestIntact() {
        var index = SemanticIndex(capacity: 3)
        for i in 0..<5 { index.insert(key: "k\(i)", partition: "p", vector: Self.vector(UInt64(i)), expiresAt: 10) }
        #expect(index.count == 3)
        #expect(index.nearest(to: Self.vector(0), partition: "p", threshold: 0.999, now: 0) == nil)
        #expect(index.nearest(to: Self.vector(4), partition: "p", threshold: 0.999, now: 0)?.key == "k4")
        // Removing from the middle moves the last entry into its place.
        index.remove(key: "k2")
        #expect(index.count == 2)
        #expect(index.nearest(to: Self.vector(3), partition: "p", threshold: 0.999, now: 0)?.key == "k3")
        #expect(index.nearest(to: Self.vector(4), partition: "p", threshold: 0.999, now: 0)?.key == "k4")
        #expect(index.nearest(to: Self.vector(2), partition: "p", threshold: 0.999, now: 0) == nil)
        #expect(index.removeExpired(now: 10) == 2)
        #expect(index.count == 0)
        // A vector of the wrong length is ignored.
        index.insert(key: "short", partition: "p", vector: [1, 2], expiresAt: 10)
        #expect(index.count == 0)
    }

    @Test func theBitBoundGrowsAsTheThresholdFalls() {
        let strict = SemanticIndex.maxBitDistance(threshold: 0.99, dimensions: 384)
        let loose = SemanticIndex.maxBitDistance(threshold: 0.8, dimensions: 384)
        #expect(strict < loose)
        #expect(SemanticIndex.maxBitDistance(threshold: 1, dimensions: 384) == 8)
        #expect(SemanticIndex.maxBitDistance(threshold: -1, dimensions: 384) == 384)
    }
}
