/// How an alias picks among its deployments.
public enum RoutingStrategy: String, Sendable, Hashable, CaseIterable {
    /// At random, in proportion to `weights` (equal when none are given).
    case weighted
    /// The deployment with the fewest requests in flight from this replica.
    case leastBusy = "least-busy"
    /// The lowest moving average of recent latency (time to first token for streams).
    case lowestLatency = "lowest-latency"
    /// The lowest estimated cost of this request.
    case cheapest
    /// Simple requests to `complexity.cheap`, hard ones to `complexity.strong`.
    case complexity
    /// In the order listed (the rest are fallbacks in that order).
    case ordered
}

/// One entry of `aliases:` — a name clients use for a set of deployments.
public struct AliasConfig: Sendable, Decodable {
    /// Model entries (`models:` names) that serve the alias.
    public var deployments: [String]
    public var strategy: RoutingStrategy
    /// Relative weights for `weighted` (a missing deployment weighs 1).
    public var weights: [String: Double]
    /// Model entries tried, in order, once every deployment has failed.
    public var fallbacks: [String]
    /// Response caching for requests to this alias.
    public var cache: CacheRuleConfig?
    /// `strategy: complexity` only.
    public var complexity: ComplexityRoutingConfig?

    public init(
        deployments: [String], strategy: RoutingStrategy = .weighted, weights: [String: Double] = [:], fallbacks: [String] = [],
        cache: CacheRuleConfig? = nil, complexity: ComplexityRoutingConfig? = nil
    ) {
        self.deployments = deployments
        self.strategy = strategy
        self.weights = weights
        self.fallbacks = fallbacks
        self.cache = cache
        self.complexity = complexity
    }

    enum CodingKeys: String, CodingKey { case deployments, strategy, weights, fallbacks, cache, complexity }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        deployments = try c.decodeIfPresent([String].self, forKey: .deployments) ?? []
        let name = try c.decodeIfPresent(String.self, forKey: .strategy) ?? RoutingStrategy.weighted.rawValue
        guard let strategy = RoutingStrategy(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                forKey: .strategy, in: c,
                debugDescription: "unknown strategy '\(name)' (strategies: \(RoutingStrategy.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self.strategy = strategy
        weights = try c.decodeIfPresent([String: Double].self, forKey: .weights) ?? [:]
        fallbacks = try c.decodeIfPresent([String].self, forKey: .fallbacks) ?? []
        cache = try c.decodeIfPresent(CacheRuleConfig.self, forKey: .cache)
        complexity = try c.decodeIfPresent(ComplexityRoutingConfig.self, forKey: .complexity)
    }

    func problems(path: String, chatModels: [String: ModelConfig]) -> [ConfigError] {
        var out: [ConfigError] = []
        if deployments.isEmpty && strategy != .complexity {
            out.append(ConfigError(path: "\(path).deployments", "must name at least one model entry"))
        }
        let known = chatModels.keys.sorted().prefix(20).joined(separator: ", ")
        for (i, name) in deployments.enumerated() where chatModels[name] == nil {
            out.append(ConfigError(path: "\(path).deployments[\(i)]", "no chat model entry named '\(name)' (models: \(known))"))
        }
        for (i, name) in fallbacks.enumerated() where chatModels[name] == nil {
            out.append(ConfigError(path: "\(path).fallbacks[\(i)]", "no chat model entry named '\(name)' (models: \(known))"))
        }
        if Set(deployments).count != deployments.count { out.append(ConfigError(path: "\(path).deployments", "lists a model twice")) }
        for (name, weight) in weights.sorted(by: { $0.key < $1.key }) {
            if !deployments.contains(name) { out.append(ConfigError(path: "\(path).weights.\(name)", "is not one of the alias's deployments")) }
            if !(weight >= 0 && weight <= 1_000_000) { out.append(ConfigError(path: "\(path).weights.\(name)", "must be in 0...1000000")) }
        }
        if !weights.isEmpty && deployments.allSatisfy({ (weights[$0] ?? 1) == 0 }) {
            out.append(ConfigError(path: "\(path).weights", "at least one weight must be positive"))
        }
        if let cache { out += cache.problems(path: "\(path).cache") }
        switch (strategy, complexity) {
        case (.complexity, nil):
            out.append(ConfigError(path: "\(path).complexity", "is required with strategy: complexity"))
        case (.complexity, let rule?):
            out += rule.problems(path: "\(path).complexity", chatModels: chatModels)
        case (_, _?):
            out.append(ConfigError(path: "\(path).complexity", "applies only with strategy: complexity"))
        default:
            break
        }
        return out
    }
}

/// `aliases.X.complexity:` — cheap-vs-strong routing.
public struct ComplexityRoutingConfig: Sendable, Decodable {
    /// The model entry for simple requests.
    public var cheap: String
    /// The model entry for hard requests.
    public var strong: String
    /// Requests scoring at or above this go to `strong`.
    public var threshold: Double
    /// Labelled examples (`{"text", "label": "simple"|"strong"}` per line, JSONL) whose nearest
    /// neighbours by embedding vote; relative to the working directory.
    public var examplesFile: String?
    /// Inline labelled examples, added to the file's.
    public var examples: [LabelledExample]
    /// The embedding model entry for the neighbours (a `models:` entry of type embedding).
    public var embeddingModel: String?
    /// How much the neighbours' vote counts against the features' score (0...1).
    public var exampleWeight: Double

    /// One labelled request.
    public struct LabelledExample: Sendable, Decodable, Hashable {
        public var text: String
        /// `simple` or `strong`.
        public var label: String

        public init(text: String, label: String) {
            self.text = text
            self.label = label
        }
    }

    public init(
        cheap: String, strong: String, threshold: Double = 0.5, examplesFile: String? = nil, examples: [LabelledExample] = [],
        embeddingModel: String? = nil, exampleWeight: Double = 0.5
    ) {
        self.cheap = cheap
        self.strong = strong
        self.threshold = threshold
        self.examplesFile = examplesFile
        self.examples = examples
        self.embeddingModel = embeddingModel
        self.exampleWeight = exampleWeight
    }

    enum CodingKeys: String, CodingKey {
        case cheap, strong, threshold, examples
        case examplesFile = "examples_file"
        case embeddingModel = "embedding_model"
        case exampleWeight = "example_weight"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cheap = try c.decode(String.self, forKey: .cheap)
        strong = try c.decode(String.self, forKey: .strong)
        threshold = try c.decodeIfPresent(Double.self, forKey: .threshold) ?? 0.5
        examplesFile = try c.decodeIfPresent(String.self, forKey: .examplesFile)
        examples = try c.decodeIfPresent([LabelledExample].self, forKey: .examples) ?? []
        embeddingModel = try c.decodeIfPresent(String.self, forKey: .embeddingModel)
        exampleWeight = try c.decodeIfPresent(Double.self, forKey: .exampleWeight) ?? 0.5
    }

    func problems(path: String, chatModels: [String: ModelConfig]) -> [ConfigError] {
        var out: [ConfigError] = []
        for (key, name) in [("cheap", cheap), ("strong", strong)] where chatModels[name] == nil {
            out.append(ConfigError(path: "\(path).\(key)", "no chat model entry named '\(name)'"))
        }
        if !(0...1).contains(threshold) { out.append(ConfigError(path: "\(path).threshold", "must be in 0...1")) }
        if !(0...1).contains(exampleWeight) { out.append(ConfigError(path: "\(path).example_weight", "must be in 0...1")) }
        for (i, e) in examples.enumerated() where !["simple", "strong"].contains(e.label) {
            out.append(ConfigError(path: "\(path).examples[\(i)].label", "must be simple or strong"))
        }
        return out
    }
}

/// `routing:` — retries, backoff and circuit breakers for every alias and model.
public struct RoutingConfig: Sendable, Decodable {
    /// Rounds through the deployments after the first, for retryable failures.
    public var retries: Int = 2
    /// The first backoff; each further round doubles it, with jitter, up to `max_backoff_ms`.
    public var backoffMs: Int = 100
    public var maxBackoffMs: Int = 5_000
    /// A `Retry-After` longer than this is not waited for (the next deployment, or the error).
    public var maxRetryAfterS: Int = 30
    public var breaker: BreakerConfig = .init()
    /// How often deployments with an open breaker are probed (their health check).
    public var probeIntervalMs: Int = 5_000
    /// For `lowest-latency`: the share of requests sent to a random deployment so that the
    /// averages of the others stay fresh.
    public var explorationRate: Double = 0.05

    public init() {}

    enum CodingKeys: String, CodingKey {
        case retries, breaker
        case backoffMs = "backoff_ms"
        case maxBackoffMs = "max_backoff_ms"
        case maxRetryAfterS = "max_retry_after_s"
        case probeIntervalMs = "probe_interval_ms"
        case explorationRate = "exploration_rate"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        retries = try c.decodeIfPresent(Int.self, forKey: .retries) ?? retries
        backoffMs = try c.decodeIfPresent(Int.self, forKey: .backoffMs) ?? backoffMs
        maxBackoffMs = try c.decodeIfPresent(Int.self, forKey: .maxBackoffMs) ?? maxBackoffMs
        maxRetryAfterS = try c.decodeIfPresent(Int.self, forKey: .maxRetryAfterS) ?? maxRetryAfterS
        breaker = try c.decodeIfPresent(BreakerConfig.self, forKey: .breaker) ?? breaker
        probeIntervalMs = try c.decodeIfPresent(Int.self, forKey: .probeIntervalMs) ?? probeIntervalMs
        explorationRate = try c.decodeIfPresent(Double.self, forKey: .explorationRate) ?? explorationRate
    }

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        if !(0...10).contains(retries) { out.append(ConfigError(path: "\(path).retries", "must be in 0...10")) }
        if !(0...60_000).contains(backoffMs) { out.append(ConfigError(path: "\(path).backoff_ms", "must be in 0...60000")) }
        if !(0...600_000).contains(maxBackoffMs) { out.append(ConfigError(path: "\(path).max_backoff_ms", "must be in 0...600000")) }
        if !(0...3600).contains(maxRetryAfterS) { out.append(ConfigError(path: "\(path).max_retry_after_s", "must be in 0...3600")) }
        if !(100...3_600_000).contains(probeIntervalMs) { out.append(ConfigError(path: "\(path).probe_interval_ms", "must be in 100...3600000")) }
        if !(0...1).contains(explorationRate) { out.append(ConfigError(path: "\(path).exploration_rate", "must be in 0...1")) }
        out += breaker.problems(path: "\(path).breaker")
        return out
    }
}

/// `routing.breaker:` — when a deployment stops getting traffic, and how it gets it back.
public struct BreakerConfig: Sendable, Decodable, Hashable {
    /// Consecutive failures that open the breaker.
    public var failures: Int = 5
    /// The error rate over `window_s` that opens it (with at least `min_requests` in the window).
    public var errorRate: Double = 0.5
    public var windowS: Int = 30
    public var minRequests: Int = 20
    /// How long an open breaker stays open before letting probes through.
    public var cooldownMs: Int = 30_000
    /// Requests let through at once while half-open; that many successes close it again.
    public var halfOpenProbes: Int = 1

    public init(failures: Int = 5, errorRate: Double = 0.5, windowS: Int = 30, minRequests: Int = 20, cooldownMs: Int = 30_000, halfOpenProbes: Int = 1) {
        self.failures = failures
        self.errorRate = errorRate
        self.windowS = windowS
        self.minRequests = minRequests
        self.cooldownMs = cooldownMs
        self.halfOpenProbes = halfOpenProbes
    }

    enum CodingKeys: String, CodingKey {
        case failures
        case errorRate = "error_rate"
        case windowS = "window_s"
        case minRequests = "min_requests"
        case cooldownMs = "cooldown_ms"
        case halfOpenProbes = "half_open_probes"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        failures = try c.decodeIfPresent(Int.self, forKey: .failures) ?? failures
        errorRate = try c.decodeIfPresent(Double.self, forKey: .errorRate) ?? errorRate
        windowS = try c.decodeIfPresent(Int.self, forKey: .windowS) ?? windowS
        minRequests = try c.decodeIfPresent(Int.self, forKey: .minRequests) ?? minRequests
        cooldownMs = try c.decodeIfPresent(Int.self, forKey: .cooldownMs) ?? cooldownMs
        halfOpenProbes = try c.decodeIfPresent(Int.self, forKey: .halfOpenProbes) ?? halfOpenProbes
    }

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        if !(1...10_000).contains(failures) { out.append(ConfigError(path: "\(path).failures", "must be in 1...10000")) }
        if !(errorRate > 0 && errorRate <= 1) { out.append(ConfigError(path: "\(path).error_rate", "must be in (0, 1]")) }
        if !(1...3600).contains(windowS) { out.append(ConfigError(path: "\(path).window_s", "must be in 1...3600")) }
        if !(1...1_000_000).contains(minRequests) { out.append(ConfigError(path: "\(path).min_requests", "must be in 1...1000000")) }
        if !(1...86_400_000).contains(cooldownMs) { out.append(ConfigError(path: "\(path).cooldown_ms", "must be in 1...86400000")) }
        if !(1...1000).contains(halfOpenProbes) { out.append(ConfigError(path: "\(path).half_open_probes", "must be in 1...1000")) }
        return out
    }
}

/// Who may share a cached answer.
public enum CacheScope: String, Sendable, Hashable, CaseIterable {
    /// Keys of the same team (a key without a team: that key alone).
    case team
    /// The same key only.
    case key
    /// Every caller: only for answers that are not about anyone.
    case global
}

/// How a semantic cache candidate (an entry whose question is close in the embedding) is checked
/// before it answers.
public enum CacheVerification: String, Sendable, Hashable {
    /// Similarity alone.
    case off
    /// The question check: numbers, negation, question word, names, content-word order.
    case rule
    /// The paraphrase verifier: MiniLM reading both questions at once. Needs the cache's
    /// embedding model to be in process (`kind: minilm`).
    case model

    /// The similarity threshold's default under `verify: model`.
    public static let modelThreshold = 0.80
}

/// `cache:` on an alias or a model entry — which requests may be answered from cache.
public struct CacheRuleConfig: Sendable, Decodable, Hashable {
    public var exact: Bool = true
    public var semantic: Bool = false
    /// Cosine similarity at or above which a semantic entry answers.
    public var threshold: Double = 0.95
    public var ttlS: Int = 3600
    public var scope: CacheScope = .team
    /// Cache answers to requests with a temperature above 0 too (by default only deterministic
    /// requests, `temperature: 0`, are served from cache unless the request opts in).
    public var anyTemperature: Bool = false
    /// How a semantic candidate is checked beyond its similarity before it answers.
    public var verify: CacheVerification = .rule

    public init(exact: Bool = true, semantic: Bool = false, threshold: Double = 0.95, ttlS: Int = 3600, scope: CacheScope = .team, anyTemperature: Bool = false) {
        self.exact = exact
        self.semantic = semantic
        self.threshold = threshold
        self.ttlS = ttlS
        self.scope = scope
        self.anyTemperature = anyTemperature
    }

    enum CodingKeys: String, CodingKey {
        case exact, semantic, threshold, scope, verify
        case ttlS = "ttl_s"
        case anyTemperature = "any_temperature"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        exact = try c.decodeIfPresent(Bool.self, forKey: .exact) ?? exact
        semantic = try c.decodeIfPresent(Bool.self, forKey: .semantic) ?? semantic
        ttlS = try c.decodeIfPresent(Int.self, forKey: .ttlS) ?? ttlS
        let name = try c.decodeIfPresent(String.self, forKey: .scope) ?? scope.rawValue
        guard let scope = CacheScope(rawValue: name) else {
            throw DecodingError.dataCorruptedError(forKey: .scope, in: c, debugDescription: "must be team, key or global, got '\(name)'")
        }
        self.scope = scope
        anyTemperature = try c.decodeIfPresent(Bool.self, forKey: .anyTemperature) ?? anyTemperature
        if let flag = try? c.decodeIfPresent(Bool.self, forKey: .verify) {
            verify = flag ? .rule : .off
        } else if let name = try c.decodeIfPresent(String.self, forKey: .verify) {
            guard let verification = CacheVerification(rawValue: name) else {
                throw DecodingError.dataCorruptedError(forKey: .verify, in: c, debugDescription: "must be rule, model or off, got '\(name)'")
            }
            verify = verification
        }
        // The verifier reads both questions together, so candidates may come from further away.
        threshold = try c.decodeIfPresent(Double.self, forKey: .threshold) ?? (verify == .model ? CacheVerification.modelThreshold : threshold)
    }

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        if !(threshold > 0 && threshold <= 1) { out.append(ConfigError(path: "\(path).threshold", "must be in (0, 1]")) }
        if !(1...31_536_000).contains(ttlS) { out.append(ConfigError(path: "\(path).ttl_s", "must be in 1...31536000")) }
        return out
    }
}

/// `cache:` at the top level — the caches' bounds and the embedding model of the semantic one.
public struct CacheConfig: Sendable, Decodable {
    /// Entries kept in memory per kind; the least recently used go first.
    public var maxEntries: Int = 100_000
    /// The embedding model entry for the semantic cache (`models:` entry of type embedding).
    public var embeddingModel: String?
    /// Keep entries in the store so that a restart (or another replica) finds them.
    public var persist: Bool = true

    public init(maxEntries: Int = 100_000, embeddingModel: String? = nil, persist: Bool = true) {
        self.maxEntries = maxEntries
        self.embeddingModel = embeddingModel
        self.persist = persist
    }

    enum CodingKeys: String, CodingKey {
        case persist
        case maxEntries = "max_entries"
        case embeddingModel = "embedding_model"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxEntries = try c.decodeIfPresent(Int.self, forKey: .maxEntries) ?? maxEntries
        embeddingModel = try c.decodeIfPresent(String.self, forKey: .embeddingModel)
        persist = try c.decodeIfPresent(Bool.self, forKey: .persist) ?? persist
    }

    func problems(path: String, embeddingModels: Set<String>) -> [ConfigError] {
        var out: [ConfigError] = []
        if !(1...10_000_000).contains(maxEntries) { out.append(ConfigError(path: "\(path).max_entries", "must be in 1...10000000")) }
        if let name = embeddingModel, !embeddingModels.contains(name) {
            out.append(ConfigError(path: "\(path).embedding_model", "no embedding model entry named '\(name)'"))
        }
        return out
    }
}
