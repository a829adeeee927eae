
/// Admits a caller's request against its key's and team's limits: the model allow-list, the
/// per-request token cap, then a reservation of requests, tokens, a concurrency slot and budget
/// (`UsageLimiter`), given back with the real usage once the request is over, however it ends.
public struct AdmissionControl: Sendable {
    let limiter: any UsageLimiter
    /// `auth.default_max_tokens`: the output assumed when a request sets no cap.
    let defaultMaxTokens: Int

    public init(limiter: any UsageLimiter, defaultMaxTokens: Int) {
        self.limiter = limiter
        self.defaultMaxTokens = defaultMaxTokens
    }

    public func admit(_ context: InferenceContext, model: String, promptTokens: Int, outputTokens: Int?, price: Price) async throws {
        guard let principal = context.principal else { return }
        guard principal.key.allows(model: model) else {
            throw SluiceError(.permissionDenied, "This API key may not use the model '\(model)'.", param: "model")
        }
        var output = outputTokens ?? defaultMaxTokens
        for scope in principal.scopes {
            guard let cap = scope.limits.maxTokensPerRequest else { continue }
            if promptTokens + (outputTokens ?? 0) > cap {
                throw SluiceError(
                    .invalidValue,
                    "This request asks for up to \(promptTokens + (outputTokens ?? 0)) tokens (about \(promptTokens) in the prompt), more than the \(cap) allowed per request for this API key; shorten it or lower max_tokens.",
                    param: outputTokens == nil ? "messages" : "max_tokens")
            }
            // Without an explicit cap, reserve no more than the request could be allowed.
            if outputTokens == nil { output = min(output, cap - promptTokens) }
        }
        let estimate = Usage(promptTokens: promptTokens, completionTokens: output)
        let grant = try await limiter.admit(
            AdmissionRequest(scopes: principal.scopes, tokens: estimate.totalTokens, costUSD: price.cost(of: estimate)))
        context.trace.withValues { $0.rateLimitHeaders = grant.headers }
        let limiter = self.limiter
        context.trace.onSettle { values in
            limiter.settle(grant, tokens: values.usage?.totalTokens ?? 0, costUSD: values.costUSD ?? 0)
        }
    }
}

/// Admits chat requests (after routing, which knows the served model's price).
public struct AdmitStage: InferenceStage {
    let admission: AdmissionControl

    public init(admission: AdmissionControl) { self.admission = admission }

    public func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        // The highest price among the candidates: a fallback must not overspend the reservation.
        let price = request.candidates.map(\.price).max { a, b in
            a.inputPerMTok + a.outputPerMTok < b.inputPerMTok + b.outputPerMTok
        } ?? .free
        try await admission.admit(
            context, model: request.chat.model, promptTokens: TokenEstimator.promptTokens(of: request.chat),
            outputTokens: request.chat.outputTokenLimit, price: price)
        return try await next(request, context)
    }
}
