/// One chat request as it travels through the pipeline: the client's request, and the
/// deployments that may serve it once routing has chosen them.
public struct InferenceRequest: Sendable {
    /// The request as the client sent it (stages may rewrite it: templates, redaction).
    public var chat: ChatCompletionRequest
    /// The deployments to try, in order; filled in by the route stage.
    public var candidates: [Deployment]
    /// The cache rule that applies (the alias's or the model entry's), set by the route stage.
    public var cacheRule: CacheRuleConfig?

    public init(chat: ChatCompletionRequest, candidates: [Deployment] = []) {
        self.chat = chat
        self.candidates = candidates
    }
}

/// A model entry of the config bound to its provider: what a request is finally sent to.
public struct Deployment: Sendable {
    /// The model entry's `name`, as clients ask for it.
    public let name: String
    /// The model name sent upstream.
    public let upstreamModel: String
    /// The provider's name in the config.
    public let providerName: String
    /// The provider that serves it.
    public let provider: any ChatProvider
    /// The price per million tokens.
    public let price: Price
    /// The context window in tokens, when known.
    public let contextWindow: Int?
    /// Requests served at once, when capped (`max_concurrent`).
    public let maxConcurrent: Int?
    /// The model entry's own timeouts (over the provider's), enforced around each attempt; nil
    /// leaves the provider's alone.
    public let timeouts: Timeouts?

    public init(
        name: String, upstreamModel: String, providerName: String, provider: any ChatProvider, price: Price, contextWindow: Int?,
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
