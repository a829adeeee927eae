import Foundation
import Logging
import PostgresNIO
import SluiceCore

/// Conversations in PostgreSQL; concurrent appends to one conversation take turns under a
/// transaction-scoped advisory lock, so the order has no gaps and a turn's items stay adjacent.
public final class PostgresConversationStore: ConversationStore {
    let db: PostgresDatabase
    private var client: PostgresClient { db.client }
    private var logger: Logger { db.logger }

    public init(database: PostgresDatabase) { self.db = database }

    public func create(_ conversation: Conversation, items: [ConversationItem]) async throws {
        let metadata = try StoredJSON.text(conversation.metadata)
        try await client.withTransaction(logger: logger) { conn in
            try await conn.query(
                "INSERT INTO conversations (id, owner, created_at, metadata) VALUES (\(conversation.id), \(conversation.owner), \(conversation.createdAt), \(metadata))",
                logger: logger)
            _ = try await Self.append(conn, conversation.id, items, logger)
        }
    }

    public func conversation(id: String) async throws -> Conversation? {
        let rows = try await client.query(
            "SELECT id, owner, created_at, metadata, summary, summarized_through FROM conversations WHERE id = \(id)", logger: logger)
        for try await (id, owner, created, metadata, summary, through) in rows.decode((String, String, Double, String, String?, Int).self) {
            return Conversation(
                id: id, owner: owner, createdAt: created, metadata: (try? StoredJSON.value([String: String].self, metadata)) ?? [:], summary: summary,
                summarizedThrough: through)
        }
        return nil
    }

    public func updateMetadata(id: String, _ metadata: [String: String]) async throws {
        let text = try StoredJSON.text(metadata)
        try await client.query("UPDATE conversations SET metadata = \(text) WHERE id = \(id)", logger: logger)
    }

    public func delete(id: String) async throws -> Bool {
        try await client.withTransaction(logger: logger) { conn in
            try await conn.query("DELETE FROM conversation_items WHERE conversation_id = \(id)", logger: logger)
            var deleted = false
            for try await _ in try await conn.query("DELETE FROM conversations WHERE id = \(id) RETURNING id", logger: logger).decode(String.self) {
                deleted = true
            }
            return deleted
        }
    }

    public func items(id: String, after: String?, limit: Int, newestFirst: Bool) async throws -> [ConversationItem] {
        var binds = PostgresBindings()
        binds.append(id)
        var sql = "SELECT id, sequence, role, text, created_at FROM conversation_items WHERE conversation_id = $1"
        if let after {
            binds.append(after)
            sql += " AND sequence \(newestFirst ? "<" : ">") (SELECT sequence FROM conversation_items WHERE conversation_id = $1 AND id = $2)"
        }
        binds.append(limit)
        sql += " ORDER BY sequence \(newestFirst ? "DESC" : "ASC") LIMIT $\(binds.count)"
        var out: [ConversationItem] = []
        let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
        for try await (itemID, sequence, role, text, created) in rows.decode((String, Int, String, String, Double).self) {
            out.append(ConversationItem(id: itemID, sequence: sequence, role: ChatMessage.Role(rawValue: role) ?? .user, text: text, createdAt: created))
        }
        return out
    }

    public func setSummary(id: String, _ summary: String, through sequence: Int) async throws {
        try await client.query(
            "UPDATE conversations SET summary = \(summary), summarized_through = \(sequence) WHERE id = \(id) AND summarized_through < \(sequence)",
            logger: logger)
    }

    public func purge(itemsBefore time: Double) async throws -> Int {
        var count = 0
        for try await _ in try await client.query("DELETE FROM conversation_items WHERE created_at < \(time) RETURNING sequence", logger: logger).decode(Int.self) {
            count += 1
        }
        return count
    }

    public func append(id: String, _ items: [ConversationItem]) async throws -> [ConversationItem] {
        try await client.withTransaction(logger: logger) { conn in try await Self.append(conn, id, items, logger) }
    }

    private static func append(_ conn: PostgresConnection, _ id: String, _ items: [ConversationItem], _ logger: Logger) async throws -> [ConversationItem] {
        guard !items.isEmpty else { return [] }
        try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\(id)))", logger: logger)
        var next = 1
        for try await value in try await conn.query(
            "SELECT COALESCE(MAX(sequence), 0)::BIGINT + 1 FROM conversation_items WHERE conversation_id = \(id)", logger: logger
        ).decode(Int.self) {
            next = value
        }
        var out: [ConversationItem] = []
        for var item in items {
            item.sequence = next
            try await conn.query(
                """
                INSERT INTO conversation_items (conversation_id, sequence, id, role, text, created_at)
                VALUES (\(id), \(next), \(item.id), \(item.role.rawValue), \(item.text), \(item.createdAt))
                """, logger: logger)
            out.append(item)
            next += 1
        }
        return out
    }
}
