import Foundation
import SluiceCore

/// One variant of an offline evaluation: a flow version, a model, or both.
public struct EvalVariant: Sendable, Hashable {
    public var version: Int?
    public var model: String?

    public init(version: Int? = nil, model: String? = nil) {
        self.version = version
        self.model = model
    }

    public var name: String {
        [version.map { "v\($0)" }, model].compactMap { $0 }.joined(separator: " · ").ifEmpty("active")
    }
}

extension String {
    fileprivate func ifEmpty(_ other: String) -> String { isEmpty ? other : self }
}

/// One case run through one variant, with its scores.
public struct EvalCaseResult: Sendable, Hashable {
    public var caseID: String
    public var variant: String
    public var input: String
    public var reference: String?
    public var output: String
    /// Why the run failed (status and message), when it did.
    public var error: String?
    public var latencyMs: Double
    public var costUSD: Double
    public var scores: [String: Double]
    /// A judge's reason per scorer.
    public var notes: [String: String]
    /// A judge's scores when it was asked more than once (`--judge-runs`).
    public var repeats: [String: [Double]] = [:]

    public init(
        caseID: String, variant: String, input: String, reference: String?, output: String, error: String?, latencyMs: Double, costUSD: Double,
        scores: [String: Double] = [:], notes: [String: String] = [:]
    ) {
        self.caseID = caseID
        self.variant = variant
        self.input = input
        self.reference = reference
        self.output = output
        self.error = error
        self.latencyMs = latencyMs
        self.costUSD = costUSD
        self.scores = scores
        self.notes = notes
    }

    /// One line of the run's journal (what a resumed run reads back).
    public var json: JSONValue {
        .object([
            "case": .string(caseID), "variant": .string(variant), "input": .string(input), "reference": reference.map(JSONValue.string) ?? .null,
            "output": .string(output), "error": error.map(JSONValue.string) ?? .null, "latency_ms": .double(latencyMs), "cost_usd": .double(costUSD),
            "scores": .object(scores.mapValues(JSONValue.double)), "notes": .object(notes.mapValues(JSONValue.string)),
            "repeats": .object(repeats.mapValues { .array($0.map(JSONValue.double)) }),
        ])
    }

    public init?(json: JSONValue) {
        guard case .object(let o) = json, let id = o["case"]?.stringValue, let variant = o["variant"]?.stringValue else { return nil }
        func number(_ v: JSONValue?) -> Double? {
            switch v {
            case .double(let d)?: d
            case .int(let i)?: Double(i)
            default: nil
            }
        }
        var scores: [String: Double] = [:]
        if case .object(let s)? = o["scores"] { for (k, v) in s { scores[k] = number(v) } }
        var notes: [String: String] = [:]
        if case .object(let n)? = o["notes"] { for (k, v) in n { notes[k] = v.stringValue } }
        self.init(
            caseID: id, variant: variant, input: o["input"]?.stringValue ?? "", reference: o["reference"]?.stringValue,
            output: o["output"]?.stringValue ?? "", error: o["error"]?.stringValue, latencyMs: number(o["latency_ms"]) ?? 0,
            costUSD: number(o["cost_usd"]) ?? 0, scores: scores, notes: notes)
        if case .object(let r)? = o["repeats"] { for (k, v) in r { repeats[k] = (v.arrayValue ?? []).compactMap(number) } }
    }
}

/// An offline evaluation's results: per variant quality, cost, latency and errors; the
/// recommendation; the gates.
public struct EvalReport: Sendable {
    public struct Summary: Sendable, Hashable {
        public var variant: String
        public var cases: Int
        public var errors: Int
        /// Mean per scorer, over the cases it scored.
        public var means: [String: Double]
        public var costUSD: Double
        public var costPerCaseUSD: Double
        public var p50Ms: Double?
        public var p95Ms: Double?
    }

    /// A threshold a variant must meet (`--gate 'judge:helpfulness>=4.0'`).
    public struct Gate: Sendable, Hashable {
        public var scorer: String
        public var op: String
        public var value: Double

        public init(parsing text: String) throws {
            for op in [">=", "<=", ">", "<"] {
                if let r = text.range(of: op) {
                    let name = text[..<r.lowerBound].trimmingCharacters(in: .whitespaces)
                    guard let v = Double(text[r.upperBound...].trimmingCharacters(in: .whitespaces)), !name.isEmpty else { break }
                    scorer = name
                    self.op = op
                    value = v
                    return
                }
            }
            throw SluiceError(.invalidValue, "A gate is SCORER>=VALUE (or <=, >, <), e.g. 'judge:helpfulness>=4.0'; got '\(text)'.")
        }

        /// The scorer's mean for a variant (a bare judge name means `judge:NAME`).
        func mean(_ s: Summary) -> Double? {
            if scorer == "errors" { return Double(s.errors) }
            if scorer == "p95_ms" { return s.p95Ms }
            if scorer == "cost_per_case_usd" { return s.costPerCaseUSD }
            return s.means[scorer] ?? s.means["judge:" + scorer]
        }

        public func passes(_ s: Summary) -> Bool {
            guard let m = mean(s) else { return false }
            switch op {
            case ">=": return m >= value
            case "<=": return m <= value
            case ">": return m > value
            default: return m < value
            }
        }

        public var text: String { "\(scorer)\(op)\(value)" }
    }

    /// How a judge asked several times about the same answer agreed with itself.
    public struct Agreement: Sendable, Hashable {
        public var scorer: String
        public var runs: Int
        /// Answers judged several times.
        public var answers: Int
        /// The share of them on which every run gave the same score.
        public var agreement: Double
        /// The mean of (highest − lowest) score per answer.
        public var meanSpread: Double
    }

    public struct Recommendation: Sendable, Hashable {
        public var variant: String?
        public var reason: String
    }

    public var flow: String
    public var dataset: String
    public var variants: [String]
    public var scorers: [String]
    /// The scorer quality is judged by (given, else the first quality scorer).
    public var quality: String?
    public var results: [EvalCaseResult]
    public var summaries: [Summary]
    public var recommendation: Recommendation
    public var gates: [(gate: Gate, failed: [String])]
    public var agreement: [Agreement]
    public var startedAt: Double
    public var finishedAt: Double

    /// Sums up results; recommends the cheapest variant whose quality is within `margin`
    /// (relative) of the best and whose p95 meets `maxP95Ms`.
    public init(
        flow: String, dataset: String, variants: [String], scorers: [Scorer], results: [EvalCaseResult], margin: Double, maxP95Ms: Double?, gates: [Gate],
        startedAt: Double, finishedAt: Double, quality: String? = nil
    ) {
        self.flow = flow
        self.dataset = dataset
        self.variants = variants
        self.scorers = scorers.map(\.name)
        let quality = quality ?? scorers.first(where: \.isQuality)?.name
        self.quality = quality
        self.results = results
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        let summaries = variants.map { v in
            let rows = results.filter { $0.variant == v }
            let ok = rows.filter { $0.error == nil }
            var means: [String: Double] = [:]
            for s in scorers.map(\.name) {
                let values = ok.compactMap { $0.scores[s] }
                if !values.isEmpty { means[s] = values.reduce(0, +) / Double(values.count) }
            }
            let latencies = ok.map(\.latencyMs).sorted()
            let cost = rows.reduce(0) { $0 + $1.costUSD }
            return Summary(
                variant: v, cases: rows.count, errors: rows.count - ok.count, means: means, costUSD: cost,
                costPerCaseUSD: rows.isEmpty ? 0 : cost / Double(rows.count), p50Ms: FlowStats.percentile(latencies, 0.5),
                p95Ms: FlowStats.percentile(latencies, 0.95))
        }
        self.summaries = summaries
        recommendation = Self.recommend(summaries, quality: quality, margin: margin, maxP95Ms: maxP95Ms)
        self.gates = gates.map { g in (g, summaries.filter { !g.passes($0) }.map(\.variant)) }
        agreement = scorers.map(\.name).compactMap { name in
            let repeated = results.compactMap { $0.repeats[name] }.filter { $0.count > 1 }
            guard !repeated.isEmpty else { return nil }
            let same = repeated.filter { Set($0).count == 1 }.count
            let spread = repeated.map { ($0.max() ?? 0) - ($0.min() ?? 0) }.reduce(0, +) / Double(repeated.count)
            return Agreement(
                scorer: name, runs: repeated.map(\.count).max() ?? 0, answers: repeated.count, agreement: Double(same) / Double(repeated.count),
                meanSpread: spread)
        }
    }

    static func recommend(_ summaries: [Summary], quality: String?, margin: Double, maxP95Ms: Double?) -> Recommendation {
        let usable = summaries.filter { $0.cases > $0.errors }
        guard let quality else {
            guard let cheapest = usable.min(by: { $0.costPerCaseUSD < $1.costPerCaseUSD }) else {
                return Recommendation(variant: nil, reason: "no variant answered any case")
            }
            return Recommendation(variant: cheapest.variant, reason: "no quality scorer: \(cheapest.variant) is the cheapest")
        }
        let scored = usable.compactMap { s in s.means[quality].map { (s, $0) } }
        guard let best = scored.map(\.1).max() else { return Recommendation(variant: nil, reason: "no variant was scored by \(quality)") }
        let floor = best - abs(best) * margin
        let near = scored.filter { $0.1 >= floor }
        let fast = near.filter { s, _ in maxP95Ms.map { limit in (s.p95Ms ?? .infinity) <= limit } ?? true }
        guard let pick = fast.min(by: { ($0.0.costPerCaseUSD, -$0.1) < ($1.0.costPerCaseUSD, -$1.1) }) else {
            return Recommendation(
                variant: nil,
                reason: "no variant within \(Int(margin * 100))% of the best \(quality) (\(fmt(best))) meets the p95 objective of \(fmt(maxP95Ms ?? 0)) ms")
        }
        var reason = "\(pick.0.variant): \(quality) \(fmt(pick.1)) is within \(Int((margin * 100).rounded()))% of the best (\(fmt(best)))"
        reason += ", at $\(fmt(pick.0.costPerCaseUSD, digits: 6)) per case (the cheapest such variant)"
        if let p95 = pick.0.p95Ms { reason += ", p95 \(fmt(p95)) ms" }
        if let limit = maxP95Ms { reason += " (objective \(fmt(limit)) ms)" }
        return Recommendation(variant: pick.0.variant, reason: reason)
    }

    static func fmt(_ x: Double, digits: Int = 3) -> String {
        if x == x.rounded() && abs(x) < 1e12 { return String(Int(x)) }
        return String(format: "%.\(digits)g", x)
    }

    public var passed: Bool { gates.allSatisfy { $0.failed.isEmpty } }

    public var json: JSONValue {
        func number(_ x: Double?) -> JSONValue { x.map { $0.isFinite ? .double($0) : .null } ?? .null }
        return .object([
            "object": "eval.report", "flow": .string(flow), "dataset": .string(dataset), "scorers": .array(scorers.map(JSONValue.string)),
            "quality_scorer": quality.map(JSONValue.string) ?? .null, "started_at": .double(startedAt), "finished_at": .double(finishedAt),
            "variants": .array(
                summaries.map { s in
                    .object([
                        "variant": .string(s.variant), "cases": .int(s.cases), "errors": .int(s.errors), "means": .object(s.means.mapValues(JSONValue.double)),
                        "cost_usd": .double(s.costUSD), "cost_per_case_usd": .double(s.costPerCaseUSD), "p50_ms": number(s.p50Ms), "p95_ms": number(s.p95Ms),
                    ])
                }),
            "recommendation": .object([
                "variant": recommendation.variant.map(JSONValue.string) ?? .null, "reason": .string(recommendation.reason),
            ]),
            "gates": .array(gates.map { .object(["gate": .string($0.gate.text), "failed": .array($0.failed.map(JSONValue.string))]) }),
            "passed": .bool(passed),
            "judge_agreement": .array(
                agreement.map {
                    .object([
                        "scorer": .string($0.scorer), "runs": .int($0.runs), "answers": .int($0.answers), "agreement": .double($0.agreement),
                        "mean_spread": .double($0.meanSpread),
                    ])
                }),
            "results": .array(results.map(\.json)),
        ])
    }
}
