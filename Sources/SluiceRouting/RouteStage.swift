import SluiceCore

/// Resolves the requested model name (an alias or a model entry) to the deployments that may
/// serve it, in the order they are to be tried; drops those whose context window is too small.
/// An embeddings request names one embedding model, its one deployment.
public struct RouteStage: InferenceStage {
    let table: RouteTable
    let catalog: ModelCatalog

    public init(table: RouteTable, catalog: ModelCatalog) {
        self.table = table
        self.catalog = catalog
    }

    public func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        guard case .chat(let chat) = request.body else { return try await routeEmbeddings(request, context: context, next: next) }
        let name = chat.model
        guard let route = table[name] else {
            if catalog.embedding[name] != nil {
                throw SluiceError(.invalidValue, "The model '\(name)' is an embedding model; use /v1/embeddings.", param: "model")
            }
            throw catalog.notFound(name)
        }
        let promptTokens = TokenEstimator.promptTokens(of: chat)
        let outputTokens = chat.outputTokenLimit ?? 256
        var preferred: String?
        if let complexity = route.complexity {
            let decision = await complexity.classifier.decide(chat)
            preferred = decision.strong ? complexity.strong : complexity.cheap
            context.facts.update(\.route) { $0.complexityScore = decision.score }
            context.logger.info(
                "complexity routing",
                metadata: [
                    "alias": "\(name)", "score": "\(decision.rounded)", "features": "\(decision.featureScore)",
                    "examples": "\(decision.exampleScore.map { "\($0)" } ?? "none")", "chosen": "\(preferred ?? "")",
                ])
        }
        let ordered = route.order.ordered(
            promptTokens: promptTokens, outputTokens: outputTokens, streaming: chat.isStreaming, preferred: preferred)
        // A deployment whose window surely cannot hold the prompt is never tried. The estimate errs
        // high, so only 80% of it counts; a prompt near the limit is left to the upstream, whose
        // context-length error moves the request on to a larger window.
        let needed = promptTokens * 4 / 5
        let fitting = ordered.filter { ($0.contextWindow ?? .max) >= needed }
        guard !fitting.isEmpty else {
            let largest = ordered.compactMap(\.contextWindow).max() ?? 0
            throw SluiceError(
                .contextLengthExceeded,
                "The prompt has about \(promptTokens) tokens but '\(name)' takes at most \(largest); shorten the messages.",
                param: "messages")
        }
        var request = request
        request.deployments = fitting
        request.cacheRule = route.cacheRule
        return try await next(request, context)
    }

    private func routeEmbeddings(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        let name = request.model
        guard let deployment = catalog.embedding[name] else {
            if catalog.chat[name] != nil || table[name] != nil {
                throw SluiceError(.invalidValue, "The model '\(name)' is a chat model; use /v1/chat/completions.", param: "model")
            }
            throw catalog.notFound(name)
        }
        var request = request
        request.deployments = [deployment]
        return try await next(request, context)
    }
}
