import SluiceCore

/// A flow's objectives against what the audit log recorded, per window: each objective's target,
/// the measured value, whether it is met, and how much of its error budget is left (1: untouched,
/// 0: spent, below 0: overspent).
public struct SLOReport: Sendable, Encodable {
    public struct Objective: Sendable, Encodable, Hashable {
        public var name: String
        public var target: Double
        public var actual: Double?
        public var met: Bool?
        public var errorBudgetLeft: Double?

        enum CodingKeys: String, CodingKey {
            case name, target, actual, met
            case errorBudgetLeft = "error_budget_left"
        }
    }

    public struct Window: Sendable, Encodable {
        public var window: String
        public var requests: Int
        public var successRate: Double?
        public var p50Ms: Double?
        public var p95Ms: Double?
        public var p99Ms: Double?
        public var costPerRunUSD: Double?
        /// The mean feedback score (0 to 1) and how many gave it.
        public var feedback: Double?
        public var feedbackCount: Int
        /// Each judge's mean score.
        public var judges: [String: Double]
        public var objectives: [Objective]

        enum CodingKeys: String, CodingKey {
            case window, requests, objectives
            case successRate = "success_rate"
            case p50Ms = "p50_ms"
            case p95Ms = "p95_ms"
            case p99Ms = "p99_ms"
            case costPerRunUSD = "cost_per_run_usd"
            case feedback
            case feedbackCount = "feedback_count"
            case judges
        }
    }

    public var flow: String
    /// The version reported on; nil for every version together.
    public var version: Int?
    public var windows: [Window]

    /// The windows reported, longest last.
    public static let windows: [(name: String, seconds: Double)] = [("1h", 3600), ("24h", 86_400), ("7d", 604_800)]

    /// The latencies whose share of slower runs the objectives need counted.
    public static func thresholds(_ slo: FlowConfig.SLO?) -> [Double] {
        [slo?.p50Ms, slo?.p95Ms, slo?.p99Ms].compactMap { $0 }
    }

    public init(flow: String, version: Int?, slo: FlowConfig.SLO?, stats: [(window: String, stats: FlowStats)]) {
        self.flow = flow
        self.version = version
        self.windows = stats.map { name, s in
            let n = Double(s.requests)
            return Window(
                window: name, requests: s.requests, successRate: s.requests > 0 ? Double(s.successes) / n : nil, p50Ms: s.p50Ms, p95Ms: s.p95Ms,
                p99Ms: s.p99Ms, costPerRunUSD: s.requests > 0 ? s.costUSD / n : nil, feedback: s.feedback.mean, feedbackCount: s.feedback.count,
                judges: s.judges.compactMapValues(\.mean), objectives: Self.objectives(slo, s))
        }
    }

    static func objectives(_ slo: FlowConfig.SLO?, _ s: FlowStats) -> [Objective] {
        guard let slo else { return [] }
        let n = Double(s.requests)
        var out: [Objective] = []
        // A latency objective at quantile q allows a share 1 - q of runs above its target.
        for (name, target, actual, q) in [("p50_ms", slo.p50Ms, s.p50Ms, 0.50), ("p95_ms", slo.p95Ms, s.p95Ms, 0.95), ("p99_ms", slo.p99Ms, s.p99Ms, 0.99)] {
            guard let target else { continue }
            let slower = Double(s.slowerThan[target] ?? 0)
            out.append(
                Objective(
                    name: name, target: target, actual: actual, met: actual.map { $0 <= target },
                    errorBudgetLeft: n > 0 ? 1 - (slower / n) / (1 - q) : 1))
        }
        if let target = slo.successRate {
            let actual = n > 0 ? Double(s.successes) / n : nil
            out.append(
                Objective(
                    name: "success_rate", target: target, actual: actual, met: actual.map { $0 >= target },
                    errorBudgetLeft: actual.map { 1 - (1 - $0) / (1 - target) } ?? 1))
        }
        if let target = slo.maxCostUSD {
            let actual = n > 0 ? s.costUSD / n : nil
            out.append(Objective(name: "max_cost_usd", target: target, actual: actual, met: actual.map { $0 <= target }, errorBudgetLeft: nil))
        }
        if let target = slo.minFeedback {
            let actual = s.feedback.mean
            out.append(Objective(name: "min_feedback", target: target, actual: actual, met: actual.map { $0 >= target }, errorBudgetLeft: nil))
        }
        for (judge, target) in (slo.minJudge ?? [:]).sorted(by: { $0.key < $1.key }) {
            let actual = s.judges[judge]?.mean
            out.append(Objective(name: "min_judge:\(judge)", target: target, actual: actual, met: actual.map { $0 >= target }, errorBudgetLeft: nil))
        }
        return out
    }
}
