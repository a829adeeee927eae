import GRDB
import SluiceCore

/// Feedback, judgements and experiments' state in the embedded SQLite database.
public final class SQLiteQualityStore: QualityStore {
    let writer: any DatabaseWriter

    public init(database: SQLiteDatabase) { self.writer = database.writer }

    private static func arguments(_ values: [UsageQuery.Value]) -> StatementArguments {
        StatementArguments(
            values.map { v -> any DatabaseValueConvertible in
                switch v {
                case .number(let n): n
                case .text(let t): t
                }
            })
    }

    public func putFeedback(_ f: Feedback) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO feedback (\(QualitySQL.feedbackColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    f.requestID, f.user, f.teamID, f.score, f.label, f.comment, f.time, f.subject.flow, f.subject.flowVersion, f.subject.model,
                    f.subject.experiment, f.subject.variant,
                ])
        }
    }

    public func feedback(_ filter: QualityFilter) async throws -> [Feedback] {
        let (clause, values) = QualitySQL.whereClause(filter)
        return try await writer.read { db in
            var arguments = Self.arguments(values)
            arguments += [filter.limit]
            return try Row.fetchAll(
                db, sql: "SELECT \(QualitySQL.feedbackColumns) FROM feedback\(clause) ORDER BY time DESC, request_id DESC LIMIT ?", arguments: arguments
            ).map(Self.feedback)
        }
    }

    public func feedback(requestID: String) async throws -> [Feedback] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT \(QualitySQL.feedbackColumns) FROM feedback WHERE request_id = ? ORDER BY time", arguments: [requestID])
                .map(Self.feedback)
        }
    }

    static func feedback(_ r: Row) -> Feedback {
        Feedback(
            requestID: r[0], user: r[1], teamID: r[2], score: r[3], label: r[4], comment: r[5], time: r[6],
            subject: RequestSubject(flow: r[7], flowVersion: r[8], model: r[9], experiment: r[10], variant: r[11]))
    }

    public func putJudgement(_ j: Judgement) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO judgements (\(QualitySQL.judgementColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    j.requestID, j.judge, j.score, j.reason, j.judgeModel, j.costUSD, j.time, j.subject.flow, j.subject.flowVersion, j.subject.model,
                    j.subject.experiment, j.subject.variant,
                ])
        }
    }

    public func judgements(requestID: String) async throws -> [Judgement] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT \(QualitySQL.judgementColumns) FROM judgements WHERE request_id = ? ORDER BY judge", arguments: [requestID])
                .map(Self.judgement)
        }
    }

    public func judgements(_ filter: QualityFilter, judge: String?) async throws -> [Judgement] {
        let (clause, values) = QualitySQL.whereClause(filter, extra: judge.map { [("judge = ?", .text($0))] } ?? [])
        return try await writer.read { db in
            var arguments = Self.arguments(values)
            arguments += [filter.limit]
            return try Row.fetchAll(
                db, sql: "SELECT \(QualitySQL.judgementColumns) FROM judgements\(clause) ORDER BY time DESC, request_id DESC LIMIT ?",
                arguments: arguments
            ).map(Self.judgement)
        }
    }

    static func judgement(_ r: Row) -> Judgement {
        Judgement(
            requestID: r[0], judge: r[1], score: r[2], reason: r[3], judgeModel: r[4], costUSD: r[5], time: r[6],
            subject: RequestSubject(flow: r[7], flowVersion: r[8], model: r[9], experiment: r[10], variant: r[11]))
    }

    public func groupMetrics(_ filter: QualityFilter, by grouping: QualityGrouping) async throws -> [String: GroupMetrics] {
        let requests = QualitySQL.requestAggregates(filter, by: grouping)
        let feedback = QualitySQL.feedbackAggregates(filter, by: grouping)
        let judgements = QualitySQL.judgementAggregates(filter, by: grouping)
        return try await writer.read { db in
            var out: [String: GroupMetrics] = [:]
            for r in try Row.fetchAll(db, sql: requests.sql, arguments: Self.arguments(requests.values)) {
                let n: Int = r[1]
                out[r[0] as String] = GroupMetrics(
                    requests: n, successes: r[2] ?? 0, latencyMs: Moments(count: n, sum: r[3] ?? 0, sumOfSquares: r[4] ?? 0),
                    costUSD: Moments(count: n, sum: r[5] ?? 0, sumOfSquares: r[6] ?? 0))
            }
            for r in try Row.fetchAll(db, sql: feedback.sql, arguments: Self.arguments(feedback.values)) {
                out[r[0] as String, default: .init()].feedback = Moments(count: r[1], sum: r[2] ?? 0, sumOfSquares: r[3] ?? 0)
            }
            for r in try Row.fetchAll(db, sql: judgements.sql, arguments: Self.arguments(judgements.values)) {
                out[r[0] as String, default: .init()].judges[r[1] as String] = Moments(count: r[2], sum: r[3] ?? 0, sumOfSquares: r[4] ?? 0)
            }
            return out
        }
    }

    public func experimentState(_ name: String) async throws -> ExperimentState? {
        try await writer.read { db in
            try Row.fetchOne(db, sql: "SELECT name, status, updated_at, minimum_p, promoted FROM experiment_states WHERE name = ?", arguments: [name])
                .map { r in
                    ExperimentState(
                        name: r[0], status: ExperimentState.Status(rawValue: r[1]) ?? .running, updatedAt: r[2],
                        minimumP: QualitySQL.decodeMinimumP(r[3]), promoted: r[4])
                }
        }
    }

    public func putExperimentState(_ s: ExperimentState) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO experiment_states (name, status, updated_at, minimum_p, promoted) VALUES (?, ?, ?, ?, ?)",
                arguments: [s.name, s.status.rawValue, s.updatedAt, QualitySQL.encodeMinimumP(s.minimumP), s.promoted])
        }
    }

    public func putEvalRun(_ r: EvalRunRecord) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO eval_runs (\(QualitySQL.evalRunColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [r.id, r.status.rawValue, r.createdAt, r.updatedAt, r.spec, r.total, r.done, r.errors, r.report, r.error, r.worker])
        }
    }

    static func evalRun(_ r: Row) -> EvalRunRecord {
        var run = EvalRunRecord(
            id: r[0], status: EvalRunRecord.Status(rawValue: r[1]) ?? .failed, createdAt: r[2], updatedAt: r[3], spec: r[4], total: r[5], done: r[6],
            errors: r[7], report: r[8], error: r[9])
        run.worker = r[10]
        return run
    }

    public func claimEvalRun(id: String, worker: String, now: Double, staleBefore: Double) async throws -> Bool {
        try await writer.write { db in
            try db.execute(
                sql: """
                    UPDATE eval_runs SET worker = ?, updated_at = ? WHERE id = ? AND status IN ('queued', 'running')
                        AND (worker IS NULL OR worker = ? OR updated_at < ?)
                    """, arguments: [worker, now, id, worker, staleBefore])
            return db.changesCount == 1
        }
    }

    public func evalRun(id: String) async throws -> EvalRunRecord? {
        try await writer.read { db in
            try Row.fetchOne(db, sql: "SELECT \(QualitySQL.evalRunColumns) FROM eval_runs WHERE id = ?", arguments: [id]).map(Self.evalRun)
        }
    }

    public func evalRuns(limit: Int) async throws -> [EvalRunRecord] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT \(QualitySQL.evalRunColumns) FROM eval_runs ORDER BY created_at DESC, id DESC LIMIT ?", arguments: [limit])
                .map(Self.evalRun)
        }
    }

    public func putEvalResult(runID: String, key: String, json: String) async throws {
        try await writer.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO eval_results (run_id, key, result) VALUES (?, ?, ?)", arguments: [runID, key, json])
        }
    }

    public func evalResults(runID: String) async throws -> [String] {
        try await writer.read { db in
            try String.fetchAll(db, sql: "SELECT result FROM eval_results WHERE run_id = ? ORDER BY key", arguments: [runID])
        }
    }
}
