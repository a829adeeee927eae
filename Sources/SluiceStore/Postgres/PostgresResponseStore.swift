import Logging
import PostgresNIO
import SluiceCore

/// Stored Responses API responses in PostgreSQL.
public final class PostgresResponseStore: ResponseStore {
    let db: PostgresDatabase
    private var client: PostgresClient { db.client }
    private var logger: Logger { db.logger }

    public init(database: PostgresDatabase) { self.db = database }

    static let migration = [
        """
        CREATE TABLE stored_responses (
            id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, response TEXT NOT NULL, messages TEXT NOT NULL)
        """,
        "CREATE INDEX stored_responses_created ON stored_responses(created_at)",
    ]

    public func save(_ r: StoredResponse) async throws {
        try await client.query(
            """
            INSERT INTO stored_responses (id, owner, created_at, response, messages)
            VALUES (\(r.id), \(r.owner), \(r.createdAt), \(r.response), \(r.messages))
            ON CONFLICT (id) DO UPDATE SET response = EXCLUDED.response, messages = EXCLUDED.messages
            """, logger: logger)
    }

    public func response(id: String) async throws -> StoredResponse? {
        let rows = try await client.query("SELECT id, owner, created_at, response, messages FROM stored_responses WHERE id = \(id)", logger: logger)
        for try await (id, owner, created, response, messages) in rows.decode((String, String, Double, String, String).self) {
            return StoredResponse(id: id, owner: owner, createdAt: created, response: response, messages: messages)
        }
        return nil
    }

    public func delete(id: String) async throws -> Bool {
        let rows = try await client.query("DELETE FROM stored_responses WHERE id = \(id) RETURNING id", logger: logger)
        for try await _ in rows.decode(String.self) { return true }
        return false
    }

    public func purge(createdBefore time: Double) async throws -> Int {
        let rows = try await client.query("DELETE FROM stored_responses WHERE created_at < \(time) RETURNING id", logger: logger)
        var n = 0
        for try await _ in rows.decode(String.self) { n += 1 }
        return n
    }
}
