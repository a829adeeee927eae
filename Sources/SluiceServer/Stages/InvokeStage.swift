import SluiceCore

/// The end of the pipeline: sends the request to the chosen deployment's provider.
struct InvokeStage {
    /// The terminal handler for `Pipeline`.
    static var handler: InferenceHandler {
        InferenceHandler { request, context in
            guard let deployment = request.candidates.first else {
                throw SluiceError(.internalError, "No deployment was chosen for the request.")
            }
            var upstream = request.chat
            upstream.model = deployment.upstreamModel
            context.trace.withValues {
                $0.deployment = deployment.name
                $0.provider = deployment.providerName
                $0.price = deployment.price
            }
            let started = ContinuousClock.now
            do {
                let response: InferenceResponse
                if upstream.isStreaming {
                    response = .stream(try await deployment.provider.stream(upstream, context: context))
                } else {
                    response = .completion(try await deployment.provider.complete(upstream, context: context))
                }
                record(deployment, status: 200, code: nil, since: started, context: context)
                return response
            } catch let error as SluiceError {
                record(deployment, status: error.upstreamStatus ?? error.httpStatus, code: error.code.rawValue, since: started, context: context)
                throw error
            }
        }
    }

    static func record(_ deployment: Deployment, status: Int, code: String?, since: ContinuousClock.Instant, context: InferenceContext) {
        let ms = (ContinuousClock.now - since).milliseconds
        context.trace.withValues {
            $0.attempts.append(.init(deployment: deployment.name, status: status, errorCode: code, latencyMs: ms))
        }
    }
}

extension Duration {
    /// The duration in milliseconds, fractional.
    var milliseconds: Double {
        let (s, atto) = components
        return Double(s) * 1000 + Double(atto) / 1e15
    }
}
