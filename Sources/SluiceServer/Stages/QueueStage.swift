import SluiceCore

/// Holds a request until the deployment it goes to has a free slot (`max_concurrent`), highest
/// priority class first; the slot is given back when the request is over, however it ends.
struct QueueStage: InferenceStage {
    let queues: [String: DeploymentQueue]
    let config: QueueConfig

    func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        guard let deployment = request.candidates.first, let queue = queues[deployment.name] else {
            return try await next(request, context)
        }
        let priority = context.principal?.key.priority ?? .normal
        try await queue.acquire(priority: priority, timeoutMs: config.timeoutMs(priority))
        context.trace.onSettle { _ in queue.release() }
        return try await next(request, context)
    }
}
