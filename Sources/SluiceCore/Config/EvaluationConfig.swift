import Foundation

/// One `experiments:` entry: variants of a flow (versions, models) or of an alias (models),
/// the share of traffic each gets, how a caller is kept on one variant, and how the result is
/// decided.
public struct ExperimentConfig: Sendable, Decodable, Hashable {
    /// What keeps a caller on one variant.
    public enum Sticky: String, Sendable, Decodable, Hashable, CaseIterable {
        /// The request's `user` (a flow run's `user`, a chat request's `user`).
        case user
        /// The API key.
        case key
        /// The conversation the request continues.
        case conversation
    }

    /// When the analysis may decide.
    public enum Stopping: String, Sendable, Decodable, Hashable {
        /// Always-valid p-values (mixture SPRT): the result may be read at any time.
        case sequential
        /// A fixed-horizon test, decided once every variant has `min_samples`.
        case fixed
    }

    /// What a variant changes.
    public struct Variant: Sendable, Decodable, Hashable {
        /// The flow version it runs (nil: the active one).
        public var version: Int?
        /// The model entry or alias it runs on instead of the flow's (or the alias asked for).
        public var model: String?

        public init(version: Int? = nil, model: String? = nil) {
            self.version = version
            self.model = model
        }
    }

    public var flow: String?
    public var alias: String?
    public var variants: [String: Variant]
    /// Each variant's share, in any unit (they are normalised).
    public var split: [String: Double]
    public var sticky: Sticky = .user
    /// The metric the decision is made on: `feedback`, `judge:NAME`, `success`, `latency_ms`, `cost_usd`.
    public var primary: String = "feedback"
    /// Metrics a winner must not be significantly worse on.
    public var guardrailMetrics: [String] = []
    public var alpha: Double = 0.05
    public var stopping: Stopping = .sequential
    /// Samples each variant needs before a fixed test decides (and before a sequential one may).
    public var minSamples: Int = 100
    /// Samples per variant after which a sequential experiment without a winner ends with no difference.
    public var maxSamples: Int?
    /// The variant the others are compared with (default: `control` when there is one, else the first by name).
    public var control: String?
    /// Activate the winning variant's flow version when the experiment decides.
    public var autoPromote = false
    /// The mixture SPRT's prior standard deviation of the difference, in the primary metric's
    /// units (nil: a tenth of the metric's pooled standard deviation).
    public var mixtureSD: Double?

    public init(flow: String? = nil, alias: String? = nil, variants: [String: Variant], split: [String: Double]) {
        self.flow = flow
        self.alias = alias
        self.variants = variants
        self.split = split
    }

    enum CodingKeys: String, CodingKey {
        case flow, alias, variants, split, sticky, primary, alpha, stopping, control
        case guardrailMetrics = "guardrail_metrics"
        case minSamples = "min_samples"
        case maxSamples = "max_samples"
        case autoPromote = "auto_promote"
        case mixtureSD = "mixture_sd"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        flow = try c.decodeIfPresent(String.self, forKey: .flow)
        alias = try c.decodeIfPresent(String.self, forKey: .alias)
        variants = try c.decode([String: Variant].self, forKey: .variants)
        split = try c.decodeIfPresent([String: Double].self, forKey: .split) ?? Dictionary(uniqueKeysWithValues: variants.keys.map { ($0, 1) })
        sticky = try c.decodeIfPresent(Sticky.self, forKey: .sticky) ?? sticky
        primary = try c.decodeIfPresent(String.self, forKey: .primary) ?? primary
        guardrailMetrics = try c.decodeIfPresent([String].self, forKey: .guardrailMetrics) ?? []
        alpha = try c.decodeIfPresent(Double.self, forKey: .alpha) ?? alpha
        stopping = try c.decodeIfPresent(Stopping.self, forKey: .stopping) ?? stopping
        minSamples = try c.decodeIfPresent(Int.self, forKey: .minSamples) ?? minSamples
        maxSamples = try c.decodeIfPresent(Int.self, forKey: .maxSamples)
        control = try c.decodeIfPresent(String.self, forKey: .control)
        autoPromote = try c.decodeIfPresent(Bool.self, forKey: .autoPromote) ?? false
        mixtureSD = try c.decodeIfPresent(Double.self, forKey: .mixtureSD)
    }

    /// The variant the others are compared with.
    public var controlVariant: String {
        control ?? (variants["control"] != nil ? "control" : variants.keys.sorted().first ?? "control")
    }

    /// Whether a metric name is one the analysis knows.
    public static func isMetric(_ name: String, judges: Set<String>) -> Bool {
        if ["feedback", "success", "latency_ms", "cost_usd"].contains(name) { return true }
        if name.hasPrefix("judge:") { return judges.contains(String(name.dropFirst(6))) }
        return false
    }

    func problems(path: String, models: Set<String>, aliases: Set<String>, judges: Set<String>) -> [ConfigError] {
        var out: [ConfigError] = []
        if (flow == nil) == (alias == nil) { out.append(ConfigError(path: path, "an experiment names a flow or an alias (one of them)")) }
        if let alias, !aliases.contains(alias) && !models.contains(alias) {
            out.append(ConfigError(path: "\(path).alias", "no alias or model named '\(alias)'"))
        }
        if variants.count < 2 { out.append(ConfigError(path: "\(path).variants", "needs at least two variants")) }
        for (name, variant) in variants.sorted(by: { $0.key < $1.key }) {
            if name.isEmpty || name.utf8.count > 64 || !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) {
                out.append(ConfigError(path: "\(path).variants.\(name)", "a variant name is 1 to 64 letters, digits, '-' or '_'"))
            }
            if let model = variant.model, !models.contains(model) && !aliases.contains(model) {
                out.append(ConfigError(path: "\(path).variants.\(name).model", "no model or alias named '\(model)'"))
            }
            if let version = variant.version {
                if flow == nil { out.append(ConfigError(path: "\(path).variants.\(name).version", "only a flow's experiment has versions")) }
                if version < 1 { out.append(ConfigError(path: "\(path).variants.\(name).version", "must be 1 or more")) }
            }
            if alias != nil && variant.model == nil {
                out.append(ConfigError(path: "\(path).variants.\(name).model", "an alias experiment's variant names the model it runs on"))
            }
        }
        if Set(split.keys) != Set(variants.keys) {
            out.append(ConfigError(path: "\(path).split", "must give a share to each variant (\(variants.keys.sorted().joined(separator: ", "))) and no other"))
        }
        if split.values.contains(where: { !($0 >= 0) || !$0.isFinite }) || !(split.values.reduce(0, +) > 0) {
            out.append(ConfigError(path: "\(path).split", "shares must be non-negative numbers, not all zero"))
        }
        if !Self.isMetric(primary, judges: judges) {
            out.append(ConfigError(path: "\(path).primary", "must be feedback, success, latency_ms, cost_usd or judge:NAME of a configured judge"))
        }
        for (i, metric) in guardrailMetrics.enumerated() where !Self.isMetric(metric, judges: judges) {
            out.append(ConfigError(path: "\(path).guardrail_metrics[\(i)]", "unknown metric '\(metric)'"))
        }
        if !(alpha > 0 && alpha < 0.5) { out.append(ConfigError(path: "\(path).alpha", "must be in (0, 0.5)")) }
        if let maxSamples, maxSamples < minSamples { out.append(ConfigError(path: "\(path).max_samples", "must be at least min_samples")) }
        if minSamples < 2 { out.append(ConfigError(path: "\(path).min_samples", "must be 2 or more")) }
        if let control, variants[control] == nil { out.append(ConfigError(path: "\(path).control", "no variant named '\(control)'")) }
        if let sd = mixtureSD, !(sd > 0) { out.append(ConfigError(path: "\(path).mixture_sd", "must be more than 0")) }
        if autoPromote && flow == nil { out.append(ConfigError(path: "\(path).auto_promote", "only a flow's experiment can promote (a version)")) }
        return out
    }
}

/// One `judges:` entry: a model asked to score answers by a rubric.
public struct JudgeConfig: Sendable, Decodable, Hashable {
    public enum Scale: Sendable, Hashable {
        /// A number from `min` to `max`.
        case range(min: Double, max: Double)
        /// Pass (1) or fail (0).
        case passFail
    }

    /// A model entry or alias.
    public var model: String
    /// A mustache file (relative to the config's directory) that sees `input`, `output`, `reference` and `passages`.
    public var rubric: String
    public var scale: Scale = .range(min: 1, max: 5)
    /// The share of live requests (of `flows`) judged, from 0 to 1.
    public var sampleRate: Double = 0
    /// The flows whose live runs are judged (none: no live judging).
    public var flows: [String] = []
    /// Judgements waiting at once; past it a sampled request is skipped and counted.
    public var queueCapacity: Int = 1000
    /// Judge calls at once.
    public var concurrency: Int = 2
    /// What the judge's own key may spend a day, in USD (nil: unlimited).
    public var budgetUSDDay: Double?

    public init(model: String, rubric: String, scale: Scale = .range(min: 1, max: 5), sampleRate: Double = 0, flows: [String] = []) {
        self.model = model
        self.rubric = rubric
        self.scale = scale
        self.sampleRate = sampleRate
        self.flows = flows
    }

    enum CodingKeys: String, CodingKey {
        case model, rubric, scale, flows, concurrency
        case sampleRate = "sample_rate"
        case queueCapacity = "queue_capacity"
        case budgetUSDDay = "budget_usd_day"
    }

    enum ScaleKeys: String, CodingKey { case min, max }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(String.self, forKey: .model)
        rubric = try c.decode(String.self, forKey: .rubric)
        if let word = try? c.decodeIfPresent(String.self, forKey: .scale) {
            guard word == "pass_fail" else {
                throw DecodingError.dataCorruptedError(forKey: .scale, in: c, debugDescription: "expected pass_fail or {min, max}, got '\(word)'")
            }
            scale = .passFail
        } else if c.contains(.scale) {
            let s = try c.nestedContainer(keyedBy: ScaleKeys.self, forKey: .scale)
            scale = .range(min: try s.decode(Double.self, forKey: .min), max: try s.decode(Double.self, forKey: .max))
        }
        sampleRate = try c.decodeIfPresent(Double.self, forKey: .sampleRate) ?? 0
        flows = try c.decodeIfPresent([String].self, forKey: .flows) ?? []
        queueCapacity = try c.decodeIfPresent(Int.self, forKey: .queueCapacity) ?? queueCapacity
        concurrency = try c.decodeIfPresent(Int.self, forKey: .concurrency) ?? concurrency
        budgetUSDDay = try c.decodeIfPresent(Double.self, forKey: .budgetUSDDay)
    }

    /// The scale's ends (pass/fail is 0 to 1).
    public var bounds: (min: Double, max: Double) {
        switch scale {
        case .range(let min, let max): (min, max)
        case .passFail: (0, 1)
        }
    }

    func problems(path: String, models: Set<String>, flows known: Set<String>) -> [ConfigError] {
        var out: [ConfigError] = []
        if !models.contains(model) { out.append(ConfigError(path: "\(path).model", "no model or alias named '\(model)'")) }
        if rubric.isEmpty { out.append(ConfigError(path: "\(path).rubric", "must name a mustache file")) }
        if case .range(let lo, let hi) = scale, !(lo < hi) { out.append(ConfigError(path: "\(path).scale", "min must be less than max")) }
        if !(0...1).contains(sampleRate) { out.append(ConfigError(path: "\(path).sample_rate", "must be in 0...1")) }
        for (i, flow) in flows.enumerated() where !known.contains(flow) {
            out.append(ConfigError(path: "\(path).flows[\(i)]", "no flow named '\(flow)'"))
        }
        if queueCapacity < 1 { out.append(ConfigError(path: "\(path).queue_capacity", "must be positive")) }
        if !(1...64).contains(concurrency) { out.append(ConfigError(path: "\(path).concurrency", "must be from 1 to 64")) }
        if let b = budgetUSDDay, !(b > 0) { out.append(ConfigError(path: "\(path).budget_usd_day", "must be more than 0")) }
        return out
    }
}

extension SluiceConfig {
    func evaluationProblems() -> [ConfigError] {
        var out: [ConfigError] = []
        let chat = Set(models.filter { $0.type == .chat }.map(\.name))
        let judgeNames = Set(judges.keys)
        for (name, judge) in judges.sorted(by: { $0.key < $1.key }) {
            if name.isEmpty || name.contains(":") { out.append(ConfigError(path: "judges.\(name)", "a judge's name is not empty and has no ':'")) }
            out += judge.problems(path: "judges.\(name)", models: chat.union(aliases.keys), flows: Set(flows.keys))
        }
        for (name, experiment) in experiments.sorted(by: { $0.key < $1.key }) {
            if name.isEmpty || name.utf8.count > 64 { out.append(ConfigError(path: "experiments.\(name)", "a name is 1 to 64 characters")) }
            out += experiment.problems(path: "experiments.\(name)", models: chat, aliases: Set(aliases.keys), judges: judgeNames)
        }
        // One experiment per flow or alias: a request is in at most one.
        var subjects: [String: String] = [:]
        for (name, experiment) in experiments.sorted(by: { $0.key < $1.key }) {
            let subject = experiment.flow.map { "flow:" + $0 } ?? experiment.alias.map { "alias:" + $0 } ?? ""
            if let other = subjects[subject], !subject.isEmpty {
                out.append(ConfigError(path: "experiments.\(name)", "'\(other)' already experiments on \(subject); one experiment per flow or alias"))
            }
            subjects[subject] = name
        }
        for (name, flow) in flows.sorted(by: { $0.key < $1.key }) {
            for judge in (flow.slo?.minJudge ?? [:]).keys.sorted() where !judgeNames.contains(judge) {
                out.append(ConfigError(path: "flows.\(name).slo.min_judge.\(judge)", "no judge named '\(judge)'"))
            }
        }
        return out
    }
}
