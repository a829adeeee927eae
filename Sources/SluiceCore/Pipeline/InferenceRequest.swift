/// One request as it travels through the pipeline: what the client asked for (a chat
/// completion or embeddings), and the deployments that may serve it once routing has chosen
/// them. Stages that only concern chat (the cache, output checks) pass other bodies on.
public struct InferenceRequest: Sendable {
    /// The client's request, by endpoint.
    public enum Body: Sendable {
        case chat(ChatCompletionRequest)
        case embeddings(EmbeddingsRequest)
    }

    /// The request as the client sent it (stages may rewrite it: templates, redaction).
    public var body: Body
    /// The deployments to try, in order; filled in by the route stage.
    public var deployments: [Deployment]
    /// The cache rule that applies (the alias's or the model entry's), set by the route stage.
    public var cacheRule: CacheRuleConfig?
    /// The flow this request runs, when it names one (`/v1/flows/{name}/run`, `model: "flow:NAME"`);
    /// the flow stage turns it into the chat request its definition says.
    public var flow: FlowRun?
    /// The guardrail policy to apply instead of the caller's (a flow's `guardrails:`).
    public var guardrailPolicy: String?
    /// The conversation whose history this request continues (and to which its turn is added).
    public var conversation: String?
    /// The most tokens of history to include (a flow's `conversation.max_history_tokens`).
    public var maxHistoryTokens: Int?
    /// Whether history that does not fit is summarised rather than dropped (a flow's `conversation.strategy`).
    public var summarizesHistory = false

    public init(chat: ChatCompletionRequest, deployments: [Deployment] = []) {
        self.body = .chat(chat)
        self.deployments = deployments
    }

    public init(embeddings: EmbeddingsRequest, deployments: [Deployment] = []) {
        self.body = .embeddings(embeddings)
        self.deployments = deployments
    }

    /// The model (or alias) the client named.
    public var model: String {
        switch body {
        case .chat(let chat): chat.model
        case .embeddings(let embeddings): embeddings.model
        }
    }

    /// Whether the answer is to be streamed.
    public var isStreaming: Bool {
        if case .chat(let chat) = body { return chat.isStreaming }
        return false
    }

    /// The chat request, when this is one.
    public var chat: ChatCompletionRequest? {
        if case .chat(let chat) = body { return chat }
        return nil
    }

    /// About how many tokens the input has.
    public var promptTokens: Int {
        switch body {
        case .chat(let chat): TokenEstimator.promptTokens(of: chat)
        case .embeddings(let embeddings): TokenEstimator.inputTokens(of: embeddings)
        }
    }
}

/// A request to run a flow: which one, which version (the active one when nil), and its input.
public struct FlowRun: Sendable {
    public var name: String
    public var version: Int?
    /// The variables, as the client sent them (checked against the flow's input schema).
    public var input: JSONValue
    /// The input as one text (the last user message of a `model: "flow:NAME"` request): bound to
    /// the input schema's one string property, or parsed as the JSON object, by the flow stage.
    public var text: String?
    /// A model entry or alias to run on instead of the flow's (an experiment's variant, an evaluation).
    public var model: String?

    public init(name: String, version: Int? = nil, input: JSONValue, text: String? = nil) {
        self.name = name
        self.version = version
        self.input = input
        self.text = text
    }
}

/// A model entry of the config bound to its provider: what a request is finally sent to.
public struct Deployment: Sendable {
    /// What the deployment serves, and through which provider.
    public enum Provider: Sendable {
        case chat(any ChatProvider)
        case embeddings(any EmbeddingProvider)
    }

    /// The model entry's `name`, as clients ask for it.
    public let name: String
    /// The model name sent upstream.
    public let upstreamModel: String
    /// The provider's name in the config.
    public let providerName: String
    /// The provider that serves it.
    public let provider: Provider
    /// The price per million tokens.
    public let price: Price
    /// The context window in tokens, when known.
    public let contextWindow: Int?
    /// Requests served at once, when capped (`max_concurrent`).
    public let maxConcurrent: Int?
    /// The model entry's own timeouts (over the provider's), enforced around each attempt; nil
    /// leaves the provider's alone.
    public let timeouts: Timeouts?
    /// The texts Sluice's own stages embedded last with an embedding deployment (`embedder`),
    /// shared by every stage that embeds with it; nil for a chat deployment.
    public let recentEmbeddings: RecentEmbeddings?

    public init(
        name: String, upstreamModel: String, providerName: String, provider: any ChatProvider, price: Price, contextWindow: Int?,
        maxConcurrent: Int? = nil, timeouts: Timeouts? = nil
    ) {
        self.init(
            name: name, upstreamModel: upstreamModel, providerName: providerName, serving: .chat(provider), price: price,
            contextWindow: contextWindow, maxConcurrent: maxConcurrent, timeouts: timeouts)
    }

    public init(
        name: String, upstreamModel: String, providerName: String, serving provider: Provider, price: Price, contextWindow: Int? = nil,
        maxConcurrent: Int? = nil, timeouts: Timeouts? = nil
    ) {
        self.maxConcurrent = maxConcurrent
        self.timeouts = timeouts
        self.name = name
        self.upstreamModel = upstreamModel
        self.providerName = providerName
        self.provider = provider
        self.price = price
        self.contextWindow = contextWindow
        if case .embeddings = provider { recentEmbeddings = RecentEmbeddings(model: name) } else { recentEmbeddings = nil }
    }

    /// The chat provider, for a chat deployment.
    public var chatProvider: (any ChatProvider)? {
        if case .chat(let p) = provider { return p }
        return nil
    }

    /// The embedding provider, for an embedding deployment.
    public var embeddingProvider: (any EmbeddingProvider)? {
        if case .embeddings(let p) = provider { return p }
        return nil
    }
}

/// A price per million input and output tokens, in USD.
public struct Price: Sendable, Hashable, Codable {
    public var inputPerMTok: Double
    public var outputPerMTok: Double

    public init(inputPerMTok: Double, outputPerMTok: Double) {
        self.inputPerMTok = inputPerMTok
        self.outputPerMTok = outputPerMTok
    }

    public static let free = Price(inputPerMTok: 0, outputPerMTok: 0)

    /// The cost in USD of the given usage.
    public func cost(of usage: Usage) -> Double {
        (Double(usage.promptTokens) * inputPerMTok + Double(usage.completionTokens) * outputPerMTok) / 1_000_000
    }

    enum CodingKeys: String, CodingKey {
        case inputPerMTok = "input_per_mtok"
        case outputPerMTok = "output_per_mtok"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inputPerMTok = try c.decodeIfPresent(Double.self, forKey: .inputPerMTok) ?? 0
        outputPerMTok = try c.decodeIfPresent(Double.self, forKey: .outputPerMTok) ?? 0
    }
}
