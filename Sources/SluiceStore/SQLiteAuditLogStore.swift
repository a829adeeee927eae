import Foundation
import GRDB
import GRDBSQLite
import SluiceCore

/// The embedded database: one SQLite file in WAL mode with versioned migrations, shared by the
/// audit log, keys and teams.
public final class SQLiteDatabase: Sendable {
    let writer: any DatabaseWriter

    /// Opens (creating if needed) the database at `path`; `:memory:` keeps it in memory.
    public init(path: String) throws {
        if path == ":memory:" {
            writer = try DatabaseQueue()
        } else {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            var configuration = Configuration()
            configuration.busyMode = .timeout(5)
            // WAL with synchronous=NORMAL: safe from corruption and from process crashes; only a
            // power loss can lose the newest commits. The usual setting for WAL.
            // Checkpoints (the only fsyncs in this mode) every 10,000 pages instead of 1,000: at
            // 15k requests/s the default checkpointed every second and its fsyncs were ~1% of the
            // CPU; pages changed many times between checkpoints are now written once. The WAL file
            // is cut back to 64 MiB after a checkpoint.
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                try db.execute(sql: "PRAGMA wal_autocheckpoint = 10000")
                try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
            }
            writer = try DatabasePool(path: path, configuration: configuration)
        }
        try Self.migrator.migrate(writer)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1_requests") { db in
            try db.execute(
                sql: """
                    CREATE TABLE requests (
                        id TEXT PRIMARY KEY NOT NULL,
                        time REAL NOT NULL,
                        endpoint TEXT NOT NULL,
                        key_id TEXT NOT NULL DEFAULT '',
                        model_requested TEXT NOT NULL,
                        deployment TEXT,
                        status INTEGER NOT NULL,
                        error_code TEXT,
                        latency_ms REAL NOT NULL,
                        ttft_ms REAL,
                        tokens_in INTEGER NOT NULL,
                        tokens_out INTEGER NOT NULL,
                        cost_usd REAL NOT NULL,
                        cache_status TEXT NOT NULL,
                        stream INTEGER NOT NULL,
                        attempts INTEGER NOT NULL
                    );
                    CREATE INDEX requests_time ON requests(time);
                    CREATE INDEX requests_key_time ON requests(key_id, time);
                    """)
        }
        migrator.registerMigration("v2_access") { db in
            try db.execute(
                sql: """
                    ALTER TABLE requests ADD COLUMN team_id TEXT NOT NULL DEFAULT '';
                    CREATE INDEX requests_team_time ON requests(team_id, time) WHERE team_id != '';
                    CREATE TABLE teams (
                        id TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL UNIQUE,
                        limits TEXT NOT NULL,
                        metadata TEXT NOT NULL,
                        created_at REAL NOT NULL
                    );
                    CREATE TABLE api_keys (
                        id TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL,
                        team_id TEXT REFERENCES teams(id),
                        role TEXT NOT NULL,
                        prefix TEXT NOT NULL,
                        hash TEXT NOT NULL UNIQUE,
                        created_at REAL NOT NULL,
                        expires_at REAL,
                        revoked_at REAL,
                        models TEXT,
                        limits TEXT NOT NULL,
                        priority TEXT NOT NULL,
                        metadata TEXT NOT NULL
                    );
                    CREATE TABLE access_generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
                    INSERT INTO access_generation VALUES (1, 0);
                    """)
        }
        migrator.registerMigration("v3_request_details") { db in
            try db.execute(sql: "ALTER TABLE requests ADD COLUMN details TEXT NOT NULL DEFAULT '{}'")
        }
        migrator.registerMigration("v4_response_cache") { db in
            try db.execute(
                sql: """
                    CREATE TABLE response_cache (
                        key TEXT PRIMARY KEY NOT NULL,
                        partition TEXT,
                        embedding BLOB,
                        kind TEXT NOT NULL,
                        answer TEXT NOT NULL,
                        prompt_tokens INTEGER NOT NULL,
                        completion_tokens INTEGER NOT NULL,
                        created_at REAL NOT NULL,
                        expires_at REAL NOT NULL
                    );
                    CREATE INDEX response_cache_created ON response_cache(created_at);
                    CREATE INDEX response_cache_expires ON response_cache(expires_at);
                    """)
        }
        migrator.registerMigration("v5_request_bodies") { db in
            try db.execute(sql: "ALTER TABLE requests ADD COLUMN request_body TEXT")
            try db.execute(sql: "ALTER TABLE requests ADD COLUMN response_body TEXT")
        }
        migrator.registerMigration("v6_flows") { db in
            try db.execute(sql: "ALTER TABLE requests ADD COLUMN flow TEXT")
            try db.execute(sql: "ALTER TABLE requests ADD COLUMN flow_version INTEGER")
            try db.execute(sql: "CREATE INDEX requests_flow_time ON requests(flow, time) WHERE flow IS NOT NULL")
        }
        migrator.registerMigration("v7_flow_versions") { db in
            try db.execute(
                sql: """
                    CREATE TABLE flow_versions (
                        flow TEXT NOT NULL, version INTEGER NOT NULL, definition TEXT NOT NULL, created_at REAL NOT NULL,
                        PRIMARY KEY (flow, version));
                    CREATE TABLE flow_active (flow TEXT PRIMARY KEY, version INTEGER NOT NULL);
                    CREATE TABLE flow_generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
                    INSERT INTO flow_generation VALUES (1, 0);
                    """)
        }
        migrator.registerMigration("v8_conversations") { db in
            try db.execute(
                sql: """
                    CREATE TABLE conversations (id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at REAL NOT NULL, metadata TEXT NOT NULL);
                    CREATE TABLE conversation_items (
                        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE, sequence INTEGER NOT NULL,
                        id TEXT NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL, created_at REAL NOT NULL,
                        PRIMARY KEY (conversation_id, sequence));
                    CREATE UNIQUE INDEX conversation_items_id ON conversation_items(conversation_id, id);
                    """)
        }
        migrator.registerMigration("v9_conversation_summaries") { db in
            try db.execute(sql: "ALTER TABLE conversations ADD COLUMN summary TEXT")
            try db.execute(sql: "ALTER TABLE conversations ADD COLUMN summarized_through INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v10_request_conversations") { db in
            try db.execute(sql: "ALTER TABLE requests ADD COLUMN conversation_id TEXT")
            try db.execute(sql: "CREATE INDEX requests_conversation_time ON requests(conversation_id, time) WHERE conversation_id IS NOT NULL")
        }
        migrator.registerMigration("v11_retrieval") { db in try db.execute(sql: SQLiteRetrievalStore.migration) }
        migrator.registerMigration("v12_quality") { db in
            for statement in QualitySQL.migration { try db.execute(sql: statement) }
        }
        migrator.registerMigration("v13_batches") { db in
            for statement in BatchSQL.migration { try db.execute(sql: statement) }
        }
        migrator.registerMigration("v14_batch_lines_due") { db in
            for statement in BatchSQL.dueIndex { try db.execute(sql: statement) }
        }
        migrator.registerMigration("v15_stored_responses") { db in try db.execute(sql: SQLiteResponseStore.migration) }
        migrator.registerMigration("v16_cache_questions") { db in try db.execute(sql: "ALTER TABLE response_cache ADD COLUMN question TEXT") }
        migrator.registerMigration("v17_cache_rows_appended") { db in
            for statement in SQLiteResponseCacheStore.appendedRows { try db.execute(sql: statement) }
        }
        return migrator
    }

}

/// The audit log in SQLite: the embedded default store.
public final class SQLiteAuditLogStore: AuditLogStore, SpendLedger, UsageReporter, FlowReporter {
    let writer: any DatabaseWriter

    public init(database: SQLiteDatabase) {
        self.writer = database.writer
    }

    /// Opens (creating if needed) the database at `path`; `:memory:` keeps it in memory.
    public convenience init(path: String) throws {
        self.init(database: try SQLiteDatabase(path: path))
    }

    public func usage(_ query: UsageQuery) async throws -> [UsageRow] {
        let filters = query.filters
        let conditions = filters.map(\.condition)
        var arguments: StatementArguments = []
        for (_, value) in filters {
            switch value {
            case .number(let n): arguments += [n]
            case .text(let t): arguments += [t]
            }
        }
        let group: String? =
            switch query.groupBy {
            case .key: "key_id"
            case .team: "team_id"
            case .model: "model_requested"
            case .day: "strftime('%Y-%m-%d', time, 'unixepoch')"
            case nil: nil
            }
        let sql = """
            SELECT \(group ?? "NULL") AS grp, COUNT(*) AS requests, TOTAL(tokens_in) AS tokens_in, TOTAL(tokens_out) AS tokens_out,
                TOTAL(cost_usd) AS cost FROM requests
            \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
            \(group == nil ? "" : "GROUP BY grp ORDER BY grp")
            """
        let bound = arguments
        return try await writer.read { db in
            try Row.fetchAll(db, sql: sql, arguments: bound).map { row in
                UsageRow(
                    group: row["grp"], requests: row["requests"], tokensIn: Int(row["tokens_in"] as Double), tokensOut: Int(row["tokens_out"] as Double),
                    costUSD: row["cost"])
            }
        }
    }

    public func spend(keyID: String?, teamID: String?, since: Double) async throws -> Double {
        try await writer.read { db in
            if let keyID {
                return try Double.fetchOne(db, sql: "SELECT TOTAL(cost_usd) FROM requests WHERE key_id = ? AND time >= ?", arguments: [keyID, since]) ?? 0
            }
            if let teamID {
                return try Double.fetchOne(db, sql: "SELECT TOTAL(cost_usd) FROM requests WHERE team_id = ? AND time >= ?", arguments: [teamID, since]) ?? 0
            }
            return 0
        }
    }

    /// Runs the transaction on the calling thread (the audit-log writer's own), not on a thread
    /// of GRDB's: its CPU stays at that thread's lower priority.
    public func append(_ records: [AuditRecord]) async throws {
        try appendNow(records)
    }

    private func appendNow(_ records: [AuditRecord]) throws {
        guard !records.isEmpty else { return }
        try writer.write { db in
            // OR REPLACE: a client may reuse an x-request-id; the newest row wins rather than the batch failing.
            let statement = try db.cachedStatement(
                sql: """
                    INSERT OR REPLACE INTO requests (id, time, endpoint, key_id, model_requested, deployment, status, error_code,
                        latency_ms, ttft_ms, tokens_in, tokens_out, cost_usd, cache_status, stream, attempts, team_id, details,
                        request_body, response_body, flow, flow_version, conversation_id, experiment, variant)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            // Bound and stepped through SQLite's C API: GRDB's `execute(arguments:)` boxes each of
            // the 20 values and nests a closure per value, which cost more than the insert itself.
            var row = RowBinding(statement: statement.sqliteStatement)
            for (i, r) in records.enumerated() {
                if i % 64 == 63 { BackgroundThreadExecutor.yieldProcessor() }
                row.text(r.id)
                row.real(r.time)
                row.text(r.endpoint)
                row.text(r.keyID)
                row.text(r.modelRequested)
                row.text(r.deployment)
                row.int(r.status)
                row.text(r.errorCode)
                row.real(r.latencyMs)
                row.real(r.ttftMs)
                row.int(r.tokensIn)
                row.int(r.tokensOut)
                row.real(r.costUSD)
                row.text(r.cacheStatus)
                row.int(r.stream ? 1 : 0)
                row.int(r.attempts)
                row.text(r.teamID)
                row.text(r.details.jsonText)
                row.text(r.requestBody)
                row.text(r.responseBody)
                row.text(r.flow)
                row.int(r.flowVersion)
                row.text(r.conversationID)
                row.text(r.experiment)
                row.text(r.variant)
                try row.step(connection: db.sqliteConnection)
            }
        }
    }

    /// Read through the (flow, time) index; the percentiles are taken in process (SQLite has no
    /// percentile function), from the window's latencies.
    public func flowStats(_ q: FlowStatsQuery) async throws -> FlowStats {
        try await writer.read { db in
            var sql = "SELECT status, latency_ms, cost_usd FROM requests WHERE flow = ? AND time >= ?"
            var arguments: StatementArguments = [q.flow, q.since]
            if let version = q.version {
                sql += " AND flow_version = ?"
                arguments += [version]
            }
            let runs = try Row.fetchAll(db, sql: sql, arguments: arguments).map { row -> (status: Int, latencyMs: Double, costUSD: Double) in
                (row[0], row[1], row[2])
            }
            return FlowStats(runs: runs, thresholds: q.latencyThresholds)
        }
    }

    public func recent(limit: Int) async throws -> [AuditRecord] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM requests ORDER BY time DESC, rowid DESC LIMIT ?", arguments: [limit]).map(Self.record)
        }
    }

    static func record(_ row: Row) -> AuditRecord {
        AuditRecord(
            id: row["id"], time: row["time"], endpoint: row["endpoint"], keyID: row["key_id"], modelRequested: row["model_requested"],
            deployment: row["deployment"], status: row["status"], errorCode: row["error_code"], latencyMs: row["latency_ms"],
            ttftMs: row["ttft_ms"], tokensIn: row["tokens_in"], tokensOut: row["tokens_out"], costUSD: row["cost_usd"],
            cacheStatus: row["cache_status"], stream: row["stream"], attempts: row["attempts"], teamID: row["team_id"],
            details: AuditDetails(jsonText: row["details"]), requestBody: row["request_body"], responseBody: row["response_body"],
            flow: row["flow"], flowVersion: row["flow_version"], conversationID: row["conversation_id"],
            experiment: row["experiment"], variant: row["variant"])
    }

    public func purge(rowsBefore: Double?, bodiesBefore: Double?) async throws -> (rows: Int, bodies: Int) {
        try await writer.write { db in
            var rows = 0
            var bodies = 0
            if let rowsBefore {
                try db.execute(sql: "DELETE FROM requests WHERE time < ?", arguments: [rowsBefore])
                rows = db.changesCount
            }
            if let bodiesBefore {
                try db.execute(
                    sql: "UPDATE requests SET request_body = NULL, response_body = NULL WHERE time < ? AND (request_body IS NOT NULL OR response_body IS NOT NULL)",
                    arguments: [bodiesBefore])
                bodies = db.changesCount
            }
            return (rows, bodies)
        }
    }

    public func count() async throws -> Int {
        try await writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM requests") ?? 0 }
    }

    public func search(_ search: AuditSearch) async throws -> [AuditRecord] {
        let conditions = search.conditions
        var arguments: StatementArguments = []
        for value in conditions.flatMap(\.values) {
            switch value {
            case .number(let n): arguments += [n]
            case .text(let t): arguments += [t]
            }
        }
        arguments += [search.limit]
        let sql = """
            SELECT * FROM requests \(conditions.isEmpty ? "" : "WHERE " + conditions.map(\.sql).joined(separator: " AND "))
            ORDER BY time DESC, id DESC LIMIT ?
            """
        let bound = arguments
        return try await writer.read { db in try Row.fetchAll(db, sql: sql, arguments: bound).map(Self.record) }
    }

    public func record(id: String) async throws -> AuditRecord? {
        try await writer.read { db in try Row.fetchOne(db, sql: "SELECT * FROM requests WHERE id = ?", arguments: [id]).map(Self.record) }
    }

    public func ping() async throws {
        _ = try await writer.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }
}

/// Binds one row's values, in order, to a prepared statement and runs it.
struct RowBinding {
    let statement: OpaquePointer
    private var index: Int32 = 0
    /// The first binding SQLite refused (a value over its length limit, out of memory): the row
    /// fails rather than being written with NULL in its place.
    private var refused: Int32 = SQLITE_OK

    init(statement: OpaquePointer) { self.statement = statement }

    /// SQLite copies the bytes: the Swift string need not outlive the call.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    mutating func text(_ value: String?) {
        index += 1
        guard let value else { return check(sqlite3_bind_null(statement, index)) }
        // As GRDB binds text: a C string (a native Swift string lends its own bytes).
        check(value.withCString { sqlite3_bind_text(statement, index, $0, -1, Self.transient) })
    }

    mutating func int(_ value: Int?) {
        index += 1
        check(value.map { sqlite3_bind_int64(statement, index, Int64($0)) } ?? sqlite3_bind_null(statement, index))
    }

    mutating func real(_ value: Double?) {
        index += 1
        check(value.map { sqlite3_bind_double(statement, index, $0) } ?? sqlite3_bind_null(statement, index))
    }

    private mutating func check(_ code: Int32) {
        if code != SQLITE_OK && refused == SQLITE_OK { refused = code }
    }

    /// Runs the statement, then readies it for the next row.
    mutating func step(connection: OpaquePointer?) throws {
        let code = refused == SQLITE_OK ? sqlite3_step(statement) : refused
        let message = code == SQLITE_DONE ? nil : connection.map { String(cString: sqlite3_errmsg($0)) }
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        index = 0
        refused = SQLITE_OK
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sqlite3_sql(statement).map { String(cString: $0) })
        }
    }
}
