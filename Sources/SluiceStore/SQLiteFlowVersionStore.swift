import GRDB
import SluiceCore

/// Flow versions in the embedded SQLite database.
public final class SQLiteFlowVersionStore: FlowVersionStore {
    let writer: any DatabaseWriter

    public init(database: SQLiteDatabase) { self.writer = database.writer }

    public func addVersion(flow: String, definition: String, at time: Double) async throws -> Int {
        try await writer.write { db in
            // Writes are serialised: the next number cannot be taken twice.
            let last = try Int.fetchOne(db, sql: "SELECT MAX(version) FROM flow_versions WHERE flow = ?", arguments: [flow]) ?? 1
            let version = max(last, 1) + 1
            try db.execute(
                sql: "INSERT INTO flow_versions (flow, version, definition, created_at) VALUES (?, ?, ?, ?)", arguments: [flow, version, definition, time])
            try db.execute(sql: "UPDATE flow_generation SET value = value + 1 WHERE id = 1")
            return version
        }
    }

    public func versions() async throws -> [StoredFlowVersion] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT flow, version, definition, created_at FROM flow_versions ORDER BY flow, version").map {
                StoredFlowVersion(flow: $0[0], version: $0[1], definition: $0[2], createdAt: $0[3])
            }
        }
    }

    public func activeVersions() async throws -> [String: Int] {
        try await writer.read { db in
            Dictionary(try Row.fetchAll(db, sql: "SELECT flow, version FROM flow_active").map { ($0[0] as String, $0[1] as Int) }, uniquingKeysWith: { a, _ in a })
        }
    }

    public func activate(flow: String, version: Int) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT INTO flow_active (flow, version) VALUES (?, ?) ON CONFLICT (flow) DO UPDATE SET version = excluded.version",
                arguments: [flow, version])
            try db.execute(sql: "UPDATE flow_generation SET value = value + 1 WHERE id = 1")
        }
    }

    public func flowGeneration() async throws -> Int {
        try await writer.read { db in try Int.fetchOne(db, sql: "SELECT value FROM flow_generation WHERE id = 1") ?? 0 }
    }
}
