/// A backend that answers chat completions: an OpenAI-compatible server, Anthropic, the
/// simulated provider, the local llama-server. `request.model` is already the upstream's name.
public protocol ChatProvider: Sendable {
    /// A whole completion.
    func complete(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatResult
    /// A stream of chunks. Throws before returning when the call fails before its first chunk.
    func stream(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatStream
    /// Whether the backend answers right now.
    func checkHealth() async -> ProviderHealth
}

/// A backend that computes embeddings.
public protocol EmbeddingProvider: Sendable {
    /// Embeddings for every input, in order. `request.model` is the upstream's name.
    func embed(_ request: EmbeddingsRequest, context: InferenceContext) async throws -> EmbeddingsResponse
}

/// An embedding provider that also gives the state of each word of a text in context (the
/// in-process MiniLM): what a token classifier, such as the PII entity tagger, reads.
public protocol WordEncoder: Sendable {
    /// One `WordStates` per text, in order.
    func wordStates(_ texts: [String]) async throws -> [WordStates]
}

/// The words of one text and the encoder's state of each.
public struct WordStates: Sendable {
    /// Each word's code-point range in the text.
    public var words: [Range<Int>]
    /// `words.count` rows of `width` floats: the last layer's state of each word's first piece.
    public var states: [Float]
    public var width: Int

    public init(words: [Range<Int>], states: [Float], width: Int) {
        self.words = words
        self.states = states
        self.width = width
    }
}

/// The outcome of a health probe.
public enum ProviderHealth: Sendable, Hashable {
    case healthy
    case unhealthy(String)

    /// Whether the probe succeeded.
    public var isHealthy: Bool {
        if case .healthy = self { return true }
        return false
    }
}
