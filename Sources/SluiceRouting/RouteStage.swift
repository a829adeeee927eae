import SluiceCore

/// Resolves the requested model name (an alias or a model entry) to the deployments that may
/// serve it, in the order they are to be tried; drops those whose context window is too small.
public struct RouteStage: InferenceStage {
    let table: RouteTable
    let catalog: ModelCatalog

    public init(table: RouteTable, catalog: ModelCatalog) {
        self.table = table
        self.catalog = catalog
    }

    public func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        let name = request.chat.model
        guard let route = table[name] else {
            if catalog.embedding[name] != nil {
                throw SluiceError(.invalidValue, "The model '\(name)' is an embedding model; use /v1/embeddings.", param: "model")
            }
            throw catalog.notFound(name)
        }
        let promptTokens = TokenEstimator.promptTokens(of: request.chat)
        let outputTokens = request.chat.outputTokenLimit ?? 256
        var preferred: String?
        if let complexity = route.complexity {
            let decision = await complexity.classifier.decide(request.chat)
            preferred = decision.strong ? complexity.strong : complexity.cheap
            context.trace.withValues { $0.routingScore = decision.score }
            context.logger.info(
                "complexity routing",
                metadata: [
                    "alias": "\(name)", "score": "\(decision.rounded)", "features": "\(decision.featureScore)",
                    "examples": "\(decision.exampleScore.map { "\($0)" } ?? "none")", "chosen": "\(preferred ?? "")",
                ])
        }
        let ordered = route.order.candidates(
            promptTokens: promptTokens, outputTokens: outputTokens, streaming: request.chat.isStreaming, preferred: preferred)
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
        request.candidates = fitting
        request.cacheRule = route.cacheRule
        return try await next(request, context)
    }
}
