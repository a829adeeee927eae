import Foundation
import Logging
import PostgresNIO
import SluiceCore

/// Flow versions in PostgreSQL, shared by replicas (each polls `flowGeneration()`).
public final class PostgresFlowVersionStore: FlowVersionStore {
    let db: PostgresDatabase
    private var client: PostgresClient { db.client }
    private var logger: Logger { db.logger }

    public init(database: PostgresDatabase) { self.db = database }

    public func addVersion(flow: String, definition: String, at time: Double) async throws -> Int {
        try await client.withTransaction(logger: logger) { conn in
            // Two replicas adding at once take the next number one after the other.
            try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\(flow)))", logger: logger)
            var last = 1
            for try await value in try await conn.query("SELECT COALESCE(MAX(version), 1)::BIGINT FROM flow_versions WHERE flow = \(flow)", logger: logger)
                .decode(Int.self)
            {
                last = value
            }
            let version = max(last, 1) + 1
            try await conn.query(
                "INSERT INTO flow_versions (flow, version, definition, created_at) VALUES (\(flow), \(version), \(definition), \(time))", logger: logger)
            try await conn.query("UPDATE flow_generation SET value = value + 1 WHERE id = 1", logger: logger)
            return version
        }
    }

    public func versions() async throws -> [StoredFlowVersion] {
        var out: [StoredFlowVersion] = []
        let rows = try await client.query("SELECT flow, version, definition, created_at FROM flow_versions ORDER BY flow, version", logger: logger)
        for try await (flow, version, definition, created) in rows.decode((String, Int, String, Double).self) {
            out.append(StoredFlowVersion(flow: flow, version: version, definition: definition, createdAt: created))
        }
        return out
    }

    public func activeVersions() async throws -> [String: Int] {
        var out: [String: Int] = [:]
        for try await (flow, version) in try await client.query("SELECT flow, version FROM flow_active", logger: logger).decode((String, Int).self) {
            out[flow] = version
        }
        return out
    }

    public func activate(flow: String, version: Int) async throws {
        try await client.withTransaction(logger: logger) { conn in
            try await conn.query(
                "INSERT INTO flow_active (flow, version) VALUES (\(flow), \(version)) ON CONFLICT (flow) DO UPDATE SET version = EXCLUDED.version",
                logger: logger)
            try await conn.query("UPDATE flow_generation SET value = value + 1 WHERE id = 1", logger: logger)
        }
    }

    public func flowGeneration() async throws -> Int {
        for try await value in try await client.query("SELECT value FROM flow_generation WHERE id = 1", logger: logger).decode(Int.self) {
            return value
        }
        return 0
    }
}
