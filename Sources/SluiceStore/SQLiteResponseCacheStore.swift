import Foundation
import GRDB
import SluiceCore
import Synchronization

/// Cached answers in the embedded SQLite database.
///
/// Rows are appended in the order they are written, with no index on the key: only this process
/// writes the file and it keeps every entry in memory, so the key is looked up in memory and
/// the table is read by key only before that copy is loaded. A unique index on a hash key put
/// each new entry on a random index page, so every batch rewrote most of that index into the
/// WAL. A key stored again adds a row; the newest row of a key (by `created_at`, then by order
/// of writing) is its entry, and `prune` deletes the older ones.
public final class SQLiteResponseCacheStore: ResponseCacheStore {
    let writer: any DatabaseWriter
    /// The newest row when `prune` last removed replaced rows: older rows are one per key
    /// among themselves, so a key can have been stored again only by a row after it.
    private let dedupedThrough = Mutex<Int64>(0)

    public init(database: SQLiteDatabase) { self.writer = database.writer }

    init(writer: any DatabaseWriter) { self.writer = writer }

    /// Only this process writes its SQLite file (replicas share PostgreSQL instead).
    public var isShared: Bool { false }

    /// Rebuilds a table keyed by `key` (before v17) as appended rows, keeping every entry.
    static let appendedRows = [
        """
        CREATE TABLE response_cache_rows (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL,
            partition TEXT,
            embedding BLOB,
            kind TEXT NOT NULL,
            answer TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            question TEXT
        )
        """,
        """
        INSERT INTO response_cache_rows (key, partition, embedding, kind, answer, prompt_tokens, completion_tokens, created_at, expires_at, question)
        SELECT key, partition, embedding, kind, answer, prompt_tokens, completion_tokens, created_at, expires_at, question FROM response_cache ORDER BY created_at
        """,
        "DROP TABLE response_cache",
        "ALTER TABLE response_cache_rows RENAME TO response_cache",
        "CREATE INDEX response_cache_created ON response_cache(created_at)",
        "CREATE INDEX response_cache_expires ON response_cache(expires_at)",
    ]

    public func entry(key: String, now: Double) async throws -> CacheEntry? {
        try await writer.read { db in
            let newest = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT * FROM response_cache WHERE key = ? ORDER BY created_at DESC, id DESC LIMIT 1"), arguments: [key])
            return newest.flatMap(Self.entry).flatMap { $0.expiresAt > now ? $0 : nil }
        }
    }

    /// On a thread of its own below the event loops' priority, yielding as it goes, as the audit
    /// log's writer does: a batch is milliseconds of CPU that a request on a loop should not
    /// wait behind (on two cores the p99 of one connection showed it).
    public func put(_ entries: [CacheEntry]) async throws {
        guard !entries.isEmpty else { return }
        try await withTaskExecutorPreference(BackgroundThreadExecutor.responseCache) { try self.putNow(entries) }
    }

    func putNow(_ entries: [CacheEntry]) throws {
        try writer.write { db in
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO response_cache (key, partition, embedding, kind, answer, prompt_tokens, completion_tokens, created_at, expires_at, question)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            for (i, entry) in entries.enumerated() {
                if i % 64 == 63 { BackgroundThreadExecutor.yieldProcessor() }
                try insert.execute(arguments: [
                    entry.key, entry.partition, entry.embedding.map { Data(CacheEntry.encode($0)) }, entry.answer.kind, entry.answer.storedText,
                    entry.promptTokens, entry.completionTokens, entry.createdAt, entry.expiresAt, entry.question,
                ])
            }
        }
    }

    /// Reads newest first and takes each key's newest row, so an entry that has been replaced
    /// never comes back in its older form.
    public func entries(now: Double, limit: Int, createdAfter: Double, embeddedOnly: Bool) async throws -> [CacheEntry] {
        guard limit > 0 else { return [] }
        return try await writer.read { db in
            let rows = try Row.fetchCursor(
                db, sql: "SELECT * FROM response_cache WHERE created_at > ? ORDER BY created_at DESC, id DESC", arguments: [createdAfter])
            var seen = Set<String>()
            var out: [CacheEntry] = []
            while out.count < limit, let row = try rows.next() {
                guard seen.insert(row["key"]).inserted, let e = Self.entry(row) else { continue }
                if e.expiresAt > now && (!embeddedOnly || e.embedding != nil) { out.append(e) }
            }
            return out
        }
    }

    /// Deletes replaced rows (not counted: they were no longer entries), then expired entries,
    /// then all but the newest `keep`. On the cache's writer thread, as `put` is.
    public func prune(now: Double, keep: Int) async throws -> Int {
        try await withTaskExecutorPreference(BackgroundThreadExecutor.responseCache) {
            let (removed, newest) = try self.writer.write { db in
                let newest = try Int64.fetchOne(db, sql: "SELECT coalesce(max(id), 0) FROM response_cache") ?? 0
                try db.execute(
                    sql: """
                        DELETE FROM response_cache WHERE id IN (
                            SELECT id FROM (
                                SELECT id, row_number() OVER (PARTITION BY key ORDER BY created_at DESC, id DESC) AS n FROM response_cache
                                WHERE key IN (SELECT key FROM response_cache WHERE id > ?))
                            WHERE n > 1)
                        """, arguments: [self.dedupedThrough.withLock { $0 }])
                try db.execute(sql: "DELETE FROM response_cache WHERE expires_at <= ?", arguments: [now])
                var removed = db.changesCount
                try db.execute(
                    sql: "DELETE FROM response_cache WHERE id IN (SELECT id FROM response_cache ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?)",
                    arguments: [max(0, keep)])
                removed += db.changesCount
                return (removed, newest)
            }
            self.dedupedThrough.withLock { $0 = newest }
            return removed
        }
    }

    static func entry(_ row: Row) -> CacheEntry? {
        guard let answer = CachedAnswer(kind: row["kind"], storedText: row["answer"]) else { return nil }
        let blob: [UInt8]? = (row["embedding"] as Data?).map { Array($0) }
        return CacheEntry(
            key: row["key"], partition: row["partition"], embedding: blob.map(CacheEntry.decode), question: row["question"], answer: answer,
            promptTokens: row["prompt_tokens"],
            completionTokens: row["completion_tokens"], createdAt: row["created_at"], expiresAt: row["expires_at"])
    }
}
