import SluiceCore

/// Resolves the requested model name to the deployments that may serve it.
struct RouteStage: InferenceStage {
    let catalog: ModelCatalog

    func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        let name = request.chat.model
        guard let deployment = catalog.chat[name] else {
            if catalog.embedding[name] != nil {
                throw SluiceError(.invalidValue, "The model '\(name)' is an embedding model; use /v1/embeddings.", param: "model")
            }
            throw catalog.notFound(name)
        }
        var request = request
        request.candidates = [deployment]
        return try await next(request, context)
    }
}
