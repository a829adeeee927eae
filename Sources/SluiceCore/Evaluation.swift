import Foundation

/// What a request is known by when its quality is measured: the flow and version it ran, the
/// deployment that served it, and the experiment variant it was assigned. Copied from the audit
/// record onto feedback and judgements so that their aggregates need no join (and outlive the
/// audit log's retention).
public struct RequestSubject: Sendable, Hashable, Codable {
    public var flow: String?
    public var flowVersion: Int?
    public var model: String?
    public var experiment: String?
    public var variant: String?

    public init(flow: String? = nil, flowVersion: Int? = nil, model: String? = nil, experiment: String? = nil, variant: String? = nil) {
        self.flow = flow
        self.flowVersion = flowVersion
        self.model = model
        self.experiment = experiment
        self.variant = variant
    }

    public init(_ record: AuditRecord) {
        self.init(
            flow: record.flow, flowVersion: record.flowVersion, model: record.deployment ?? record.modelRequested, experiment: record.experiment,
            variant: record.variant)
    }
}

/// A caller's verdict on one answer: a score from 0 to 1 (`up` is 1, `down` 0).
public struct Feedback: Sendable, Hashable {
    public var requestID: String
    /// Who gave it (empty: the caller did not say); one feedback per request and user.
    public var user: String
    public var teamID: String
    public var score: Double
    public var label: String?
    public var comment: String?
    public var time: Double
    public var subject: RequestSubject

    public init(
        requestID: String, user: String = "", teamID: String = "", score: Double, label: String? = nil, comment: String? = nil, time: Double,
        subject: RequestSubject
    ) {
        self.requestID = requestID
        self.user = user
        self.teamID = teamID
        self.score = score
        self.label = label
        self.comment = comment
        self.time = time
        self.subject = subject
    }
}

/// A judge's score of one answer, with its reason and what asking it cost.
public struct Judgement: Sendable, Hashable {
    public var requestID: String
    public var judge: String
    /// On the judge's scale (pass/fail: 1 or 0).
    public var score: Double
    public var reason: String
    /// The deployment that judged.
    public var judgeModel: String
    public var costUSD: Double
    public var time: Double
    public var subject: RequestSubject

    public init(
        requestID: String, judge: String, score: Double, reason: String, judgeModel: String, costUSD: Double, time: Double, subject: RequestSubject
    ) {
        self.requestID = requestID
        self.judge = judge
        self.score = score
        self.reason = reason
        self.judgeModel = judgeModel
        self.costUSD = costUSD
        self.time = time
        self.subject = subject
    }
}

/// Which feedback or judgements to list or sum.
public struct QualityFilter: Sendable, Hashable {
    public var flow: String?
    public var flowVersion: Int?
    public var model: String?
    public var experiment: String?
    public var variant: String?
    public var teamID: String?
    /// Unix seconds, inclusive.
    public var from: Double?
    /// Unix seconds, exclusive.
    public var to: Double?
    public var limit: Int

    public init(
        flow: String? = nil, flowVersion: Int? = nil, model: String? = nil, experiment: String? = nil, variant: String? = nil, teamID: String? = nil,
        from: Double? = nil, to: Double? = nil, limit: Int = 100
    ) {
        self.flow = flow
        self.flowVersion = flowVersion
        self.model = model
        self.experiment = experiment
        self.variant = variant
        self.teamID = teamID
        self.from = from
        self.to = to
        self.limit = limit
    }

    /// `column = ?` conditions with their values, in a fixed order (both stores build their WHERE from it).
    public var conditions: [(sql: String, value: UsageQuery.Value)] {
        var out: [(String, UsageQuery.Value)] = []
        if let flow { out.append(("flow = ?", .text(flow))) }
        if let flowVersion { out.append(("flow_version = ?", .number(Double(flowVersion)))) }
        if let model { out.append(("model = ?", .text(model))) }
        if let experiment { out.append(("experiment = ?", .text(experiment))) }
        if let variant { out.append(("variant = ?", .text(variant))) }
        if let teamID { out.append(("team_id = ?", .text(teamID))) }
        if let from { out.append(("time >= ?", .number(from))) }
        if let to { out.append(("time < ?", .number(to))) }
        return out
    }
}

/// The count, sum and sum of squares of a metric: enough for its mean, variance and a test.
public struct Moments: Sendable, Hashable, Codable {
    public var count: Int
    public var sum: Double
    public var sumOfSquares: Double

    public init(count: Int = 0, sum: Double = 0, sumOfSquares: Double = 0) {
        self.count = count
        self.sum = sum
        self.sumOfSquares = sumOfSquares
    }

    public init<S: Sequence>(_ values: S) where S.Element == Double {
        self.init()
        for v in values { add(v) }
    }

    public mutating func add(_ value: Double) {
        count += 1
        sum += value
        sumOfSquares += value * value
    }

    public var mean: Double? { count > 0 ? sum / Double(count) : nil }

    /// The sample variance (n − 1); nil below two values.
    public var variance: Double? {
        guard count > 1 else { return nil }
        let n = Double(count)
        return max(0, (sumOfSquares - sum * sum / n) / (n - 1))
    }

    /// Whether every value was 0 or 1 (a rate): for values in [0, 1], x² = x only there.
    public var isBinary: Bool { count > 0 && abs(sum - sumOfSquares) < 1e-9 }
}

/// What one group's requests measured: their count and successes, latency and cost, and the
/// feedback and judges' scores they received.
public struct GroupMetrics: Sendable, Hashable {
    public var requests: Int
    public var successes: Int
    public var latencyMs: Moments
    public var costUSD: Moments
    public var feedback: Moments
    /// Per judge.
    public var judges: [String: Moments]

    public init(
        requests: Int = 0, successes: Int = 0, latencyMs: Moments = .init(), costUSD: Moments = .init(), feedback: Moments = .init(),
        judges: [String: Moments] = [:]
    ) {
        self.requests = requests
        self.successes = successes
        self.latencyMs = latencyMs
        self.costUSD = costUSD
        self.feedback = feedback
        self.judges = judges
    }

    /// A metric's moments by its name in an experiment (`success` as 1/0 per request).
    public func moments(_ metric: String) -> Moments? {
        switch metric {
        case "success": Moments(count: requests, sum: Double(successes), sumOfSquares: Double(successes))
        case "latency_ms": latencyMs
        case "cost_usd": costUSD
        case "feedback": feedback
        default: metric.hasPrefix("judge:") ? judges[String(metric.dropFirst(6)), default: .init()] : nil
        }
    }
}

/// Where an experiment stands: running, paused (every request gets the control) or stopped.
public struct ExperimentState: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable, Codable, CaseIterable {
        case running, paused, stopped
    }

    public var name: String
    public var status: Status
    public var updatedAt: Double
    /// The smallest always-valid p-value seen per variant (they may only go down).
    public var minimumP: [String: Double]
    /// The variant promoted, once one was.
    public var promoted: String?

    public init(name: String, status: Status, updatedAt: Double, minimumP: [String: Double] = [:], promoted: String? = nil) {
        self.name = name
        self.status = status
        self.updatedAt = updatedAt
        self.minimumP = minimumP
        self.promoted = promoted
    }
}

/// Feedback, judgements and experiments' state, in SQLite or PostgreSQL.
public protocol QualityStore: Sendable {
    /// Stores feedback, replacing the same user's earlier feedback on the request.
    func putFeedback(_ feedback: Feedback) async throws
    /// Feedback matching a filter, newest first.
    func feedback(_ filter: QualityFilter) async throws -> [Feedback]
    /// Feedback on one request.
    func feedback(requestID: String) async throws -> [Feedback]
    func putJudgement(_ judgement: Judgement) async throws
    func judgements(requestID: String) async throws -> [Judgement]
    func judgements(_ filter: QualityFilter, judge: String?) async throws -> [Judgement]
    /// Requests, feedback and judges' scores grouped by one of `flow_version`, `model`, `variant`
    /// (the audit log's requests for the counts, latency and cost).
    func groupMetrics(_ filter: QualityFilter, by: QualityGrouping) async throws -> [String: GroupMetrics]
    func experimentState(_ name: String) async throws -> ExperimentState?
    func putExperimentState(_ state: ExperimentState) async throws
    /// Offline evaluations run by the server (`POST /admin/evals`), and each one's finished cases.
    func putEvalRun(_ run: EvalRunRecord) async throws
    func evalRun(id: String) async throws -> EvalRunRecord?
    /// Newest first.
    func evalRuns(limit: Int) async throws -> [EvalRunRecord]
    /// Keeps one finished case (its key is the case and variant); a repeated key replaces it.
    func putEvalResult(runID: String, key: String, json: String) async throws
    func evalResults(runID: String) async throws -> [String]
    /// Takes a run for `worker` if it is not final and nobody else holds it — or its holder has
    /// not moved it since `staleBefore`; false when another replica is running it.
    func claimEvalRun(id: String, worker: String, now: Double, staleBefore: Double) async throws -> Bool
}

/// An offline evaluation the server runs: what was asked (`spec`, JSON), how far it is, and its
/// report once done.
public struct EvalRunRecord: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable, CaseIterable {
        case queued, running, completed, failed, cancelled

        public var isFinal: Bool { self == .completed || self == .failed || self == .cancelled }
    }

    public var id: String
    public var status: Status
    public var createdAt: Double
    public var updatedAt: Double
    /// The request, as JSON.
    public var spec: String
    public var total: Int
    public var done: Int
    public var errors: Int
    /// The report's JSON (without the per-case results), once completed.
    public var report: String?
    public var error: String?
    /// The replica running it.
    public var worker: String?

    public init(
        id: String, status: Status, createdAt: Double, updatedAt: Double, spec: String, total: Int, done: Int = 0, errors: Int = 0, report: String? = nil,
        error: String? = nil
    ) {
        self.id = id
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.spec = spec
        self.total = total
        self.done = done
        self.errors = errors
        self.report = report
        self.error = error
    }
}

/// How quality aggregates are grouped.
public enum QualityGrouping: String, Sendable, Hashable, CaseIterable {
    case flowVersion = "flow_version"
    case model
    case variant
    case flow
}
