import GRDB
import SluiceCore

/// Stored Responses API responses in the embedded SQLite database.
public final class SQLiteResponseStore: ResponseStore {
    let writer: any DatabaseWriter

    public init(database: SQLiteDatabase) { self.writer = database.writer }

    static let migration = """
        CREATE TABLE stored_responses (
            id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at REAL NOT NULL, response TEXT NOT NULL, messages TEXT NOT NULL);
        CREATE INDEX stored_responses_created ON stored_responses(created_at);
        """

    public func save(_ r: StoredResponse) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO stored_responses (id, owner, created_at, response, messages) VALUES (?, ?, ?, ?, ?)",
                arguments: [r.id, r.owner, r.createdAt, r.response, r.messages])
        }
    }

    public func response(id: String) async throws -> StoredResponse? {
        try await writer.read { db in
            try Row.fetchOne(db, sql: "SELECT id, owner, created_at, response, messages FROM stored_responses WHERE id = ?", arguments: [id]).map {
                StoredResponse(id: $0[0], owner: $0[1], createdAt: $0[2], response: $0[3], messages: $0[4])
            }
        }
    }

    public func delete(id: String) async throws -> Bool {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM stored_responses WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    public func purge(createdBefore time: Double) async throws -> Int {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM stored_responses WHERE created_at < ?", arguments: [time])
            return db.changesCount
        }
    }
}
