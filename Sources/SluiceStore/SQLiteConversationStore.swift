import GRDB
import SluiceCore

/// Conversations in the embedded SQLite database; appends are serialised by its one writer.
public final class SQLiteConversationStore: ConversationStore {
    let writer: any DatabaseWriter

    public init(database: SQLiteDatabase) { self.writer = database.writer }

    public func create(_ conversation: Conversation, items: [ConversationItem]) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT INTO conversations (id, owner, created_at, metadata) VALUES (?, ?, ?, ?)",
                arguments: [conversation.id, conversation.owner, conversation.createdAt, try StoredJSON.text(conversation.metadata)])
            _ = try Self.append(db, conversation.id, items)
        }
    }

    public func conversation(id: String) async throws -> Conversation? {
        try await writer.read { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT id, owner, created_at, metadata, summary, summarized_through FROM conversations WHERE id = ?", arguments: [id])
            else {
                return nil
            }
            return Conversation(
                id: row[0], owner: row[1], createdAt: row[2], metadata: (try? StoredJSON.value([String: String].self, row[3])) ?? [:], summary: row[4],
                summarizedThrough: row[5])
        }
    }

    public func updateMetadata(id: String, _ metadata: [String: String]) async throws {
        try await writer.write { db in
            try db.execute(sql: "UPDATE conversations SET metadata = ? WHERE id = ?", arguments: [try StoredJSON.text(metadata), id])
        }
    }

    public func delete(id: String) async throws -> Bool {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM conversation_items WHERE conversation_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM conversations WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    public func items(id: String, after: String?, limit: Int, newestFirst: Bool) async throws -> [ConversationItem] {
        try await writer.read { db in
            var sql = "SELECT id, sequence, role, text, created_at FROM conversation_items WHERE conversation_id = ?"
            var arguments: StatementArguments = [id]
            if let after {
                sql += " AND sequence \(newestFirst ? "<" : ">") (SELECT sequence FROM conversation_items WHERE conversation_id = ? AND id = ?)"
                arguments += [id, after]
            }
            sql += " ORDER BY sequence \(newestFirst ? "DESC" : "ASC") LIMIT ?"
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map {
                ConversationItem(id: $0[0], sequence: $0[1], role: ChatMessage.Role(rawValue: $0[2]) ?? .user, text: $0[3], createdAt: $0[4])
            }
        }
    }

    public func setSummary(id: String, _ summary: String, through sequence: Int) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE conversations SET summary = ?, summarized_through = ? WHERE id = ? AND summarized_through < ?",
                arguments: [summary, sequence, id, sequence])
        }
    }

    public func purge(itemsBefore time: Double) async throws -> Int {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM conversation_items WHERE created_at < ?", arguments: [time])
            return db.changesCount
        }
    }

    public func append(id: String, _ items: [ConversationItem]) async throws -> [ConversationItem] {
        try await writer.write { db in try Self.append(db, id, items) }
    }

    private static func append(_ db: Database, _ id: String, _ items: [ConversationItem]) throws -> [ConversationItem] {
        var next = (try Int.fetchOne(db, sql: "SELECT MAX(sequence) FROM conversation_items WHERE conversation_id = ?", arguments: [id]) ?? 0) + 1
        var out: [ConversationItem] = []
        for var item in items {
            item.sequence = next
            try db.execute(
                sql: "INSERT INTO conversation_items (conversation_id, sequence, id, role, text, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [id, next, item.id, item.role.rawValue, item.text, item.createdAt])
            out.append(item)
            next += 1
        }
        return out
    }
}
