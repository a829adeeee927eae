import Logging
import SluiceCore
import SluiceStore
import Testing

/// Files, vector stores and chunks: the same contract on SQLite and PostgreSQL.
@Suite struct RetrievalStoreTests {
    func stores() async throws -> [(String, any RetrievalStore)] {
        var out: [(String, any RetrievalStore)] = [("sqlite", SQLiteRetrievalStore(database: try SQLiteDatabase(path: ":memory:")))]
        if let url = try await PostgresTestDatabase.fresh() {
            out.append(("postgres", PostgresRetrievalStore(database: try await PostgresDatabase(url: url, logger: Logger(label: "test")))))
        }
        return out
    }

    func chunk(_ store: String, _ file: String, _ position: Int, _ text: String, _ vector: [Float]) -> StoredChunk {
        StoredChunk(storeID: store, fileID: file, position: position, heading: "H \(position)", page: position == 0 ? nil : position, text: text, vector: vector)
    }

    @Test func filesKeepTheirBytesAndPage() async throws {
        for (name, store) in try await stores() {
            let bytes: [UInt8] = [0, 255, 10, 13] + Array("héllo".utf8)
            for i in 0..<3 {
                try await store.insertFile(
                    StoredFile(id: "file-\(i)", owner: i == 2 ? "team:b" : "team:a", filename: "f\(i).txt", purpose: i == 1 ? .batch : .assistants, bytes: bytes.count, createdAt: Double(i)),
                    content: bytes)
            }
            #expect(try await store.fileContent(id: "file-0") == bytes, "\(name)")
            #expect(try await store.file(id: "file-1")?.purpose == .batch, "\(name)")
            let newest = try await store.files(owner: "team:a", purpose: nil, page: ListPage(limit: 1))
            #expect(newest.map(\.id) == ["file-1", "file-0"], "\(name): limit + 1 rows, newest first")
            let after = try await store.files(owner: "team:a", purpose: nil, page: ListPage(limit: 5, after: "file-1"))
            #expect(after.map(\.id) == ["file-0"], "\(name)")
            #expect(try await store.files(owner: "team:a", purpose: .batch, page: ListPage()).map(\.id) == ["file-1"], "\(name)")
            #expect(try await store.deleteFile(id: "file-2") == [], "\(name)")
            #expect(try await store.deleteFile(id: "file-2") == nil, "\(name)")
            #expect(try await store.fileContent(id: "file-2") == nil, "\(name)")
        }
    }

    @Test func chunksAreWrittenWholeSearchedAndRemovedWithTheirFile() async throws {
        for (name, store) in try await stores() {
            try await store.insertFile(StoredFile(id: "f1", owner: "o", filename: "a.md", purpose: .assistants, bytes: 1, createdAt: 1), content: [1])
            try await store.insertFile(StoredFile(id: "f2", owner: "o", filename: "b.md", purpose: .assistants, bytes: 1, createdAt: 2), content: [2])
            let vs = VectorStore(
                id: "vs_a", owner: "o", name: "n", createdAt: 1, lastActiveAt: 1, metadata: ["k": "v"], expiresAfterDays: 2, embeddingModel: "m",
                chunking: .fixed(maxTokens: 300, overlapTokens: 50))
            try await store.createVectorStore(vs)
            #expect(try await store.vectorStore(id: "vs_a") == vs, "\(name)")
            #expect(try await store.expiredVectorStores(now: 1 + 3 * 86_400) == ["vs_a"], "\(name)")
            try await store.addFile(VectorStoreFile(storeID: "vs_a", fileID: "f1", status: .inProgress, attributes: ["year": 2024, "tag": "x"], chunking: .auto, createdAt: 1, batchID: "b1"))
            try await store.addFile(VectorStoreFile(storeID: "vs_a", fileID: "f2", status: .inProgress, attributes: [:], chunking: .auto, createdAt: 2, batchID: "b1"))
            #expect(try await store.pendingFiles().count == 2, "\(name)")
            let ok = try await store.completeFile(
                storeID: "vs_a", fileID: "f1",
                chunks: [chunk("vs_a", "f1", 0, "The moon pulls the tides.", [1, 0, 0.5]), chunk("vs_a", "f1", 1, "Bakers knead dough.", [0, 1, 0.25])], usageBytes: 44)
            #expect(ok, "\(name)")
            // A cancelled entry is not completed later (its chunks are not written).
            try await store.finishFile(storeID: "vs_a", fileID: "f2", status: .cancelled, code: nil, message: nil)
            #expect(try await store.completeFile(storeID: "vs_a", fileID: "f2", chunks: [chunk("vs_a", "f2", 0, "late", [1, 1, 1])], usageBytes: 4) == false, "\(name)")
            var counts = try await store.fileCounts(storeID: "vs_a", batchID: "b1")
            #expect(counts.completed == 1 && counts.cancelled == 1 && counts.total == 2 && counts.usageBytes == 44, "\(name)")
            let entry = try await store.storeFile(storeID: "vs_a", fileID: "f1")
            #expect(entry?.attributes == ["year": 2024, "tag": "x"] && entry?.status == .completed && entry?.batchID == "b1", "\(name)")

            let version = try await store.chunkVersion(storeID: "vs_a")
            #expect(version.count == 2, "\(name)")
            let loaded = try await store.chunks(storeID: "vs_a", after: 0, limit: 10)
            #expect(loaded.map(\.vector) == [[1, 0, 0.5], [0, 1, 0.25]], "\(name): vectors round-trip exactly")
            #expect(loaded.last?.seq == version.maxSeq, "\(name)")
            let texts = try await store.chunks(seqs: loaded.map(\.seq), vectors: false).sorted { $0.position < $1.position }
            #expect(texts.map(\.text) == ["The moon pulls the tides.", "Bakers knead dough."] && texts.map(\.heading) == ["H 0", "H 1"], "\(name)")
            #expect(texts.map(\.page) == [nil, 1], "\(name)")

            // Keyword search stems ("pulling" finds "pulls", "tide" finds "tides") and ranks.
            let found = try await store.keywordSearch(storeID: "vs_a", terms: ["tide", "pulling"], limit: 5)
            #expect(found.map(\.seq) == [loaded[0].seq], "\(name): \(found)")
            #expect(try await store.keywordSearch(storeID: "vs_b", terms: ["tide"], limit: 5).isEmpty, "\(name): other stores' chunks never match")
            #expect(try await store.keywordSearch(storeID: "vs_a", terms: ["\"quote", "OR", "NEAR(x"], limit: 5).isEmpty, "\(name): query syntax is inert")

            // Deleting the file removes its chunks from every store and its place in them.
            #expect(try await store.deleteFile(id: "f1") == ["vs_a"], "\(name)")
            #expect(try await store.chunkVersion(storeID: "vs_a").count == 0, "\(name)")
            #expect(try await store.keywordSearch(storeID: "vs_a", terms: ["tides"], limit: 5).isEmpty, "\(name)")
            counts = try await store.fileCounts(storeID: "vs_a", batchID: nil)
            #expect(counts.total == 1, "\(name)")
            #expect(try await store.deleteVectorStore(id: "vs_a"), "\(name)")
            #expect(try await store.vectorStore(id: "vs_a") == nil, "\(name)")
        }
    }
}
