import Foundation
import GRDB
import SluiceCore

/// Cached answers in the embedded SQLite database.
public final class SQLiteResponseCacheStore: ResponseCacheStore {
    let writer: any DatabaseWriter

    public init(database: SQLiteDatabase) { self.writer = database.writer }

    public func entry(key: String, now: Double) async throws -> CacheEntry? {
        try await writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM response_cache WHERE key = ? AND expires_at > ?", arguments: [key, now]).flatMap(Self.entry)
        }
    }

    public func put(_ entry: CacheEntry) async throws {
        let embedding: Data? = entry.embedding.map { Data(CacheEntry.encode($0)) }
        let arguments: StatementArguments = [
            entry.key, entry.partition, embedding, entry.answer.kind, entry.answer.storedText,
            entry.promptTokens, entry.completionTokens, entry.createdAt, entry.expiresAt, entry.question,
        ]
        try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO response_cache (key, partition, embedding, kind, answer, prompt_tokens, completion_tokens, created_at, expires_at, question)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: arguments)
        }
    }

    public func semanticEntries(now: Double, limit: Int, createdAfter: Double) async throws -> [CacheEntry] {
        try await writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM response_cache WHERE embedding IS NOT NULL AND expires_at > ? AND created_at > ? ORDER BY created_at DESC LIMIT ?",
                arguments: [now, createdAfter, limit]
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
