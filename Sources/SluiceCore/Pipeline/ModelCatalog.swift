import Logging

/// The models clients can name, bound to their providers. Built once from the config.
public struct ModelCatalog: Sendable {
    /// Chat deployments by model name.
    public let chat: [String: Deployment]
    /// Embedding deployments by model name.
    public let embedding: [String: Deployment]
    /// Every model name in config order, with its provider (for `/v1/models`).
    public let listing: [(name: String, provider: String)]

    public init(config: SluiceConfig, chatProviders: [String: any ChatProvider], embeddingProviders: [String: any EmbeddingProvider]) {
        var chat: [String: Deployment] = [:]
        var embedding: [String: Deployment] = [:]
        var listing: [(String, String)] = []
        for model in config.models {
            listing.append((model.name, model.provider))
            switch model.type {
            case .chat:
                if let provider = chatProviders[model.provider] {
                    let base = config.providers[model.provider]?.timeouts ?? Timeouts()
                    chat[model.name] = Deployment(
                        name: model.name, upstreamModel: model.upstreamModel, providerName: model.provider, provider: provider,
                        price: model.price, contextWindow: model.contextWindow, maxConcurrent: model.maxConcurrent,
                        timeouts: model.timeouts?.applied(to: base))
                }
            case .embedding:
                if let provider = embeddingProviders[model.provider] {
                    embedding[model.name] = Deployment(
                        name: model.name, upstreamModel: model.upstreamModel, providerName: model.provider, serving: .embeddings(provider),
                        price: model.price, maxConcurrent: model.maxConcurrent)
                }
            }
        }
        for name in config.aliases.keys.sorted() { listing.append((name, "sluice")) }
        self.chat = chat
        self.embedding = embedding
        self.listing = listing
    }

    /// The error for a model name nobody configured.
    public func notFound(_ name: String) -> SluiceError {
        let known = listing.map(\.name).prefix(20).joined(separator: ", ")
        return SluiceError(.modelNotFound, "The model '\(name)' does not exist. Available models: \(known).", param: "model")
    }
}

extension Deployment {
    /// Embeds texts with this deployment outside any client request (routing examples, cache
    /// keys, denied topics, the injection classifier); the vectors in input order. Nil for a chat
    /// deployment. Every embedder of one deployment shares its `recentEmbeddings`, so stages that
    /// embed the same message in one request cost one encoder pass.
    public var embedder: (@Sendable ([String]) async throws -> [[Float]])? {
        guard let provider = embeddingProvider, let recent = recentEmbeddings else { return nil }
        let upstreamModel = upstreamModel
        return { texts in
            try await recent.vectors(for: texts) { missing in
                let context = InferenceContext(requestID: "internal", endpoint: "embeddings", logger: Logger(label: "sluice.embedder"), receivedAtUnix: 0)
                let response = try await provider.embed(EmbeddingsRequest(model: upstreamModel, input: .strings(missing)), context: context)
                return response.data.sorted { $0.index < $1.index }.map { item in
                    if case .float(let v) = item.embedding { return v }
                    return []
                }
            }
        }
    }
}
