import Foundation
import Logging
import PostgresNIO
import SluiceCore

/// Cached answers in PostgreSQL, shared by every replica.
public final class PostgresResponseCacheStore: ResponseCacheStore {
    let db: PostgresDatabase
    private var client: PostgresClient { db.client }
    private var logger: Logger { db.logger }

    public init(database: PostgresDatabase) { self.db = database }

    private typealias Row = (String, String?, ByteBuffer?, String, String, Int, Int, Double, Double, String?)

    public func entry(key: String, now: Double) async throws -> CacheEntry? {
        let query: PostgresQuery =
            "SELECT key, partition, embedding, kind, answer, prompt_tokens, completion_tokens, created_at, expires_at, question FROM response_cache WHERE key = \(key) AND expires_at > \(now)"
        for try await row in try await client.query(query, logger: logger).decode(Row.self) { return Self.entry(row) }
        return nil
    }

    public var isShared: Bool { true }

    public func put(_ entries: [CacheEntry]) async throws {
        // One row per key (a statement may not update a row twice), the last put winning.
        var latest: [String: Int] = [:]
        for (i, e) in entries.enumerated() { latest[e.key] = i }
        let rows = entries.indices.filter { latest[entries[$0].key] == $0 }.map { entries[$0] }
        guard !rows.isEmpty else { return }
        let head = "INSERT INTO response_cache (key, partition, embedding, kind, answer, prompt_tokens, completion_tokens, created_at, expires_at, question) VALUES"
        let update = """
            ON CONFLICT (key) DO UPDATE SET partition = EXCLUDED.partition, embedding = EXCLUDED.embedding, kind = EXCLUDED.kind,
                answer = EXCLUDED.answer, prompt_tokens = EXCLUDED.prompt_tokens, completion_tokens = EXCLUDED.completion_tokens,
                created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, question = EXCLUDED.question
            """
        try await client.withTransaction(logger: logger) { conn in
            try await MultiRowInsert.run(rows, columns: 10, head: head, tail: update, on: conn, logger: logger) { e, binds in
                binds.append(e.key)
                binds.append(e.partition)
                binds.append(e.embedding.map { ByteBuffer(bytes: CacheEntry.encode($0)) })
                binds.append(e.answer.kind)
                binds.append(e.answer.storedText)
                binds.append(e.promptTokens)
                binds.append(e.completionTokens)
                binds.append(e.createdAt)
                binds.append(e.expiresAt)
                binds.append(e.question)
            }
        }
    }

    public func entries(now: Double, limit: Int, createdAfter: Double, embeddedOnly: Bool) async throws -> [CacheEntry] {
        let query: PostgresQuery = """
            SELECT key, partition, embedding, kind, answer, prompt_tokens, completion_tokens, created_at, expires_at, question FROM response_cache
            WHERE (embedding IS NOT NULL OR NOT \(embeddedOnly)) AND expires_at > \(now) AND created_at > \(createdAfter)
            ORDER BY created_at DESC LIMIT \(limit)
            """
        var out: [CacheEntry] = []
        for try await row in try await client.query(query, logger: logger).decode(Row.self) {
            if let e = Self.entry(row) { out.append(e) }
        }
        return out
    }

    public func prune(now: Double, keep: Int) async throws -> Int {
        var removed = 0
        let expired: PostgresQuery = "WITH gone AS (DELETE FROM response_cache WHERE expires_at <= \(now) RETURNING 1) SELECT COUNT(*)::BIGINT FROM gone"
        for try await n in try await client.query(expired, logger: logger).decode(Int.self) { removed += n }
        let excess: PostgresQuery = """
            WITH gone AS (DELETE FROM response_cache WHERE key IN (SELECT key FROM response_cache ORDER BY created_at DESC OFFSET \(keep)) RETURNING 1)
            SELECT COUNT(*)::BIGINT FROM gone
            """
        for try await n in try await client.query(excess, logger: logger).decode(Int.self) { removed += n }
        return removed
    }

    private static func entry(_ r: Row) -> CacheEntry? {
        guard let answer = CachedAnswer(kind: r.3, storedText: r.4) else { return nil }
        let embedding = r.2.map { buffer in CacheEntry.decode(Array(buffer.readableBytesView)) }
        return CacheEntry(
            key: r.0, partition: r.1, embedding: embedding, question: r.9, answer: answer, promptTokens: r.5, completionTokens: r.6, createdAt: r.7,
            expiresAt: r.8)
    }
}
