import Foundation
import Logging
import PostgresNIO
import SluiceCore

/// Feedback, judgements and experiments' state in PostgreSQL, shared by replicas.
public final class PostgresQualityStore: QualityStore {
    let db: PostgresDatabase
    private var client: PostgresClient { db.client }
    private var logger: Logger { db.logger }

    public init(database: PostgresDatabase) { self.db = database }

    /// `?` placeholders numbered, values bound in order.
    private static func query(_ sql: String, _ values: [UsageQuery.Value], then extra: [Int] = []) -> PostgresQuery {
        var binds = PostgresBindings()
        var values = values.makeIterator()
        var out = ""
        var extras = extra.makeIterator()
        for ch in sql {
            guard ch == "?" else {
                out.append(ch)
                continue
            }
            if let value = values.next() {
                switch value {
                case .number(let n): binds.append(n)
                case .text(let t): binds.append(t)
                }
            } else if let e = extras.next() {
                binds.append(e)
            }
            out += "$\(binds.count)"
        }
        return PostgresQuery(unsafeSQL: out, binds: binds)
    }

    private typealias FeedbackRow = (String, String, String, Double, String?, String?, Double, String?, Int?, String?, String?, String?)
    private typealias JudgementRow = (String, String, Double, String, String, Double, Double, String?, Int?, String?, String?, String?)

    public func putFeedback(_ f: Feedback) async throws {
        try await client.query(
            """
            INSERT INTO feedback (request_id, user_id, team_id, score, label, comment, time, flow, flow_version, model, experiment, variant)
            VALUES (\(f.requestID), \(f.user), \(f.teamID), \(f.score), \(f.label), \(f.comment), \(f.time), \(f.subject.flow), \(f.subject.flowVersion),
                \(f.subject.model), \(f.subject.experiment), \(f.subject.variant))
            ON CONFLICT (request_id, user_id) DO UPDATE SET team_id = EXCLUDED.team_id, score = EXCLUDED.score, label = EXCLUDED.label,
                comment = EXCLUDED.comment, time = EXCLUDED.time, flow = EXCLUDED.flow, flow_version = EXCLUDED.flow_version,
                model = EXCLUDED.model, experiment = EXCLUDED.experiment, variant = EXCLUDED.variant
            """, logger: logger)
    }

    public func feedback(_ filter: QualityFilter) async throws -> [Feedback] {
        let (clause, values) = QualitySQL.whereClause(filter)
        return try await feedbackRows(
            Self.query("SELECT \(QualitySQL.feedbackColumns) FROM feedback\(clause) ORDER BY time DESC, request_id DESC LIMIT ?", values, then: [filter.limit]))
    }

    public func feedback(requestID: String) async throws -> [Feedback] {
        try await feedbackRows(Self.query("SELECT \(QualitySQL.feedbackColumns) FROM feedback WHERE request_id = ? ORDER BY time", [.text(requestID)]))
    }

    private func feedbackRows(_ query: PostgresQuery) async throws -> [Feedback] {
        var out: [Feedback] = []
        for try await r in try await client.query(query, logger: logger).decode(FeedbackRow.self) {
            out.append(
                Feedback(
                    requestID: r.0, user: r.1, teamID: r.2, score: r.3, label: r.4, comment: r.5, time: r.6,
                    subject: RequestSubject(flow: r.7, flowVersion: r.8, model: r.9, experiment: r.10, variant: r.11)))
        }
        return out
    }

    public func putJudgement(_ j: Judgement) async throws {
        try await client.query(
            """
            INSERT INTO judgements (request_id, judge, score, reason, judge_model, cost_usd, time, flow, flow_version, model, experiment, variant)
            VALUES (\(j.requestID), \(j.judge), \(j.score), \(j.reason), \(j.judgeModel), \(j.costUSD), \(j.time), \(j.subject.flow),
                \(j.subject.flowVersion), \(j.subject.model), \(j.subject.experiment), \(j.subject.variant))
            ON CONFLICT (request_id, judge) DO UPDATE SET score = EXCLUDED.score, reason = EXCLUDED.reason, judge_model = EXCLUDED.judge_model,
                cost_usd = EXCLUDED.cost_usd, time = EXCLUDED.time
            """, logger: logger)
    }

    public func judgements(requestID: String) async throws -> [Judgement] {
        try await judgementRows(
            Self.query("SELECT \(QualitySQL.judgementColumns) FROM judgements WHERE request_id = ? ORDER BY judge", [.text(requestID)]))
    }

    public func judgements(_ filter: QualityFilter, judge: String?) async throws -> [Judgement] {
        let (clause, values) = QualitySQL.whereClause(filter, extra: judge.map { [("judge = ?", .text($0))] } ?? [])
        return try await judgementRows(
            Self.query(
                "SELECT \(QualitySQL.judgementColumns) FROM judgements\(clause) ORDER BY time DESC, request_id DESC LIMIT ?", values, then: [filter.limit]))
    }

    private func judgementRows(_ query: PostgresQuery) async throws -> [Judgement] {
        var out: [Judgement] = []
        for try await r in try await client.query(query, logger: logger).decode(JudgementRow.self) {
            out.append(
                Judgement(
                    requestID: r.0, judge: r.1, score: r.2, reason: r.3, judgeModel: r.4, costUSD: r.5, time: r.6,
                    subject: RequestSubject(flow: r.7, flowVersion: r.8, model: r.9, experiment: r.10, variant: r.11)))
        }
        return out
    }

    public func groupMetrics(_ filter: QualityFilter, by grouping: QualityGrouping) async throws -> [String: GroupMetrics] {
        var out: [String: GroupMetrics] = [:]
        let requests = QualitySQL.requestAggregates(filter, by: grouping)
        for try await r in try await client.query(Self.query(requests.sql, requests.values), logger: logger)
            .decode((String, Int64, Int64?, Double?, Double?, Double?, Double?).self)
        {
            let n = Int(r.1)
            out[r.0] = GroupMetrics(
                requests: n, successes: Int(r.2 ?? 0), latencyMs: Moments(count: n, sum: r.3 ?? 0, sumOfSquares: r.4 ?? 0),
                costUSD: Moments(count: n, sum: r.5 ?? 0, sumOfSquares: r.6 ?? 0))
        }
        let feedback = QualitySQL.feedbackAggregates(filter, by: grouping)
        for try await r in try await client.query(Self.query(feedback.sql, feedback.values), logger: logger).decode((String, Int64, Double?, Double?).self) {
            out[r.0, default: .init()].feedback = Moments(count: Int(r.1), sum: r.2 ?? 0, sumOfSquares: r.3 ?? 0)
        }
        let judgements = QualitySQL.judgementAggregates(filter, by: grouping)
        for try await r in try await client.query(Self.query(judgements.sql, judgements.values), logger: logger)
            .decode((String, String, Int64, Double?, Double?).self)
        {
            out[r.0, default: .init()].judges[r.1] = Moments(count: Int(r.2), sum: r.3 ?? 0, sumOfSquares: r.4 ?? 0)
        }
        return out
    }

    public func experimentState(_ name: String) async throws -> ExperimentState? {
        for try await r in try await client.query(
            "SELECT name, status, updated_at, minimum_p, promoted FROM experiment_states WHERE name = \(name)", logger: logger
        ).decode((String, String, Double, String, String?).self) {
            return ExperimentState(
                name: r.0, status: ExperimentState.Status(rawValue: r.1) ?? .running, updatedAt: r.2, minimumP: QualitySQL.decodeMinimumP(r.3),
                promoted: r.4)
        }
        return nil
    }

    public func putExperimentState(_ s: ExperimentState) async throws {
        let minimumP = QualitySQL.encodeMinimumP(s.minimumP)
        try await client.query(
            """
            INSERT INTO experiment_states (name, status, updated_at, minimum_p, promoted) VALUES (\(s.name), \(s.status.rawValue), \(s.updatedAt),
                \(minimumP), \(s.promoted))
            ON CONFLICT (name) DO UPDATE SET status = EXCLUDED.status, updated_at = EXCLUDED.updated_at, minimum_p = EXCLUDED.minimum_p,
                promoted = EXCLUDED.promoted
            """, logger: logger)
    }

    public func putEvalRun(_ r: EvalRunRecord) async throws {
        try await client.query(
            """
            INSERT INTO eval_runs (id, status, created_at, updated_at, spec, total, done, errors, report, error, worker)
            VALUES (\(r.id), \(r.status.rawValue), \(r.createdAt), \(r.updatedAt), \(r.spec), \(r.total), \(r.done), \(r.errors), \(r.report), \(r.error),
                \(r.worker))
            ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, updated_at = EXCLUDED.updated_at, total = EXCLUDED.total, done = EXCLUDED.done,
                errors = EXCLUDED.errors, report = EXCLUDED.report, error = EXCLUDED.error, worker = EXCLUDED.worker
            """, logger: logger)
    }

    private typealias EvalRunRow = (String, String, Double, Double, String, Int, Int, Int, String?, String?, String?)

    private func evalRunRows(_ query: PostgresQuery) async throws -> [EvalRunRecord] {
        var out: [EvalRunRecord] = []
        for try await r in try await client.query(query, logger: logger).decode(EvalRunRow.self) {
            var run = EvalRunRecord(
                id: r.0, status: EvalRunRecord.Status(rawValue: r.1) ?? .failed, createdAt: r.2, updatedAt: r.3, spec: r.4, total: r.5, done: r.6,
                errors: r.7, report: r.8, error: r.9)
            run.worker = r.10
            out.append(run)
        }
        return out
    }

    public func evalRun(id: String) async throws -> EvalRunRecord? {
        try await evalRunRows(Self.query("SELECT \(QualitySQL.evalRunColumns) FROM eval_runs WHERE id = ?", [.text(id)])).first
    }

    public func evalRuns(limit: Int) async throws -> [EvalRunRecord] {
        try await evalRunRows(Self.query("SELECT \(QualitySQL.evalRunColumns) FROM eval_runs ORDER BY created_at DESC, id DESC LIMIT ?", [], then: [limit]))
    }

    public func claimEvalRun(id: String, worker: String, now: Double, staleBefore: Double) async throws -> Bool {
        for try await n in try await client.query(
            """
            WITH taken AS (UPDATE eval_runs SET worker = \(worker), updated_at = \(now) WHERE id = \(id) AND status IN ('queued', 'running')
                AND (worker IS NULL OR worker = \(worker) OR updated_at < \(staleBefore)) RETURNING 1)
            SELECT COUNT(*)::BIGINT FROM taken
            """, logger: logger
        ).decode(Int64.self) { return n == 1 }
        return false
    }

    public func putEvalResult(runID: String, key: String, json: String) async throws {
        try await client.query(
            "INSERT INTO eval_results (run_id, key, result) VALUES (\(runID), \(key), \(json)) ON CONFLICT (run_id, key) DO UPDATE SET result = EXCLUDED.result",
            logger: logger)
    }

    public func evalResults(runID: String) async throws -> [String] {
        var out: [String] = []
        for try await r in try await client.query("SELECT result FROM eval_results WHERE run_id = \(runID) ORDER BY key", logger: logger).decode(String.self) {
            out.append(r)
        }
        return out
    }
}
