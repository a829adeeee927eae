import Foundation
import Logging
import SluiceCore
import SluiceStore
import Testing

@testable import SluiceRetrieval

/// The HNSW graph against exact search, rank fusion, filters, and search and ingestion over a
/// real SQLite store (FTS5 for keywords), restart included.
@Suite struct SearchTests {
    static func randomVectors(_ n: Int, dimensions: Int = 48, seed: UInt64) -> [[Float]] {
        var state = seed | 1
        func next() -> Float {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Float(Int64(bitPattern: state) % 10_000) / 10_000
        }
        // Clustered, as embeddings are: a few centres plus noise.
        let centres = (0..<8).map { _ in (0..<dimensions).map { _ in next() } }
        return (0..<n).map { i in centres[i % 8].map { $0 + next() * 0.8 } }
    }

    @Test func hnswFindsWhatExactSearchFinds() {
        let vectors = Self.randomVectors(3000, seed: 7)
        var graph = HNSWGraph(dimensions: 48)
        for v in vectors { graph.insert(v) }
        let queries = Self.randomVectors(100, seed: 99)
        var found = 0
        for q in queries {
            let exact = Set(graph.exhaustive(q, k: 10, among: 0..<Int32(vectors.count)).map(\.node))
            let approximate = graph.search(q, k: 10, ef: 128)
            #expect(approximate.count == 10)
            // Best first.
            #expect(zip(approximate, approximate.dropFirst()).allSatisfy { $0.similarity >= $1.similarity })
            found += approximate.filter { exact.contains($0.node) }.count
        }
        let recall = Double(found) / 1000
        #expect(recall >= 0.95, "HNSW recall@10 \(recall)")
    }

    @Test func removedNodesAndFilteredNodesAreNeverResults() {
        let vectors = Self.randomVectors(500, seed: 3)
        var graph = HNSWGraph(dimensions: 48)
        for v in vectors { graph.insert(v) }
        // The exact nearest neighbour of a stored vector is itself: remove it, and it is gone.
        #expect(graph.search(vectors[10], k: 1, ef: 32).first?.node == 10)
        graph.remove(10)
        #expect(!graph.search(vectors[10], k: 20, ef: 64).contains { $0.node == 10 })
        let even = graph.search(vectors[11], k: 10, ef: 64, allow: { $0 % 2 == 0 })
        #expect(even.count == 10 && even.allSatisfy { $0.node % 2 == 0 })
    }

    @Test func reciprocalRankFusionRewardsAgreement() {
        let fused = RankFusion.reciprocal([["a", "b", "c"], ["c", "b", "d"]]).map(\.id)
        // b is second in both (2/62); c is first and third (1/61 + 1/63): b ≈ 0.03226, c ≈ 0.03227.
        #expect(Set(fused.prefix(2)) == ["b", "c"])
        #expect(fused.suffix(2) == ["a", "d"])
        #expect(RankFusion.reciprocal([[Int]]()).isEmpty)
    }

    @Test func filtersCompareAndCombineAttributes() throws {
        let attributes: [String: JSONValue] = ["region": "eu", "year": 2024, "public": true]
        func check(_ json: String) throws -> Bool {
            try AttributeFilter.parse(try #require(Array(json.utf8).withUnsafeBytes { JSONParser.parse($0) })).matches(attributes)
        }
        #expect(try check(#"{"type":"eq","key":"region","value":"eu"}"#))
        #expect(try !check(#"{"type":"ne","key":"region","value":"eu"}"#))
        #expect(try check(#"{"type":"gte","key":"year","value":2024}"#))
        #expect(try !check(#"{"type":"gt","key":"year","value":2024.5}"#))
        #expect(try check(#"{"type":"in","key":"region","value":["us","eu"]}"#))
        #expect(try check(#"{"type":"ne","key":"missing","value":"x"}"#))
        #expect(try !check(#"{"type":"eq","key":"missing","value":"x"}"#))
        #expect(try check(#"{"type":"and","filters":[{"type":"eq","key":"public","value":true},{"type":"lt","key":"year","value":2030}]}"#))
        #expect(try check(#"{"type":"or","filters":[{"type":"eq","key":"region","value":"us"},{"type":"eq","key":"year","value":2024}]}"#))
        for bad in [#"{"type":"like","key":"a","value":1}"#, #"{"type":"eq","value":1}"#, #"{"type":"and","filters":[]}"#, #"{"type":"in","key":"a","value":"x"}"#, "[]"] {
            #expect(throws: SluiceError.self, "\(bad)") { _ = try check(bad) }
        }
    }

    /// Embeds by counting letters a–z: texts about the same words point the same way.
    static let letterEmbedder = ChunkEmbedder(model: "letters", window: 512, countTokens: ChunkingTests.words) { texts in
        texts.map { text in
            var v = [Float](repeating: 0.01, count: 26)
            for scalar in text.lowercased().unicodeScalars where scalar.value >= 97 && scalar.value < 123 { v[Int(scalar.value - 97)] += 1 }
            return v
        }
    }

    static func setUp(_ documents: [(String, String, [String: JSONValue])]) async throws -> (SQLiteRetrievalStore, VectorStoreSearch, VectorStore, VectorStoreIngestion) {
        let store = SQLiteRetrievalStore(database: try SQLiteDatabase(path: ":memory:"))
        let indexes = VectorIndexes()
        let embedders = ["letters": letterEmbedder]
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let ingestion = VectorStoreIngestion(store: store, indexes: indexes, embedders: embedders, logger: logger)
        let vs = VectorStore(
            id: "vs_1", owner: "o", name: nil, createdAt: 0, lastActiveAt: 0, metadata: [:], expiresAfterDays: nil, embeddingModel: "letters", chunking: .auto)
        try await store.createVectorStore(vs)
        for (i, (name, text, attributes)) in documents.enumerated() {
            let id = "file-\(i)"
            try await store.insertFile(StoredFile(id: id, owner: "o", filename: name, purpose: .assistants, bytes: text.utf8.count, createdAt: Double(i)), content: Array(text.utf8))
            try await store.addFile(VectorStoreFile(storeID: vs.id, fileID: id, status: .inProgress, attributes: attributes, chunking: .auto, createdAt: Double(i)))
            await ingestion.index(storeID: vs.id, fileID: id)
        }
        return (store, VectorStoreSearch(store: store, indexes: indexes, embedders: embedders), vs, ingestion)
    }

    @Test func keywordVectorAndHybridSearchOverTheStoreWithFilters() async throws {
        let (store, search, vs, _) = try await Self.setUp([
            ("tides.md", "# Tides\n\nThe moon pulls the oceans, which makes tides rise and fall twice a day.", ["topic": "sea"]),
            ("bread.md", "# Bread\n\nKnead the dough, let it rise, then bake the loaf in a hot oven.", ["topic": "food"]),
            ("stars.txt", "Stars are suns far away; their light takes years to reach us.", ["topic": "sky"]),
            ("image.png", "\u{0}binary", [:]),
        ])
        #expect(try await store.storeFile(storeID: vs.id, fileID: "file-3")?.status == .failed)
        #expect(try await store.storeFile(storeID: vs.id, fileID: "file-3")?.errorCode == "unsupported_file")
        #expect(try await store.storeFile(storeID: vs.id, fileID: "file-3")?.errorMessage?.contains(".png") == true)
        let keyword = try await search.search(vs, SearchQuery(texts: ["ocean tides and the moon"], maxResults: 3, mode: .keyword))
        #expect(keyword.first?.filename == "tides.md")
        #expect(keyword.first?.text.hasPrefix("The moon pulls") == true)
        #expect(keyword.first?.heading == "Tides")
        let hybrid = try await search.search(vs, SearchQuery(texts: ["bake bread dough"], maxResults: 2))
        #expect(hybrid.first?.filename == "bread.md")
        #expect(hybrid.first?.attributes["topic"] == "food")
        let filtered = try await search.search(
            vs, SearchQuery(texts: ["bake bread dough"], maxResults: 3, filter: .compare(.ne, key: "topic", value: "food")))
        #expect(!filtered.isEmpty && !filtered.contains { $0.filename == "bread.md" })
        let none = try await search.search(vs, SearchQuery(texts: ["anything"], filter: .compare(.eq, key: "topic", value: "nothing")))
        #expect(none.isEmpty)
        let strict = try await search.search(vs, SearchQuery(texts: ["bake bread dough"], maxResults: 3, scoreThreshold: 0.99))
        #expect(strict.allSatisfy { $0.score >= 0.99 })
        // Deleting a file takes its chunks out of the store and the index.
        let stores = try await store.deleteFile(id: "file-1")
        #expect(stores == ["vs_1"])
        search.indexes.dropFile("file-1", stores: stores ?? [])
        let after = try await search.search(vs, SearchQuery(texts: ["bake bread dough"], maxResults: 5))
        #expect(!after.contains { $0.fileID == "file-1" })
        #expect(try await store.chunkVersion(storeID: vs.id).count == 2)
    }

    @Test func anotherReplicasIndexCatchesUpWithAddsAndRemovals() async throws {
        let (store, _, vs, ingestion) = try await Self.setUp([("a.txt", "Alpha apples.", [:]), ("b.txt", "Beta bananas.", [:])])
        // A second replica's index, built from the store alone.
        let other = VectorIndexes()
        try await other.index(for: vs.id).sync(store)
        #expect(other.index(for: vs.id).count == 2)
        try await store.insertFile(StoredFile(id: "c", owner: "o", filename: "c.txt", purpose: .assistants, bytes: 5, createdAt: 9), content: Array("Cherry cakes.".utf8))
        try await store.addFile(VectorStoreFile(storeID: vs.id, fileID: "c", status: .inProgress, attributes: [:], chunking: .auto, createdAt: 9))
        await ingestion.index(storeID: vs.id, fileID: "c")
        _ = try await store.removeFile(storeID: vs.id, fileID: "file-0")
        try await other.index(for: vs.id).sync(store)
        #expect(other.index(for: vs.id).count == 2)
        let files = Set(other.index(for: vs.id).nearest([Float](repeating: 1, count: 26), k: 10).compactMap { other.index(for: vs.id).file(of: $0.seq) })
        #expect(files == ["file-1", "c"])
    }

    @Test func aFileLeftInProgressIsIndexedAgainAtStartAndNeverHalfIndexed() async throws {
        let store = SQLiteRetrievalStore(database: try SQLiteDatabase(path: ":memory:"))
        let vs = VectorStore(
            id: "vs_r", owner: "o", name: nil, createdAt: 0, lastActiveAt: 0, metadata: [:], expiresAfterDays: nil, embeddingModel: "letters", chunking: .auto)
        try await store.createVectorStore(vs)
        try await store.insertFile(StoredFile(id: "f", owner: "o", filename: "f.txt", purpose: .assistants, bytes: 3, createdAt: 0), content: Array("Some text.".utf8))
        try await store.addFile(VectorStoreFile(storeID: vs.id, fileID: "f", status: .inProgress, attributes: [:], chunking: .auto, createdAt: 0))
        // The first process stops while embedding: nothing is written, the file stays in progress.
        let stuck = ChunkEmbedder(model: "letters", window: 512, countTokens: ChunkingTests.words) { _ in
            try await Task.sleep(for: .seconds(60))
            return []
        }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let first = VectorStoreIngestion(store: store, indexes: VectorIndexes(), embedders: ["letters": stuck], logger: logger)
        let task = Task { await first.index(storeID: vs.id, fileID: "f") }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        await task.value
        #expect(try await store.storeFile(storeID: vs.id, fileID: "f")?.status == .inProgress)
        #expect(try await store.chunkVersion(storeID: vs.id).count == 0)
        // The next process picks it up at start.
        let second = VectorStoreIngestion(store: store, indexes: VectorIndexes(), embedders: ["letters": Self.letterEmbedder], logger: logger)
        let running = Task { try await second.run() }
        for _ in 0..<100 where try await store.storeFile(storeID: vs.id, fileID: "f")?.status == .inProgress {
            try await Task.sleep(for: .milliseconds(20))
        }
        running.cancel()
        _ = try? await running.value
        #expect(try await store.storeFile(storeID: vs.id, fileID: "f")?.status == .completed)
        #expect(try await store.chunkVersion(storeID: vs.id).count == 1)
    }
}
