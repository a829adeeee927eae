
/// Admits a caller's request against its key's and team's limits: the model allow-list, the
/// per-request token cap, then a reservation of requests, tokens, a concurrency slot and budget
/// (`UsageLimiter`) held in the request's `UsageLedger` and given back with the real usage when
/// the ledger is settled, once the request is over, however it ends.
public struct AdmissionControl: Sendable {
    let limiter: any UsageLimiter
    /// `auth.default_max_tokens`: the output assumed when a request sets no cap.
    let defaultMaxTokens: Int

    public init(limiter: any UsageLimiter, defaultMaxTokens: Int) {
        self.limiter = limiter
        self.defaultMaxTokens = defaultMaxTokens
    }

    public func admit(_ context: InferenceContext, model: String, promptTokens: Int, outputTokens: Int?, price: Price) async throws {
        // A schema repair runs the stages again for the same request: it was admitted once.
        guard let principal = context.principal, !context.ledger.isHolding else { return }
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
        context.ledger.hold(grant, from: limiter)
        context.facts.update(\.rateLimitHeaders) { $0 = grant.headers }
    }
}

/// Admits requests (after routing, which knows the served model's price).
public struct AdmitStage: InferenceStage {
    let admission: AdmissionControl

    public init(admission: AdmissionControl) { self.admission = admission }

    public func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        // The highest price among the deployments: a fallback must not overspend the reservation.
        let price = request.deployments.map(\.price).max { a, b in
            a.inputPerMTok + a.outputPerMTok < b.inputPerMTok + b.outputPerMTok
        } ?? .free
        // Embeddings produce no output tokens.
        let outputTokens: Int? = if let chat = request.chat { chat.outputTokenLimit } else { 0 }
        try await admission.admit(context, model: request.model, promptTokens: request.promptTokens, outputTokens: outputTokens, price: price)
        return try await next(request, context)
    }
}
