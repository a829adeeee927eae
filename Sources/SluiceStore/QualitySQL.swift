import SluiceCore

/// The SQL both quality stores share: the tables (the same statements run on SQLite and
/// PostgreSQL) and the aggregate queries, with `?` placeholders (PostgreSQL numbers them).
enum QualitySQL {
    static let migration: [String] = [
        "ALTER TABLE requests ADD COLUMN experiment TEXT",
        "ALTER TABLE requests ADD COLUMN variant TEXT",
        "CREATE INDEX requests_experiment ON requests(experiment, variant) WHERE experiment IS NOT NULL",
        """
        CREATE TABLE feedback (request_id TEXT NOT NULL, user_id TEXT NOT NULL, team_id TEXT NOT NULL, score DOUBLE PRECISION NOT NULL,
            label TEXT, comment TEXT, time DOUBLE PRECISION NOT NULL, flow TEXT, flow_version INTEGER, model TEXT, experiment TEXT, variant TEXT,
            PRIMARY KEY (request_id, user_id))
        """,
        "CREATE INDEX feedback_time ON feedback(time)",
        "CREATE INDEX feedback_flow ON feedback(flow, time) WHERE flow IS NOT NULL",
        "CREATE INDEX feedback_experiment ON feedback(experiment, variant) WHERE experiment IS NOT NULL",
        """
        CREATE TABLE judgements (request_id TEXT NOT NULL, judge TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, reason TEXT NOT NULL,
            judge_model TEXT NOT NULL, cost_usd DOUBLE PRECISION NOT NULL, time DOUBLE PRECISION NOT NULL, team_id TEXT NOT NULL DEFAULT '',
            flow TEXT, flow_version INTEGER, model TEXT, experiment TEXT, variant TEXT, PRIMARY KEY (request_id, judge))
        """,
        "CREATE INDEX judgements_time ON judgements(time)",
        "CREATE INDEX judgements_flow ON judgements(flow, time) WHERE flow IS NOT NULL",
        "CREATE INDEX judgements_experiment ON judgements(experiment, variant) WHERE experiment IS NOT NULL",
        """
        CREATE TABLE experiment_states (name TEXT PRIMARY KEY, status TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
            minimum_p TEXT NOT NULL, promoted TEXT)
        """,
        """
        CREATE TABLE eval_runs (id TEXT PRIMARY KEY, status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
            spec TEXT NOT NULL, total INTEGER NOT NULL, done INTEGER NOT NULL, errors INTEGER NOT NULL, report TEXT, error TEXT, worker TEXT)
        """,
        "CREATE INDEX eval_runs_created ON eval_runs(created_at)",
        "CREATE TABLE eval_results (run_id TEXT NOT NULL, key TEXT NOT NULL, result TEXT NOT NULL, PRIMARY KEY (run_id, key))",
    ]

    static let evalRunColumns = "id, status, created_at, updated_at, spec, total, done, errors, report, error, worker"

    static let feedbackColumns = "request_id, user_id, team_id, score, label, comment, time, flow, flow_version, model, experiment, variant"
    static let judgementColumns = "request_id, judge, score, reason, judge_model, cost_usd, time, flow, flow_version, model, experiment, variant"

    /// A filter's WHERE clause over a table; the audit log calls the serving model `deployment`.
    static func whereClause(_ filter: QualityFilter, requests: Bool = false, extra: [(String, UsageQuery.Value)] = [])
        -> (sql: String, values: [UsageQuery.Value])
    {
        var parts: [String] = []
        var values: [UsageQuery.Value] = []
        for (sql, value) in filter.conditions + extra {
            parts.append(requests && sql.hasPrefix("model ") ? "deployment = ?" : sql)
            values.append(value)
        }
        return (parts.isEmpty ? "" : " WHERE " + parts.joined(separator: " AND "), values)
    }

    static func groupColumn(_ grouping: QualityGrouping, requests: Bool) -> String {
        switch grouping {
        case .flowVersion: "flow_version"
        case .model: requests ? "deployment" : "model"
        case .variant: "variant"
        case .flow: "flow"
        }
    }

    /// Per group: requests, successes, latency and cost sums and sums of squares.
    static func requestAggregates(_ filter: QualityFilter, by grouping: QualityGrouping) -> (sql: String, values: [UsageQuery.Value]) {
        let g = groupColumn(grouping, requests: true)
        let (clause, values) = whereClause(filter, requests: true)
        let sql = """
            SELECT CAST(\(g) AS TEXT), COUNT(*), CAST(SUM(CASE WHEN status BETWEEN 200 AND 299 THEN 1 ELSE 0 END) AS BIGINT),
                SUM(latency_ms), SUM(latency_ms * latency_ms), SUM(cost_usd), SUM(cost_usd * cost_usd)
            FROM requests\(clause.isEmpty ? " WHERE" : clause + " AND") \(g) IS NOT NULL GROUP BY \(g)
            """
        return (sql, values)
    }

    static func feedbackAggregates(_ filter: QualityFilter, by grouping: QualityGrouping) -> (sql: String, values: [UsageQuery.Value]) {
        let g = groupColumn(grouping, requests: false)
        let (clause, values) = whereClause(filter)
        return (
            "SELECT CAST(\(g) AS TEXT), COUNT(*), SUM(score), SUM(score * score) FROM feedback\(clause.isEmpty ? " WHERE" : clause + " AND") \(g) IS NOT NULL GROUP BY \(g)",
            values
        )
    }

    static func judgementAggregates(_ filter: QualityFilter, by grouping: QualityGrouping) -> (sql: String, values: [UsageQuery.Value]) {
        let g = groupColumn(grouping, requests: false)
        let (clause, values) = whereClause(filter)
        return (
            "SELECT CAST(\(g) AS TEXT), judge, COUNT(*), SUM(score), SUM(score * score) FROM judgements\(clause.isEmpty ? " WHERE" : clause + " AND") \(g) IS NOT NULL GROUP BY \(g), judge",
            values
        )
    }

    static func encodeMinimumP(_ p: [String: Double]) -> String {
        "{" + p.sorted { $0.key < $1.key }.map { "\"\(jsonEscaped($0.key))\":\($0.value)" }.joined(separator: ",") + "}"
    }

    static func decodeMinimumP(_ text: String) -> [String: Double] {
        guard let value = Array(text.utf8).withUnsafeBytes({ JSONParser.parse($0) }), case .object(let members) = value else { return [:] }
        return members.compactMapValues { v in
            switch v {
            case .double(let d): d
            case .int(let i): Double(i)
            default: nil
            }
        }
    }

    private static func jsonEscaped(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
