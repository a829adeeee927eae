import Foundation
import GRDB
import SluiceCore

/// Keys and teams in the embedded SQLite database. Limits, models and metadata are JSON columns:
/// they are read and written whole, never queried inside.
public final class SQLiteAccessStore: AccessStore {
    let writer: any DatabaseWriter

    public init(database: SQLiteDatabase) {
        self.writer = database.writer
    }

    public func insertKey(_ key: APIKeyRecord) async throws {
        try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO api_keys (id, name, team_id, role, prefix, hash, created_at, expires_at, revoked_at, models, limits, priority, metadata)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: try Self.arguments(key))
            try Self.bump(db)
        }
    }

    public func updateKey(_ key: APIKeyRecord) async throws {
        try await writer.write { db in
            var arguments = try Self.arguments(key)
            arguments += [key.id]
            try db.execute(
                sql: """
                    UPDATE api_keys SET id = ?, name = ?, team_id = ?, role = ?, prefix = ?, hash = ?, created_at = ?, expires_at = ?,
                        revoked_at = ?, models = ?, limits = ?, priority = ?, metadata = ? WHERE id = ?
                    """, arguments: arguments)
            try Self.bump(db)
        }
    }

    public func key(id: String) async throws -> APIKeyRecord? {
        try await writer.read { db in try Row.fetchOne(db, sql: "SELECT * FROM api_keys WHERE id = ?", arguments: [id]).map(Self.key) }
    }

    public func key(hash: String) async throws -> APIKeyRecord? {
        try await writer.read { db in try Row.fetchOne(db, sql: "SELECT * FROM api_keys WHERE hash = ?", arguments: [hash]).map(Self.key) }
    }

    public func keys() async throws -> [APIKeyRecord] {
        try await writer.read { db in try Row.fetchAll(db, sql: "SELECT * FROM api_keys ORDER BY created_at, id").map(Self.key) }
    }

    public func insertTeam(_ team: TeamRecord) async throws {
        try await Self.nameIsUnique(team.name) { try await writer.write { db in
            try db.execute(
                sql: "INSERT INTO teams (id, name, limits, metadata, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [team.id, team.name, try StoredJSON.text(team.limits), try StoredJSON.text(team.metadata), team.createdAt])
            try Self.bump(db)
        } }
    }

    public func updateTeam(_ team: TeamRecord) async throws {
        try await Self.nameIsUnique(team.name) { try await writer.write { db in
            try db.execute(
                sql: "UPDATE teams SET name = ?, limits = ?, metadata = ? WHERE id = ?",
                arguments: [team.name, try StoredJSON.text(team.limits), try StoredJSON.text(team.metadata), team.id])
            try Self.bump(db)
        } }
    }

    /// Two writers racing past the name check meet the unique index: the loser gets a 409.
    private static func nameIsUnique(_ name: String, _ write: () async throws -> Void) async throws {
        do {
            try await write()
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw AccessConflict.teamName(name)
        }
    }

    public func team(id: String) async throws -> TeamRecord? {
        try await writer.read { db in try Row.fetchOne(db, sql: "SELECT * FROM teams WHERE id = ?", arguments: [id]).map(Self.team) }
    }

    public func team(name: String) async throws -> TeamRecord? {
        try await writer.read { db in try Row.fetchOne(db, sql: "SELECT * FROM teams WHERE name = ?", arguments: [name]).map(Self.team) }
    }

    public func teams() async throws -> [TeamRecord] {
        try await writer.read { db in try Row.fetchAll(db, sql: "SELECT * FROM teams ORDER BY created_at, id").map(Self.team) }
    }

    public func generation() async throws -> Int {
        try await writer.read { db in try Int.fetchOne(db, sql: "SELECT value FROM access_generation WHERE id = 1") ?? 0 }
    }

    private static func bump(_ db: Database) throws {
        try db.execute(sql: "UPDATE access_generation SET value = value + 1 WHERE id = 1")
    }

    private static func arguments(_ key: APIKeyRecord) throws -> StatementArguments {
        [
            key.id, key.name, key.teamID, key.role.rawValue, key.prefix, key.hash, key.createdAt, key.expiresAt, key.revokedAt,
            try key.models.map(StoredJSON.text), try StoredJSON.text(key.limits), key.priority.rawValue, try StoredJSON.text(key.metadata),
        ]
    }

    private static func key(_ row: Row) throws -> APIKeyRecord {
        APIKeyRecord(
            id: row["id"], name: row["name"], teamID: row["team_id"], role: Role(rawValue: row["role"]) ?? .app, prefix: row["prefix"],
            hash: row["hash"], createdAt: row["created_at"], expiresAt: row["expires_at"], revokedAt: row["revoked_at"],
            models: try (row["models"] as String?).map { try StoredJSON.value([String].self, $0) },
            limits: try StoredJSON.value(Limits.self, row["limits"]), priority: PriorityClass(rawValue: row["priority"]) ?? .normal,
            metadata: try StoredJSON.value([String: String].self, row["metadata"]))
    }

    private static func team(_ row: Row) throws -> TeamRecord {
        TeamRecord(
            id: row["id"], name: row["name"], limits: try StoredJSON.value(Limits.self, row["limits"]),
            metadata: try StoredJSON.value([String: String].self, row["metadata"]), createdAt: row["created_at"])
    }
}

/// JSON text columns.
enum StoredJSON {
    static func text<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JSONCoding.encoder.encode(value), as: UTF8.self)
    }

    static func value<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}
