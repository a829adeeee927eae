import Logging
import NIOCore
import SluiceCore
import SluiceStore
import Testing

/// One suite over every response-cache store: in memory, SQLite, and PostgreSQL when the test
/// cluster is there.
@Suite struct ResponseCacheStoreTests {
    func stores() async throws -> [any ResponseCacheStore] {
        var out: [any ResponseCacheStore] = [InMemoryResponseCacheStore(), SQLiteResponseCacheStore(database: try SQLiteDatabase(path: ":memory:"))]
        if let url = try await PostgresTestDatabase.fresh() {
            out.append(PostgresResponseCacheStore(database: try await PostgresDatabase(url: url, logger: Logger(label: "test"))))
        }
        return out
    }

    func entry(_ key: String, created: Double, expires: Double, vector: [Float]? = nil, stream: Bool = false) -> CacheEntry {
        let answer: CachedAnswer =
            stream
            ? .stream([ByteBuffer(string: #"{"choices":[{"delta":{"content":"a\nb"}}]}"#), ByteBuffer(string: #"{"choices":[],"usage":{}}"#)])
            : .completion(ByteBuffer(string: #"{"id":"x","choices":[]}"#))
        return CacheEntry(
            key: key, partition: vector == nil ? nil : "p", embedding: vector, answer: answer, promptTokens: 3, completionTokens: 4, createdAt: created,
            expiresAt: expires)
    }

    @Test func entriesRoundTripExpireAndArePruned() async throws {
        for store in try await stores() {
            let vector: [Float] = [0.25, -1.5, 3.0e-7, .greatestFiniteMagnitude]
            // One batch; a key twice in it keeps the last.
            try await store.put([
                entry("a", created: 0, expires: 5), entry("a", created: 1, expires: 100, vector: vector), entry("b", created: 2, expires: 50, stream: true),
            ])
            try await store.put([entry("c", created: 3, expires: 100, vector: [1, 2])])
            // Exactly what was put comes back; the escaped newline inside a chunk stays one chunk.
            #expect(try await store.entry(key: "a", now: 10) == entry("a", created: 1, expires: 100, vector: vector))
            #expect(try await store.entry(key: "b", now: 10) == entry("b", created: 2, expires: 50, stream: true))
            #expect(try await store.entry(key: "b", now: 50) == nil, "expired at 50")
            #expect(try await store.entry(key: "zz", now: 0) == nil)
            // Replacing keeps one entry under the key.
            try await store.put([entry("a", created: 4, expires: 100, vector: vector)])
            #expect(try await store.entries(now: 10, limit: 10, createdAfter: 0, embeddedOnly: true).map(\.key) == ["a", "c"], "newest first, embeddings only")
            #expect(try await store.entries(now: 10, limit: 1, createdAfter: 0, embeddedOnly: true).map(\.key) == ["a"])
            #expect(try await store.entries(now: 10, limit: 10, createdAfter: 3, embeddedOnly: true).map(\.key) == ["a"], "made after 3 only")
            #expect(try await store.entries(now: 10, limit: 10, createdAfter: 0, embeddedOnly: false).map(\.key) == ["a", "c", "b"], "all")
            #expect(try await store.entries(now: 60, limit: 10, createdAfter: 0, embeddedOnly: false).map(\.key) == ["a", "c"], "unexpired only")
            // Pruning: the expired go, then all but the newest `keep`.
            #expect(try await store.prune(now: 60, keep: 1) == 2)
            #expect(try await store.entry(key: "a", now: 60) != nil)
            #expect(try await store.entry(key: "c", now: 60) == nil)
        }
    }
}
