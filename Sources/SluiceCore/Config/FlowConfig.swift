import Foundation

/// One `flows:` entry: a production use case declared once — its prompt (mustache templates over
/// typed input), the model or alias that serves it, its output contract, parameters and
/// guardrail policy. The config's definition is the flow's version 1.
public struct FlowConfig: Sendable, Decodable, Hashable {
    /// One templated message.
    public struct Message: Sendable, Decodable, Hashable {
        public var role: ChatMessage.Role
        /// A mustache template over the flow's input.
        public var content: String

        public init(role: ChatMessage.Role, content: String) {
            self.role = role
            self.content = content
        }
    }

    /// What a run answers: free text, or a JSON document that must match a schema.
    public enum Output: Sendable, Hashable {
        case text
        case schema(JSONValue)
    }

    /// Sampling parameters the flow sets on every run.
    public struct Params: Sendable, Decodable, Hashable {
        public var temperature: Double?
        public var topP: Double?
        public var maxTokens: Int?
        public var seed: Int?
        public var stop: [String]?

        public init(temperature: Double? = nil, topP: Double? = nil, maxTokens: Int? = nil, seed: Int? = nil, stop: [String]? = nil) {
            self.temperature = temperature
            self.topP = topP
            self.maxTokens = maxTokens
            self.seed = seed
            self.stop = stop
        }

        enum CodingKeys: String, CodingKey {
            case temperature, seed, stop
            case topP = "top_p"
            case maxTokens = "max_tokens"
        }
    }

    /// Objectives the flow is measured against (`GET /admin/flows/NAME/slo`).
    public struct SLO: Sendable, Decodable, Hashable {
        public var p50Ms: Double?
        public var p95Ms: Double?
        public var p99Ms: Double?
        /// The share of runs that must answer 2xx (an output schema that failed is a 502).
        public var successRate: Double?
        /// The most a run may cost on average, in USD.
        public var maxCostUSD: Double?
        /// The least mean feedback score (0 to 1) of the flow's runs.
        public var minFeedback: Double?
        /// The least mean score per judge, on the judge's scale.
        public var minJudge: [String: Double]?

        public init(p50Ms: Double? = nil, p95Ms: Double? = nil, p99Ms: Double? = nil, successRate: Double? = nil, maxCostUSD: Double? = nil) {
            self.p50Ms = p50Ms
            self.p95Ms = p95Ms
            self.p99Ms = p99Ms
            self.successRate = successRate
            self.maxCostUSD = maxCostUSD
        }

        enum CodingKeys: String, CodingKey {
            case p50Ms = "p50_ms"
            case p95Ms = "p95_ms"
            case p99Ms = "p99_ms"
            case successRate = "success_rate"
            case maxCostUSD = "max_cost_usd"
            case minFeedback = "min_feedback"
            case minJudge = "min_judge"
        }
    }

    /// `conversation:`: the flow keeps history (runs name a `conversation_id`).
    public struct ConversationConfig: Sendable, Decodable, Hashable {
        public enum Strategy: String, Sendable, Decodable, Hashable { case truncate, summarize }
        /// The most tokens of history a run gets; otherwise what the model's context window
        /// leaves after the prompt and `max_tokens`.
        public var maxHistoryTokens: Int?
        public var strategy: Strategy = .truncate

        public init(maxHistoryTokens: Int? = nil, strategy: Strategy = .truncate) {
            self.maxHistoryTokens = maxHistoryTokens
            self.strategy = strategy
        }

        enum CodingKeys: String, CodingKey {
            case strategy
            case maxHistoryTokens = "max_history_tokens"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            maxHistoryTokens = try c.decodeIfPresent(Int.self, forKey: .maxHistoryTokens)
            strategy = try c.decodeIfPresent(Strategy.self, forKey: .strategy) ?? .truncate
        }
    }

    /// `retrieval:`: passages from a vector store, searched with the run's input, rendered into
    /// the prompt as `{{#passages}}[{{n}}] {{text}}{{/passages}}`; `[n]` marks in the answer become citations.
    public struct Retrieval: Sendable, Decodable, Hashable {
        public enum OnEmpty: String, Sendable, Decodable, Hashable {
            /// Answer `refusal` without calling the model.
            case refuse
            /// Call the model with no passages.
            case `continue`
        }

        public var vectorStore: String
        public var topK: Int = 5
        /// Passages below this cosine similarity are left out.
        public var minScore: Double = 0.3
        /// hybrid, vector or keyword.
        public var mode: String = "hybrid"
        /// A mustache template over the input that makes the search query; nil: the input's string values.
        public var query: String?
        public var onEmpty: OnEmpty = .refuse
        public var refusal: String = "I could not find this in the documents I can search."

        public init(vectorStore: String, topK: Int = 5, minScore: Double = 0.3, mode: String = "hybrid", query: String? = nil, onEmpty: OnEmpty = .refuse) {
            self.vectorStore = vectorStore
            self.topK = topK
            self.minScore = minScore
            self.mode = mode
            self.query = query
            self.onEmpty = onEmpty
        }

        enum CodingKeys: String, CodingKey {
            case mode, query, refusal
            case vectorStore = "vector_store"
            case topK = "top_k"
            case minScore = "min_score"
            case onEmpty = "on_empty"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            vectorStore = try c.decode(String.self, forKey: .vectorStore)
            topK = try c.decodeIfPresent(Int.self, forKey: .topK) ?? topK
            minScore = try c.decodeIfPresent(Double.self, forKey: .minScore) ?? minScore
            mode = try c.decodeIfPresent(String.self, forKey: .mode) ?? mode
            query = try c.decodeIfPresent(String.self, forKey: .query)
            onEmpty = try c.decodeIfPresent(OnEmpty.self, forKey: .onEmpty) ?? onEmpty
            refusal = try c.decodeIfPresent(String.self, forKey: .refusal) ?? refusal
        }
    }

    /// `grounding:`: each answer sentence scored for support by the retrieved passages.
    public struct Grounding: Sendable, Decodable, Hashable {
        public enum Action: String, Sendable, Decodable, Hashable {
            /// Report it (`grounding` in the run's answer, the audit record).
            case flag
            /// Refuse the answer (a 400 `guardrail_blocked` naming the sentences).
            case block
            /// Ask the model once more, naming the unsupported sentences; report what comes back.
            case retry
        }

        public var action: Action = .flag
        /// A sentence with less than this share of its content words in the passages is unsupported.
        public var threshold: Double = 0.6

        public init(action: Action = .flag, threshold: Double = 0.6) {
            self.action = action
            self.threshold = threshold
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            action = try c.decodeIfPresent(Action.self, forKey: .action) ?? action
            threshold = try c.decodeIfPresent(Double.self, forKey: .threshold) ?? threshold
        }

        enum CodingKeys: String, CodingKey { case action, threshold }
    }

    public var description: String?
    /// A model entry or alias: routing, fallbacks and the cache apply as for any request.
    public var model: String
    /// The prompt, in order. Either this or `template`.
    public var messages: [Message]
    /// A mustache file whose rendering is the one user message (instead of `messages`).
    public var template: String?
    /// A JSON Schema for the input; the template may only use the properties it declares.
    public var input: JSONValue?
    public var output: Output
    public var params: Params
    /// A guardrail policy name, over the caller's own.
    public var guardrails: String?
    public var slo: SLO?
    /// Nil: stateless (a run naming a conversation is refused).
    public var conversation: ConversationConfig?
    public var retrieval: Retrieval?
    public var grounding: Grounding?

    public init(
        description: String? = nil, model: String, messages: [Message], template: String? = nil, input: JSONValue? = nil, output: Output = .text,
        params: Params = .init(), guardrails: String? = nil
    ) {
        self.description = description
        self.model = model
        self.messages = messages
        self.template = template
        self.input = input
        self.output = output
        self.params = params
        self.guardrails = guardrails
    }

    enum CodingKeys: String, CodingKey { case description, model, messages, template, input, output, params, guardrails, slo, conversation, retrieval, grounding }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        model = try c.decode(String.self, forKey: .model)
        messages = try c.decodeIfPresent([Message].self, forKey: .messages) ?? []
        template = try c.decodeIfPresent(String.self, forKey: .template)
        input = try c.decodeIfPresent(JSONValue.self, forKey: .input)
        switch try c.decodeIfPresent(JSONValue.self, forKey: .output) {
        case nil, .string("text")?: output = .text
        case .object(let schema)?: output = .schema(.object(schema))
        case let other?:
            throw DecodingError.dataCorrupted(
                .init(codingPath: c.codingPath + [CodingKeys.output], debugDescription: "expected text or a JSON Schema object, got \(other.typeName)"))
        }
        params = try c.decodeIfPresent(Params.self, forKey: .params) ?? .init()
        guardrails = try c.decodeIfPresent(String.self, forKey: .guardrails)
        slo = try c.decodeIfPresent(SLO.self, forKey: .slo)
        conversation = try c.decodeIfPresent(ConversationConfig.self, forKey: .conversation)
        retrieval = try c.decodeIfPresent(Retrieval.self, forKey: .retrieval)
        grounding = try c.decodeIfPresent(Grounding.self, forKey: .grounding)
    }

    /// Whether a name can name a flow (it appears in URLs and in `model: "flow:NAME"`).
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a) || $0 == 0x2d || $0 == 0x5f || $0 == 0x2e }
    }

    /// The properties the input schema declares (nil when it declares none: any object).
    public var inputProperties: Set<String>? {
        guard case .object(let schema)? = input, case .object(let properties)? = schema["properties"] else { return nil }
        return Set(properties.keys)
    }

    /// What is wrong with the definition: `models` are the chat models and aliases, `policies` the guardrail policies (nil: only the built-in default).
    public func problems(path: String, models: Set<String>, policies: Set<String>?) -> [ConfigError] {
        var out: [ConfigError] = []
        if !models.contains(model) {
            out.append(ConfigError(path: "\(path).model", "no model or alias named '\(model)' (models: \(models.sorted().prefix(20).joined(separator: ", ")))"))
        }
        if messages.isEmpty == (template == nil) {
            out.append(ConfigError(path: path, "a flow has either messages or a template, not both and not neither"))
        }
        if let input {
            if case .object(let schema) = input {
                if let type = schema["type"], type != .string("object") {
                    out.append(ConfigError(path: "\(path).input.type", "a flow's input is an object (its properties are the template's variables)"))
                }
            } else {
                out.append(ConfigError(path: "\(path).input", "must be a JSON Schema object"))
            }
        }
        if let name = guardrails, !(policies ?? ["default"]).contains(name), name != "none" {
            out.append(ConfigError(path: "\(path).guardrails", "no guardrail policy named '\(name)'"))
        }
        if let t = params.temperature, !(0...2).contains(t) { out.append(ConfigError(path: "\(path).params.temperature", "must be in 0...2")) }
        if let p = params.topP, !(0...1).contains(p) { out.append(ConfigError(path: "\(path).params.top_p", "must be in 0...1")) }
        if let m = params.maxTokens, m <= 0 { out.append(ConfigError(path: "\(path).params.max_tokens", "must be positive")) }
        if let conversation {
            if let m = conversation.maxHistoryTokens, m <= 0 { out.append(ConfigError(path: "\(path).conversation.max_history_tokens", "must be positive")) }
        }
        if let slo {
            for (key, value) in [("p50_ms", slo.p50Ms), ("p95_ms", slo.p95Ms), ("p99_ms", slo.p99Ms), ("max_cost_usd", slo.maxCostUSD)] {
                if let value, !(value > 0) { out.append(ConfigError(path: "\(path).slo.\(key)", "must be more than 0")) }
            }
            if let f = slo.minFeedback, !(f > 0 && f <= 1) { out.append(ConfigError(path: "\(path).slo.min_feedback", "must be in (0, 1]")) }
            if let rate = slo.successRate, !(rate > 0 && rate < 1) {
                out.append(ConfigError(path: "\(path).slo.success_rate", "must be in (0, 1): 0.99 leaves 1% of runs as the error budget"))
            }
        }
        if let retrieval {
            if retrieval.vectorStore.isEmpty { out.append(ConfigError(path: "\(path).retrieval.vector_store", "must name a vector store (vs_…)")) }
            if !(1...50).contains(retrieval.topK) { out.append(ConfigError(path: "\(path).retrieval.top_k", "must be from 1 to 50")) }
            if !(0...1).contains(retrieval.minScore) { out.append(ConfigError(path: "\(path).retrieval.min_score", "must be in 0...1")) }
            if !["hybrid", "vector", "keyword"].contains(retrieval.mode) {
                out.append(ConfigError(path: "\(path).retrieval.mode", "must be hybrid, vector or keyword"))
            }
        }
        if let grounding {
            if retrieval == nil { out.append(ConfigError(path: "\(path).grounding", "needs retrieval: (answers are checked against the retrieved passages)")) }
            if !(0...1).contains(grounding.threshold) { out.append(ConfigError(path: "\(path).grounding.threshold", "must be in 0...1")) }
        }
        // Every variable a template uses must be declared by the input schema (or be the passages retrieval adds).
        if var declared = inputProperties {
            if retrieval != nil { declared.insert("passages") }
            for (i, message) in messages.enumerated() {
                for name in MustacheNames.topLevel(in: message.content) where !declared.contains(name) {
                    out.append(
                        ConfigError(
                            path: "\(path).messages[\(i)].content",
                            "uses '{{\(name)}}', which the input schema does not declare (properties: \(declared.sorted().joined(separator: ", ")))"))
                }
            }
        }
        return out
    }
}

/// The variable names a mustache template reads from its top-level context: `{{name}}`,
/// `{{{name}}}`, `{{&name}}`, and the names of sections (`{{#name}}`, `{{^name}}`), but not the
/// names inside a section, which may be the section item's own. A dotted name counts by its first
/// part. For checking a flow against its input schema at load time, before anything renders.
public enum MustacheNames {
    public static func topLevel(in template: String) -> [String] {
        var names: [String] = []
        var depth = 0
        var rest = Substring(template)
        while let open = rest.range(of: "{{") {
            rest = rest[open.upperBound...]
            var triple = false
            if rest.hasPrefix("{") {
                triple = true
                rest = rest.dropFirst()
            }
            guard let close = rest.range(of: triple ? "}}}" : "}}") else { break }
            var tag = rest[..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            rest = rest[close.upperBound...]
            var sigil: Character?
            if let first = tag.first, "#^/!>&=%".contains(first) {
                sigil = first
                tag = String(tag.dropFirst()).trimmingCharacters(in: .whitespaces)
            }
            switch sigil {
            case "!", ">", "=", "%": continue
            case "/":
                depth = max(0, depth - 1)
                continue
            case "#", "^":
                if depth == 0 { names.append(root(tag)) }
                depth += 1
            default:
                if depth == 0, tag != "." { names.append(root(tag)) }
            }
        }
        var seen: Set<String> = []
        return names.filter { !$0.isEmpty && seen.insert($0).inserted }
    }

    private static func root(_ name: String) -> String {
        String(name.split(separator: ".", maxSplits: 1).first ?? "")
    }
}
