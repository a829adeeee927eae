import Foundation
import Logging
import PostgresNIO
import SluiceCore

/// Keys and teams in PostgreSQL, shared by replicas (each polls `generation()` to notice changes).
public final class PostgresAccessStore: AccessStore {
    let db: PostgresDatabase
    private var client: PostgresClient { db.client }
    private var logger: Logger { db.logger }

    public init(database: PostgresDatabase) { self.db = database }

    private typealias KeyRow = (String, String, String?, String, String, String, Double, Double?, Double?, String?, String, String, String)
    private static let keyColumns = "id, name, team_id, role, prefix, hash, created_at, expires_at, revoked_at, models, limits, priority, metadata"

    public func insertKey(_ key: APIKeyRecord) async throws {
        let (models, limits, metadata) = try Self.json(key)
        try await client.withTransaction(logger: logger) { conn in
            try await conn.query(
                """
                INSERT INTO api_keys (id, name, team_id, role, prefix, hash, created_at, expires_at, revoked_at, models, limits, priority, metadata)
                VALUES (\(key.id), \(key.name), \(key.teamID), \(key.role.rawValue), \(key.prefix), \(key.hash), \(key.createdAt), \(key.expiresAt),
                    \(key.revokedAt), \(models), \(limits), \(key.priority.rawValue), \(metadata))
                """, logger: logger)
            try await Self.bump(conn, logger)
        }
    }

    public func updateKey(_ key: APIKeyRecord) async throws {
        let (models, limits, metadata) = try Self.json(key)
        try await client.withTransaction(logger: logger) { conn in
            try await conn.query(
                """
                UPDATE api_keys SET name = \(key.name), team_id = \(key.teamID), role = \(key.role.rawValue), prefix = \(key.prefix),
                    hash = \(key.hash), created_at = \(key.createdAt), expires_at = \(key.expiresAt), revoked_at = \(key.revokedAt),
                    models = \(models), limits = \(limits), priority = \(key.priority.rawValue), metadata = \(metadata)
                WHERE id = \(key.id)
                """, logger: logger)
            try await Self.bump(conn, logger)
        }
    }

    public func key(id: String) async throws -> APIKeyRecord? {
        try await keys(where: "id = $1", id).first
    }

    public func key(hash: String) async throws -> APIKeyRecord? {
        try await keys(where: "hash = $1", hash).first
    }

    public func keys() async throws -> [APIKeyRecord] {
        try await keys(where: nil, nil)
    }

    private func keys(where condition: String?, _ value: String?) async throws -> [APIKeyRecord] {
        var query = PostgresQuery(
            unsafeSQL: "SELECT \(Self.keyColumns) FROM api_keys" + (condition.map { " WHERE " + $0 } ?? "") + " ORDER BY created_at, id")
        if let value { query.binds.append(value) }
        var out: [APIKeyRecord] = []
        for try await row in try await client.query(query, logger: logger).decode(KeyRow.self) {
            out.append(
                APIKeyRecord(
                    id: row.0, name: row.1, teamID: row.2, role: Role(rawValue: row.3) ?? .app, prefix: row.4, hash: row.5, createdAt: row.6,
                    expiresAt: row.7, revokedAt: row.8, models: try row.9.map { try StoredJSON.value([String].self, $0) },
                    limits: try StoredJSON.value(Limits.self, row.10), priority: PriorityClass(rawValue: row.11) ?? .normal,
                    metadata: try StoredJSON.value([String: String].self, row.12)))
        }
        return out
    }

    public func insertTeam(_ team: TeamRecord) async throws {
        let limits = try StoredJSON.text(team.limits)
        let metadata = try StoredJSON.text(team.metadata)
        try await Self.nameIsUnique(team.name) { try await client.withTransaction(logger: logger) { conn in
            try await conn.query(
                "INSERT INTO teams (id, name, limits, metadata, created_at) VALUES (\(team.id), \(team.name), \(limits), \(metadata), \(team.createdAt))",
                logger: logger)
            try await Self.bump(conn, logger)
        } }
    }

    public func updateTeam(_ team: TeamRecord) async throws {
        let limits = try StoredJSON.text(team.limits)
        let metadata = try StoredJSON.text(team.metadata)
        try await Self.nameIsUnique(team.name) { try await client.withTransaction(logger: logger) { conn in
            try await conn.query(
                "UPDATE teams SET name = \(team.name), limits = \(limits), metadata = \(metadata) WHERE id = \(team.id)", logger: logger)
            try await Self.bump(conn, logger)
        } }
    }

    /// Two replicas racing past the name check meet the unique index: the loser gets a 409.
    private static func nameIsUnique(_ name: String, _ write: () async throws -> Void) async throws {
        do {
            try await write()
        } catch let error as PostgresTransactionError {
            if let psql = error.closureError as? PSQLError, psql.serverInfo?[.sqlState] == "23505" { throw AccessConflict.teamName(name) }
            throw error
        }
    }

    public func team(id: String) async throws -> TeamRecord? { try await teams(where: "id = $1", id).first }
    public func team(name: String) async throws -> TeamRecord? { try await teams(where: "name = $1", name).first }
    public func teams() async throws -> [TeamRecord] { try await teams(where: nil, nil) }

    private func teams(where condition: String?, _ value: String?) async throws -> [TeamRecord] {
        var query = PostgresQuery(
            unsafeSQL: "SELECT id, name, limits, metadata, created_at FROM teams" + (condition.map { " WHERE " + $0 } ?? "") + " ORDER BY created_at, id")
        if let value { query.binds.append(value) }
        var out: [TeamRecord] = []
        for try await row in try await client.query(query, logger: logger).decode((String, String, String, String, Double).self) {
            out.append(
                TeamRecord(
                    id: row.0, name: row.1, limits: try StoredJSON.value(Limits.self, row.2), metadata: try StoredJSON.value([String: String].self, row.3),
                    createdAt: row.4))
        }
        return out
    }

    public func generation() async throws -> Int {
        for try await value in try await client.query("SELECT value FROM access_generation WHERE id = 1", logger: logger).decode(Int.self) {
            return value
        }
        return 0
    }

    private static func bump(_ conn: PostgresConnection, _ logger: Logger) async throws {
        try await conn.query("UPDATE access_generation SET value = value + 1 WHERE id = 1", logger: logger)
    }

    private static func json(_ key: APIKeyRecord) throws -> (String?, String, String) {
        (try key.models.map(StoredJSON.text), try StoredJSON.text(key.limits), try StoredJSON.text(key.metadata))
    }
}
