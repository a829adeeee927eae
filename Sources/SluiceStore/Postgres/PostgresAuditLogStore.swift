import Foundation
import Logging
import PostgresNIO
import SluiceCore

/// The audit log in PostgreSQL, written by every replica; also the spend ledger and usage reports.
public final class PostgresAuditLogStore: AuditLogStore, SpendLedger, UsageReporter, FlowReporter {
    let db: PostgresDatabase
    private var client: PostgresClient { db.client }
    private var logger: Logger { db.logger }

    public init(database: PostgresDatabase) { self.db = database }

    private static let columns =
        "id, time, endpoint, key_id, team_id, model_requested, deployment, status, error_code, latency_ms, ttft_ms, tokens_in, tokens_out, cost_usd, cache_status, stream, attempts, details, request_body, response_body, flow, flow_version, conversation_id, experiment, variant"

    public func append(_ records: [AuditRecord]) async throws {
        guard !records.isEmpty else { return }
        // A client may reuse an x-request-id: the newest row wins rather than the batch failing.
        let update = "ON CONFLICT (id) DO UPDATE SET " + Self.columns.split(separator: ",").dropFirst().map {
            let c = $0.trimmingCharacters(in: .whitespaces)
            return "\(c) = EXCLUDED.\(c)"
        }.joined(separator: ", ")
        try await client.withTransaction(logger: logger) { conn in
            try await MultiRowInsert.run(
                records, columns: 25, head: "INSERT INTO requests (\(Self.columns)) VALUES", tail: update, on: conn, logger: logger
            ) { r, binds in
                binds.append(r.id)
                binds.append(r.time)
                binds.append(r.endpoint)
                binds.append(r.keyID)
                binds.append(r.teamID)
                binds.append(r.modelRequested)
                binds.append(r.deployment)
                binds.append(r.status)
                binds.append(r.errorCode)
                binds.append(r.latencyMs)
                binds.append(r.ttftMs)
                binds.append(r.tokensIn)
                binds.append(r.tokensOut)
                binds.append(r.costUSD)
                binds.append(r.cacheStatus)
                binds.append(r.stream)
                binds.append(r.attempts)
                binds.append(r.details.jsonText)
                binds.append(r.requestBody)
                binds.append(r.responseBody)
                binds.append(r.flow)
                binds.append(r.flowVersion)
                binds.append(r.conversationID)
                binds.append(r.experiment)
                binds.append(r.variant)
            }
        }
    }

    private typealias Row = (
        String, Double, String, String, String, String, String?, Int, String?, Double, Double?, Int, Int, Double, String, Bool, Int, String, String?,
        String?, String?, Int?, String?, String?, String?
    )

    /// Counts, cost and the percentiles (`percentile_disc`, nearest rank) in the database.
    public func flowStats(_ q: FlowStatsQuery) async throws -> FlowStats {
        var binds = PostgresBindings()
        binds.append(q.flow)
        binds.append(q.since)
        var filter = "flow = $1 AND time >= $2"
        if let version = q.version {
            binds.append(version)
            filter += " AND flow_version = $3"
        }
        var thresholds = ""
        for t in q.latencyThresholds {
            binds.append(t)
            thresholds += ", COUNT(*) FILTER (WHERE latency_ms > $\(binds.count))::BIGINT"
        }
        let sql = """
            SELECT COUNT(*)::BIGINT, COUNT(*) FILTER (WHERE status BETWEEN 200 AND 299)::BIGINT, COALESCE(SUM(cost_usd), 0)::DOUBLE PRECISION,
                percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms), percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms),
                percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms)\(thresholds)
            FROM requests WHERE \(filter)
            """
        let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
        for try await row in rows {
            let columns = row.makeRandomAccess()
            var stats = FlowStats(
                requests: Int(try columns[0].decode(Int64.self)), successes: Int(try columns[1].decode(Int64.self)),
                costUSD: try columns[2].decode(Double.self), p50Ms: try columns[3].decode(Double?.self), p95Ms: try columns[4].decode(Double?.self),
                p99Ms: try columns[5].decode(Double?.self))
            for (i, t) in q.latencyThresholds.enumerated() { stats.slowerThan[t] = Int(try columns[6 + i].decode(Int64.self)) }
            return stats
        }
        return FlowStats(requests: 0, successes: 0, costUSD: 0)
    }

    public func recent(limit: Int) async throws -> [AuditRecord] {
        try await search(AuditSearch(limit: limit))
    }

    public func search(_ search: AuditSearch) async throws -> [AuditRecord] {
        var binds = PostgresBindings()
        var clauses: [String] = []
        for condition in search.conditions {
            var sql = ""
            var values = condition.values.makeIterator()
            // Each `?` becomes the next numbered parameter.
            for ch in condition.sql {
                guard ch == "?", let value = values.next() else {
                    sql.append(ch)
                    continue
                }
                switch value {
                case .number(let n): binds.append(n)
                case .text(let t): binds.append(t)
                }
                sql += "$\(binds.count)"
            }
            clauses.append(sql)
        }
        binds.append(search.limit)
        let sql = "SELECT \(Self.columns) FROM requests \(clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")) "
            + "ORDER BY time DESC, id DESC LIMIT $\(binds.count)"
        return try await rows(PostgresQuery(unsafeSQL: sql, binds: binds))
    }

    public func record(id: String) async throws -> AuditRecord? {
        try await rows(PostgresQuery(unsafeSQL: "SELECT \(Self.columns) FROM requests WHERE id = $1", binds: {
            var b = PostgresBindings()
            b.append(id)
            return b
        }())).first
    }

    private func rows(_ query: PostgresQuery) async throws -> [AuditRecord] {
        var out: [AuditRecord] = []
        for try await r in try await client.query(query, logger: logger).decode(Row.self) {
            out.append(
                AuditRecord(
                    id: r.0, time: r.1, endpoint: r.2, keyID: r.3, modelRequested: r.5, deployment: r.6, status: r.7, errorCode: r.8,
                    latencyMs: r.9, ttftMs: r.10, tokensIn: r.11, tokensOut: r.12, costUSD: r.13, cacheStatus: r.14, stream: r.15,
                    attempts: r.16, teamID: r.4, details: AuditDetails(jsonText: r.17), requestBody: r.18, responseBody: r.19,
                    flow: r.20, flowVersion: r.21, conversationID: r.22, experiment: r.23, variant: r.24))
        }
        return out
    }

    public func purge(rowsBefore: Double?, bodiesBefore: Double?) async throws -> (rows: Int, bodies: Int) {
        var rows = 0
        var bodies = 0
        if let rowsBefore {
            for try await n in try await client.query("WITH gone AS (DELETE FROM requests WHERE time < \(rowsBefore) RETURNING 1) SELECT COUNT(*) FROM gone", logger: logger)
                .decode(Int.self)
            { rows = n }
        }
        if let bodiesBefore {
            for try await n in try await client.query(
                """
                WITH cleared AS (UPDATE requests SET request_body = NULL, response_body = NULL
                    WHERE time < \(bodiesBefore) AND (request_body IS NOT NULL OR response_body IS NOT NULL) RETURNING 1)
                SELECT COUNT(*) FROM cleared
                """, logger: logger
            ).decode(Int.self) { bodies = n }
        }
        return (rows, bodies)
    }

    public func count() async throws -> Int {
        for try await n in try await client.query("SELECT COUNT(*) FROM requests", logger: logger).decode(Int.self) { return n }
        return 0
    }

    public func ping() async throws {
        try await client.query("SELECT 1", logger: logger)
    }

    public func spend(keyID: String?, teamID: String?, since: Double) async throws -> Double {
        let query: PostgresQuery
        if let keyID {
            query = "SELECT COALESCE(SUM(cost_usd), 0)::DOUBLE PRECISION FROM requests WHERE key_id = \(keyID) AND time >= \(since)"
        } else if let teamID {
            query = "SELECT COALESCE(SUM(cost_usd), 0)::DOUBLE PRECISION FROM requests WHERE team_id = \(teamID) AND time >= \(since)"
        } else {
            return 0
        }
        for try await v in try await client.query(query, logger: logger).decode(Double.self) { return v }
        return 0
    }

    public func usage(_ query: UsageQuery) async throws -> [UsageRow] {
        var conditions: [String] = []
        var binds = PostgresBindings()
        for (condition, value) in query.filters {
            switch value {
            case .number(let n): binds.append(n)
            case .text(let t): binds.append(t)
            }
            conditions.append(condition.replacingOccurrences(of: "?", with: "$\(binds.count)"))
        }
        let group: String? =
            switch query.groupBy {
            case .key: "key_id"
            case .team: "team_id"
            case .model: "model_requested"
            case .day: "to_char(to_timestamp(time) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
            case nil: nil
            }
        let sql = """
            SELECT \(group.map { $0 + "::TEXT" } ?? "NULL::TEXT") AS grp, COUNT(*)::BIGINT, COALESCE(SUM(tokens_in), 0)::BIGINT,
                COALESCE(SUM(tokens_out), 0)::BIGINT, COALESCE(SUM(cost_usd), 0)::DOUBLE PRECISION FROM requests
            \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
            \(group == nil ? "" : "GROUP BY grp ORDER BY grp")
            """
        var out: [UsageRow] = []
        for try await r in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger).decode((String?, Int, Int, Int, Double).self) {
            out.append(UsageRow(group: r.0, requests: r.1, tokensIn: r.2, tokensOut: r.3, costUSD: r.4))
        }
        return out
    }
}
