import Foundation
import GRDB
import Logging
import NIOCore
import SluiceCore
@testable import SluiceStore
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

    @Test func aReplacedEntryNeverComesBackAndIsNotCountedWhenPruned() async throws {
        for store in try await stores() {
            try await store.put([entry("k", created: 1, expires: 100, vector: [1])])
            try await store.put([entry("k", created: 2, expires: 20)])  // replaces it: no embedding, sooner expiry
            #expect(try await store.entry(key: "k", now: 10) == entry("k", created: 2, expires: 20))
            #expect(try await store.entries(now: 10, limit: 10, createdAfter: 0, embeddedOnly: true).isEmpty, "the older row's embedding is gone")
            // Expired in its newest form: the key has no entry, though an older row would still be unexpired.
            #expect(try await store.entry(key: "k", now: 30) == nil)
            #expect(try await store.entries(now: 30, limit: 10, createdAfter: 0, embeddedOnly: false).isEmpty)
            try await store.put([entry("m", created: 3, expires: 100)])
            #expect(try await store.prune(now: 30, keep: 10) == 1, "k's one entry expired; its replaced row is not an entry")
            #expect(try await store.entries(now: 30, limit: 10, createdAfter: 0, embeddedOnly: false).map(\.key) == ["m"])
            // A key stored again after a prune: the next prune removes the row it replaced.
            try await store.put([entry("m", created: 4, expires: 90)])
            #expect(try await store.prune(now: 30, keep: 10) == 0)
            #expect(try await store.entries(now: 30, limit: 10, createdAfter: 0, embeddedOnly: false) == [entry("m", created: 4, expires: 90)])
            #expect(try await store.prune(now: 95, keep: 10) == 1, "one entry left, and it has expired")
            #expect(try await store.entries(now: 95, limit: 10, createdAfter: 0, embeddedOnly: false).isEmpty, "the replaced row did not come back")
        }
    }

    /// A file written before entries were appended (key as the primary key) keeps every entry.
    @Test func aDatabaseFromBeforeAppendedRowsKeepsItsEntries() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-cache-migration-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("sluice.db").path
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        do {
            let old = try DatabaseQueue(path: path)
            try SQLiteDatabase.migrator.migrate(old, upTo: "v16_cache_questions")
            let before = SQLiteResponseCacheStore(writer: old)
            try before.putNow([entry("a", created: 1, expires: 100, vector: [0.5]), entry("b", created: 2, expires: 100, stream: true)])
            let keyIsPrimary = try await old.read { db in
                try Bool.fetchOne(db, sql: "SELECT pk = 1 FROM pragma_table_info('response_cache') WHERE name = 'key'")
            }
            #expect(keyIsPrimary == true)
            try old.close()
        }
        let store = SQLiteResponseCacheStore(database: try SQLiteDatabase(path: path))
        #expect(try await store.entries(now: 10, limit: 10, createdAfter: 0, embeddedOnly: false) == [
            entry("b", created: 2, expires: 100, stream: true), entry("a", created: 1, expires: 100, vector: [0.5]),
        ])
        // Storing a key again now adds a row rather than failing on the old primary key.
        try await store.put([entry("a", created: 3, expires: 100)])
        #expect(try await store.entry(key: "a", now: 10) == entry("a", created: 3, expires: 100))
    }
}
