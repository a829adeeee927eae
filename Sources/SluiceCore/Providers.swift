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
