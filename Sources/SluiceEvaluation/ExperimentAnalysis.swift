import SluiceCore

/// An experiment's result: per variant and metric, n, mean and 95% interval; each variant
/// against the control on every metric, with its test and p-value (and, sequentially, its
/// always-valid p-value); and the decision.
public struct ExperimentAnalysis: Sendable {
    public struct MetricSummary: Sendable, Hashable {
        public var n: Int
        public var mean: Double?
        public var interval: ClosedRange<Double>?
    }

    public struct VariantSummary: Sendable {
        public var name: String
        public var share: Double
        public var version: Int?
        public var model: String?
        public var requests: Int
        public var metrics: [String: MetricSummary]
    }

    public struct Comparison: Sendable {
        public var variant: String
        public var against: String
        public var metric: String
        public var test: Statistics.Comparison
        /// The mixture SPRT's p-value, the smallest seen so far (sequential stopping only).
        public var alwaysValidP: Double?
        public var significant: Bool
        /// Whether the variant is better than the control on this metric (by its direction).
        public var better: Bool
    }

    public enum Decision: Sendable, Hashable {
        case continueRunning
        case winner(String)
        case noDifference

        public var text: String {
            switch self {
            case .continueRunning: "continue"
            case .winner(let v): "winner:\(v)"
            case .noDifference: "no_difference"
            }
        }
    }

    public var name: String
    public var config: ExperimentConfig
    public var variants: [VariantSummary]
    public var comparisons: [Comparison]
    public var decision: Decision
    public var reason: String
    /// The smallest always-valid p-value per variant, to keep for the next look.
    public var minimumP: [String: Double]

    /// Whether larger values of a metric are better.
    public static func higherIsBetter(_ metric: String) -> Bool { !(metric == "latency_ms" || metric == "cost_usd") }

    public static func metrics(of config: ExperimentConfig, judges: [String]) -> [String] {
        var out = ["success", "latency_ms", "cost_usd", "feedback"] + judges.sorted().map { "judge:" + $0 }
        for m in [config.primary] + config.guardrailMetrics where !out.contains(m) { out.append(m) }
        return out
    }

    public init(name: String, config: ExperimentConfig, groups: [String: GroupMetrics], judges: [String], previousMinimumP: [String: Double]) {
        self.name = name
        self.config = config
        let total = config.split.values.reduce(0, +)
        let metricNames = Self.metrics(of: config, judges: judges)
        let control = config.controlVariant
        let order = [control] + config.variants.keys.filter { $0 != control }.sorted()
        variants = order.map { v in
            let g = groups[v] ?? .init()
            var metrics: [String: MetricSummary] = [:]
            for metric in metricNames {
                guard let m = g.moments(metric) else { continue }
                let rate = metric == "success" || (metric == "feedback" && m.isBinary) || (metric.hasPrefix("judge:") && m.isBinary)
                metrics[metric] = MetricSummary(n: m.count, mean: m.mean, interval: Statistics.interval(m, rate: rate))
            }
            return VariantSummary(
                name: v, share: total > 0 ? (config.split[v] ?? 0) / total : 0, version: config.variants[v]?.version, model: config.variants[v]?.model,
                requests: g.requests, metrics: metrics)
        }
        // Each treatment against the control: Bonferroni over the treatments.
        let treatments = order.dropFirst()
        let alpha = config.alpha / Double(max(1, treatments.count))
        var comparisons: [Comparison] = []
        var minimumP = previousMinimumP
        let base = groups[control] ?? .init()
        for v in treatments {
            let g = groups[v] ?? .init()
            for metric in metricNames {
                guard let a = base.moments(metric), let b = g.moments(metric) else { continue }
                let rate = metric == "success" || (a.isBinary && b.isBinary && metric != "latency_ms" && metric != "cost_usd")
                guard let test = rate ? Statistics.twoProportionZTest(a, b) : Statistics.welchTTest(a, b) else { continue }
                var alwaysValid: Double?
                if config.stopping == .sequential && metric == config.primary {
                    let pooledVariance = Self.pooledVariance(a, b)
                    let tau = config.mixtureSD ?? (0.2 * pooledVariance.squareRoot())
                    let p = Statistics.mixtureSPRTPValue(difference: test.difference, variance: test.varianceOfDifference, mixtureVariance: tau * tau)
                    // Only looks with enough samples for the normal approximation count.
                    if a.count >= config.minSamples && b.count >= config.minSamples { minimumP[v] = min(minimumP[v] ?? 1, p) }
                    alwaysValid = minimumP[v] ?? 1
                }
                let higher = Self.higherIsBetter(metric)
                let p = alwaysValid ?? test.pValue
                comparisons.append(
                    Comparison(
                        variant: v, against: control, metric: metric, test: test, alwaysValidP: alwaysValid, significant: p < alpha,
                        better: higher ? test.difference > 0 : test.difference < 0))
            }
        }
        self.comparisons = comparisons
        self.minimumP = minimumP
        (decision, reason) = Self.decide(config: config, control: control, treatments: Array(treatments), groups: groups, comparisons: comparisons, alpha: alpha)
    }

    static func pooledVariance(_ a: Moments, _ b: Moments) -> Double {
        let all = Moments(count: a.count + b.count, sum: a.sum + b.sum, sumOfSquares: a.sumOfSquares + b.sumOfSquares)
        return all.variance ?? 0
    }

    static func decide(
        config: ExperimentConfig, control: String, treatments: [String], groups: [String: GroupMetrics], comparisons: [Comparison], alpha: Double
    ) -> (Decision, String) {
        let primary = comparisons.filter { $0.metric == config.primary }
        let counts = ([control] + treatments).map { groups[$0]?.moments(config.primary)?.count ?? 0 }
        let enough = counts.allSatisfy { $0 >= config.minSamples }
        guard enough else {
            return (.continueRunning, "every variant needs \(config.minSamples) samples of \(config.primary); the fewest has \(counts.min() ?? 0)")
        }
        let significant = primary.filter(\.significant)
        let higher = higherIsBetter(config.primary)
        var winner: String?
        if let best = significant.filter(\.better).max(by: { higher ? $0.test.difference < $1.test.difference : $0.test.difference > $1.test.difference }) {
            winner = best.variant
        } else if !significant.isEmpty && significant.count == primary.count && significant.allSatisfy({ !$0.better }) {
            winner = control
        }
        if let winner {
            // A winner must not be significantly worse on a guardrail metric.
            let checked = winner == control ? [] : comparisons.filter { $0.variant == winner && config.guardrailMetrics.contains($0.metric) }
            let broken = checked.filter { $0.test.pValue < alpha && !$0.better }.map(\.metric)
            if !broken.isEmpty {
                return (.continueRunning, "\(winner) is better on \(config.primary) but worse on \(broken.joined(separator: ", "))")
            }
            let p = primary.first { $0.variant == winner || winner == control }
            let shown = p.map { ($0.alwaysValidP ?? $0.test.pValue) }.map { " (p = \(Self.format($0)) < \(Self.format(alpha)))" } ?? ""
            return (.winner(winner), "\(winner) is better on \(config.primary)\(shown)")
        }
        if config.stopping == .fixed {
            return (.noDifference, "no variant differs from \(control) on \(config.primary) at alpha \(Self.format(alpha)) with \(counts.min() ?? 0)+ samples each")
        }
        if let max = config.maxSamples, counts.allSatisfy({ $0 >= max }) {
            return (.noDifference, "no difference on \(config.primary) after \(max) samples per variant")
        }
        return (.continueRunning, "no significant difference on \(config.primary) yet")
    }

    static func format(_ x: Double) -> String {
        x < 0.0001 ? String(format: "%.2e", x) : String(format: "%.4f", x)
    }

    /// The analysis as the admin API answers it.
    public func json(status: ExperimentState.Status, promoted: String?) -> JSONValue {
        func number(_ x: Double?) -> JSONValue {
            guard let x, x.isFinite else { return .null }
            return .double((x * 1e6).rounded() / 1e6)
        }
        func interval(_ r: ClosedRange<Double>?) -> JSONValue { r.map { .array([number($0.lowerBound), number($0.upperBound)]) } ?? .null }
        var o: [String: JSONValue] = [
            "object": "experiment", "name": .string(name), "status": .string(status.rawValue), "primary": .string(config.primary),
            "stopping": .string(config.stopping.rawValue), "alpha": .double(config.alpha), "min_samples": .int(config.minSamples),
            "control": .string(config.controlVariant), "sticky": .string(config.sticky.rawValue), "decision": .string(decision.text),
            "reason": .string(reason), "auto_promote": .bool(config.autoPromote), "promoted": promoted.map(JSONValue.string) ?? .null,
            "guardrail_metrics": .array(config.guardrailMetrics.map(JSONValue.string)),
        ]
        if let flow = config.flow { o["flow"] = .string(flow) }
        if let alias = config.alias { o["alias"] = .string(alias) }
        o["variants"] = .array(
            variants.map { v in
                var m: [String: JSONValue] = [:]
                for (name, s) in v.metrics { m[name] = .object(["n": .int(s.n), "mean": number(s.mean), "ci95": interval(s.interval)]) }
                return .object([
                    "name": .string(v.name), "share": number(v.share), "version": v.version.map(JSONValue.int) ?? .null,
                    "model": v.model.map(JSONValue.string) ?? .null, "requests": .int(v.requests), "metrics": .object(m),
                ])
            })
        o["comparisons"] = .array(
            comparisons.map { c in
                var e: [String: JSONValue] = [
                    "variant": .string(c.variant), "against": .string(c.against), "metric": .string(c.metric), "test": .string(c.test.test),
                    "difference": number(c.test.difference), "ci95": interval(c.test.interval), "statistic": number(c.test.statistic),
                    "p_value": number(c.test.pValue), "significant": .bool(c.significant), "better": .bool(c.better),
                ]
                if let df = c.test.degreesOfFreedom { e["df"] = number(df) }
                if let p = c.alwaysValidP { e["always_valid_p"] = number(p) }
                return .object(e)
            })
        return .object(o)
    }
}
