import Foundation
import GRDB
import SluiceCore

/// Cached answers in the embedded SQLite database.
public final class SQLiteResponseCacheStore: ResponseCacheStore {
    let writer: any DatabaseWriter

    public init(database: SQLiteDatabase) { self.writer = database.writer }

    /// Only this process writes its SQLite file (replicas share PostgreSQL instead).
    public var isShared: Bool { false }

    public func entry(key: String, now: Double) async throws -> CacheEntry? {
        try await writer.read { db in
            try Row.fetchOne(
                db.cachedStatement(sql: "SELECT * FROM response_cache WHERE key = ? AND expires_at > ?"), arguments: [key, now]
            ).flatMap(Self.entry)
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
                    INSERT OR REPLACE INTO response_cache (key, partition, embedding, kind, answer, prompt_tokens, completion_tokens, created_at, expires_at, question)
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

    public func entries(now: Double, limit: Int, createdAfter: Double, embeddedOnly: Bool) async throws -> [CacheEntry] {
        try await writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM response_cache WHERE (embedding IS NOT NULL OR NOT ?) AND expires_at > ? AND created_at > ?
                    ORDER BY created_at DESC LIMIT ?
                    """,
                arguments: [embeddedOnly, now, createdAfter, limit]
            ).compactMap(Self.entry)
        }
    }

    public func prune(now: Double, keep: Int) async throws -> Int {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM response_cache WHERE expires_at <= ?", arguments: [now])
            var removed = db.changesCount
            try db.execute(
                sql: "DELETE FROM response_cache WHERE key IN (SELECT key FROM response_cache ORDER BY created_at DESC LIMIT -1 OFFSET ?)",
                arguments: [keep])
            removed += db.changesCount
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
