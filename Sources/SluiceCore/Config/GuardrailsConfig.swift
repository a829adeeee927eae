import Foundation

/// What a guardrail check does with what it finds.
public enum GuardrailAction: String, Sendable, Hashable, Codable, CaseIterable {
    /// Report it, change nothing.
    case allow
    /// Replace it with a typed placeholder (`[EMAIL_1]`), the same one for the same value in a request.
    case redact
    /// Replace its letters and digits with `*` (the last four kept where that identifies nothing).
    case mask
    /// Refuse the request (400 `guardrail_blocked`) or end the answer.
    case block
    /// Send placeholders to the model and put the original values back into the answer.
    case anonymize
}

/// `guardrails:` — named policies and the one requests get unless their key or team names another
/// (key or team metadata `guardrail_policy`).
public struct GuardrailsConfig: Sendable, Decodable {
    /// The policy of requests whose key and team name none; nil leaves such requests unchecked.
    public var defaultPolicy: String?
    public var policies: [String: GuardrailPolicyConfig]

    public init(defaultPolicy: String? = nil, policies: [String: GuardrailPolicyConfig] = [:]) {
        self.defaultPolicy = defaultPolicy
        self.policies = policies
    }

    enum CodingKeys: String, CodingKey {
        case defaultPolicy = "default_policy"
        case policies
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        policies = try c.decodeIfPresent([String: GuardrailPolicyConfig].self, forKey: .policies) ?? [:]
        defaultPolicy = try c.decodeIfPresent(String.self, forKey: .defaultPolicy) ?? (policies["default"] != nil ? "default" : nil)
    }

    /// The policy `POST /v1/guardrails/check` uses when none is configured: every PII type redacted
    /// (names only reported), secrets blocked, injections over 0.4 blocked.
    public static let builtInDefault = GuardrailPolicyConfig(
        input: GuardrailChecksConfig(
            pii: PIICheckConfig(action: .redact, types: ["PERSON": .allow, "SECRET": .block]),
            injection: InjectionCheckConfig(action: .block, threshold: 0.4)),
        output: GuardrailChecksConfig(pii: PIICheckConfig(action: .redact, types: ["PERSON": .allow]), leakage: LeakageCheckConfig()))

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        // "default" is always there: the built-in policy unless the file defines its own.
        if let name = defaultPolicy, name != "default", policies[name] == nil {
            out.append(ConfigError(path: "\(path).default_policy", "no policy named '\(name)' (policies: \((Set(policies.keys).union(["default"])).sorted().joined(separator: ", ")))"))
        }
        for (name, policy) in policies.sorted(by: { $0.key < $1.key }) { out += policy.problems(path: "\(path).policies.\(name)") }
        return out
    }
}

/// One named policy: the checks on the way in, the checks on the way out.
public struct GuardrailPolicyConfig: Sendable, Decodable {
    public var input: GuardrailChecksConfig
    public var output: GuardrailChecksConfig
    /// How many times a structured answer that fails its JSON Schema is sent back to the model.
    public var schemaRepairAttempts: Int

    public init(input: GuardrailChecksConfig = .init(), output: GuardrailChecksConfig = .init(), schemaRepairAttempts: Int = 2) {
        self.input = input
        self.output = output
        self.schemaRepairAttempts = schemaRepairAttempts
    }

    enum CodingKeys: String, CodingKey {
        case input, output
        case schemaRepairAttempts = "schema_repair_attempts"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        input = try c.decodeIfPresent(GuardrailChecksConfig.self, forKey: .input) ?? .init()
        output = try c.decodeIfPresent(GuardrailChecksConfig.self, forKey: .output) ?? .init()
        schemaRepairAttempts = try c.decodeIfPresent(Int.self, forKey: .schemaRepairAttempts) ?? 2
    }

    func problems(path: String) -> [ConfigError] {
        var out = input.problems(path: "\(path).input") + output.problems(path: "\(path).output")
        if !(0...10).contains(schemaRepairAttempts) { out.append(ConfigError(path: "\(path).schema_repair_attempts", "must be in 0...10")) }
        if output.pii?.action == .anonymize || output.pii?.types.values.contains(.anonymize) == true {
            out.append(ConfigError(path: "\(path).output.pii", "anonymize is an input action (the answer gets the values back)"))
        }
        if input.leakage != nil { out.append(ConfigError(path: "\(path).input.leakage", "leakage is an output check")) }
        if output.pii?.ner != nil {
            out.append(ConfigError(path: "\(path).output.pii.ner", "the entity tagger checks input text only"))
        }
        if output.injection?.classifier != nil {
            out.append(ConfigError(path: "\(path).output.injection.classifier", "the injection classifier scores input text only"))
        }
        return out
    }
}

/// The checks of one direction.
public struct GuardrailChecksConfig: Sendable, Decodable {
    /// Characters in all messages together (413 over it).
    public var maxChars: Int?
    /// Estimated tokens in all messages together (413 over it).
    public var maxTokens: Int?
    /// Characters in one message (400 over it).
    public var maxMessageChars: Int?
    /// Estimated tokens in one message (400 over it).
    public var maxMessageTokens: Int?
    public var pii: PIICheckConfig?
    public var injection: InjectionCheckConfig?
    public var banList: BanListCheckConfig?
    public var topics: TopicCheckConfig?
    public var leakage: LeakageCheckConfig?

    public init(
        maxChars: Int? = nil, maxTokens: Int? = nil, maxMessageChars: Int? = nil, maxMessageTokens: Int? = nil, pii: PIICheckConfig? = nil,
        injection: InjectionCheckConfig? = nil, banList: BanListCheckConfig? = nil, topics: TopicCheckConfig? = nil,
        leakage: LeakageCheckConfig? = nil
    ) {
        self.maxChars = maxChars
        self.maxTokens = maxTokens
        self.maxMessageChars = maxMessageChars
        self.maxMessageTokens = maxMessageTokens
        self.pii = pii
        self.injection = injection
        self.banList = banList
        self.topics = topics
        self.leakage = leakage
    }

    enum CodingKeys: String, CodingKey {
        case pii, injection, topics, leakage
        case maxChars = "max_chars"
        case maxTokens = "max_tokens"
        case maxMessageChars = "max_message_chars"
        case maxMessageTokens = "max_message_tokens"
        case banList = "ban_list"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxChars = try c.decodeIfPresent(Int.self, forKey: .maxChars)
        maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens)
        maxMessageChars = try c.decodeIfPresent(Int.self, forKey: .maxMessageChars)
        maxMessageTokens = try c.decodeIfPresent(Int.self, forKey: .maxMessageTokens)
        pii = try c.decodeIfPresent(PIICheckConfig.self, forKey: .pii)
        injection = try c.decodeIfPresent(InjectionCheckConfig.self, forKey: .injection)
        banList = try c.decodeIfPresent(BanListCheckConfig.self, forKey: .banList)
        topics = try c.decodeIfPresent(TopicCheckConfig.self, forKey: .topics)
        leakage = try c.decodeIfPresent(LeakageCheckConfig.self, forKey: .leakage)
    }

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        for (key, value) in [("max_chars", maxChars), ("max_tokens", maxTokens), ("max_message_chars", maxMessageChars), ("max_message_tokens", maxMessageTokens)] {
            if let value, value < 1 { out.append(ConfigError(path: "\(path).\(key)", "must be at least 1")) }
        }
        if let pii {
            let known = ["EMAIL", "PHONE", "CREDIT_CARD", "US_SSN", "IBAN", "IP_ADDRESS", "DATE_OF_BIRTH", "DATE_TIME", "STREET_ADDRESS", "PERSON", "SECRET"]
            for name in pii.types.keys.sorted() where !known.contains(name) {
                out.append(ConfigError(path: "\(path).pii.types.\(name)", "unknown PII type (known: \(known.joined(separator: ", ")))"))
            }
            if !(0...1).contains(pii.minScore) { out.append(ConfigError(path: "\(path).pii.min_score", "must be in 0...1")) }
        }
        if let injection {
            if ![.allow, .block].contains(injection.action) { out.append(ConfigError(path: "\(path).injection.action", "must be allow or block")) }
            if !(0...1).contains(injection.threshold) { out.append(ConfigError(path: "\(path).injection.threshold", "must be in 0...1")) }
            if let classifier = injection.classifier {
                if let t = classifier.threshold, !(0...1).contains(t) { out.append(ConfigError(path: "\(path).injection.classifier.threshold", "must be in 0...1")) }
                if !(1...64).contains(classifier.maxWindows) { out.append(ConfigError(path: "\(path).injection.classifier.max_windows", "must be in 1...64")) }
            }
        }
        if let banList {
            if banList.action == .anonymize { out.append(ConfigError(path: "\(path).ban_list.action", "must be allow, redact, mask or block")) }
            for (i, p) in banList.patterns.enumerated() where (try? NSRegularExpression(pattern: p)) == nil {
                out.append(ConfigError(path: "\(path).ban_list.patterns[\(i)]", "not a valid regular expression"))
            }
            for (i, w) in banList.words.enumerated() where w.trimmingCharacters(in: .whitespaces).isEmpty {
                out.append(ConfigError(path: "\(path).ban_list.words[\(i)]", "must not be empty"))
            }
        }
        if let topics {
            if ![.allow, .block].contains(topics.action) { out.append(ConfigError(path: "\(path).topics.action", "must be allow or block")) }
            if !(0...1).contains(topics.threshold) { out.append(ConfigError(path: "\(path).topics.threshold", "must be in 0...1")) }
            for (name, examples) in topics.denied where examples.isEmpty {
                out.append(ConfigError(path: "\(path).topics.denied.\(name)", "needs at least one example sentence"))
            }
        }
        if let leakage {
            if ![.allow, .block, .redact].contains(leakage.action) { out.append(ConfigError(path: "\(path).leakage.action", "must be allow, redact or block")) }
            if leakage.minWords < 3 { out.append(ConfigError(path: "\(path).leakage.min_words", "must be at least 3")) }
        }
        return out
    }
}

/// `pii:` — personal data and secrets: one action for all types, overridable per type.
public struct PIICheckConfig: Sendable, Decodable {
    public var action: GuardrailAction
    /// Per-type actions (`EMAIL: block`); types not listed get `action`.
    public var types: [String: GuardrailAction]
    /// Findings less certain than this are ignored.
    public var minScore: Double
    /// The entity tagger for names, addresses and dates (a model over MiniLM); nil leaves it off.
    public var ner: EntityTaggerConfig?

    public init(action: GuardrailAction = .redact, types: [String: GuardrailAction] = [:], minScore: Double = 0.5, ner: EntityTaggerConfig? = nil) {
        self.action = action
        self.types = types
        self.minScore = minScore
        self.ner = ner
    }

    enum CodingKeys: String, CodingKey {
        case action, types, ner
        case minScore = "min_score"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        action = try c.decodeIfPresent(GuardrailAction.self, forKey: .action) ?? .redact
        types = try c.decodeIfPresent([String: GuardrailAction].self, forKey: .types) ?? [:]
        minScore = try c.decodeIfPresent(Double.self, forKey: .minScore) ?? 0.5
        if let on = try? c.decodeIfPresent(Bool.self, forKey: .ner) {
            ner = on ? EntityTaggerConfig() : nil
        } else {
            ner = try c.decodeIfPresent(EntityTaggerConfig.self, forKey: .ner)
        }
    }
}

/// `pii.ner:` — `true`, or which embedding model entry runs the tagger (a `kind: minilm`
/// provider; nil: the only such entry).
public struct EntityTaggerConfig: Sendable, Decodable {
    public var model: String?

    public init(model: String? = nil) {
        self.model = model
    }
}

/// `injection:` — prompt-injection scoring of user and tool text.
public struct InjectionCheckConfig: Sendable, Decodable {
    public var action: GuardrailAction
    /// The rules' threshold.
    public var threshold: Double
    /// The learned classifier over MiniLM embeddings, on top of the rules; nil leaves it off.
    public var classifier: InjectionClassifierConfig?

    public init(action: GuardrailAction = .block, threshold: Double = 0.4, classifier: InjectionClassifierConfig? = nil) {
        self.action = action
        self.threshold = threshold
        self.classifier = classifier
    }

    enum CodingKeys: String, CodingKey { case action, threshold, classifier }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        action = try c.decodeIfPresent(GuardrailAction.self, forKey: .action) ?? .block
        threshold = try c.decodeIfPresent(Double.self, forKey: .threshold) ?? 0.4
        classifier = try c.decodeIfPresent(InjectionClassifierConfig.self, forKey: .classifier)
    }
}

/// `injection.classifier:` — which embedding model entry (a `kind: minilm` provider: the head is
/// trained on all-MiniLM-L6-v2) embeds the text, the classifier's own threshold (nil: the one
/// shipped with the head), and how many windows of a long text are scored.
public struct InjectionClassifierConfig: Sendable, Decodable {
    public var model: String
    public var threshold: Double?
    public var maxWindows: Int

    public init(model: String, threshold: Double? = nil, maxWindows: Int = 8) {
        self.model = model
        self.threshold = threshold
        self.maxWindows = maxWindows
    }

    enum CodingKeys: String, CodingKey {
        case model, threshold
        case maxWindows = "max_windows"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(String.self, forKey: .model)
        threshold = try c.decodeIfPresent(Double.self, forKey: .threshold)
        maxWindows = try c.decodeIfPresent(Int.self, forKey: .maxWindows) ?? 8
    }
}

/// `ban_list:` — words and phrases (whole words, case- and disguise-insensitive) and regular expressions.
public struct BanListCheckConfig: Sendable, Decodable {
    public var action: GuardrailAction
    public var words: [String]
    public var patterns: [String]

    public init(action: GuardrailAction = .block, words: [String] = [], patterns: [String] = []) {
        self.action = action
        self.words = words
        self.patterns = patterns
    }

    enum CodingKeys: String, CodingKey { case action, words, patterns }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        action = try c.decodeIfPresent(GuardrailAction.self, forKey: .action) ?? .block
        words = try c.decodeIfPresent([String].self, forKey: .words) ?? []
        patterns = try c.decodeIfPresent([String].self, forKey: .patterns) ?? []
    }
}

/// `topics:` — denied topics, each described by example sentences, matched by embedding similarity.
public struct TopicCheckConfig: Sendable, Decodable {
    public var action: GuardrailAction
    /// Cosine similarity to a topic's nearest example at or above which a text is on that topic.
    public var threshold: Double
    /// Topic name → example sentences.
    public var denied: [String: [String]]
    /// The embedding model (a `models:` entry of type embedding).
    public var model: String

    public init(action: GuardrailAction = .block, threshold: Double = 0.6, denied: [String: [String]] = [:], model: String = "all-minilm-l6-v2") {
        self.action = action
        self.threshold = threshold
        self.denied = denied
        self.model = model
    }

    enum CodingKeys: String, CodingKey { case action, threshold, denied, model }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        action = try c.decodeIfPresent(GuardrailAction.self, forKey: .action) ?? .block
        threshold = try c.decodeIfPresent(Double.self, forKey: .threshold) ?? 0.6
        denied = try c.decodeIfPresent([String: [String]].self, forKey: .denied) ?? [:]
        model = try c.decodeIfPresent(String.self, forKey: .model) ?? "all-minilm-l6-v2"
    }
}

/// `leakage:` — the answer repeating the system prompt (a run of `min_words` words in common).
public struct LeakageCheckConfig: Sendable, Decodable {
    public var action: GuardrailAction
    public var minWords: Int

    public init(action: GuardrailAction = .block, minWords: Int = 8) {
        self.action = action
        self.minWords = minWords
    }

    enum CodingKeys: String, CodingKey {
        case action
        case minWords = "min_words"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        action = try c.decodeIfPresent(GuardrailAction.self, forKey: .action) ?? .block
        minWords = try c.decodeIfPresent(Int.self, forKey: .minWords) ?? 8
    }
}
