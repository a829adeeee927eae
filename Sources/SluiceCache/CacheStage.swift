import Metrics
import NIOCore
import SluiceCore
import Synchronization

/// What the cache may do for one request, from the route's `cache:` rule and the request's
/// `x-sluice-cache` and `Cache-Control` headers.
struct CachePlan: Sendable, Hashable {
    var rule: CacheRuleConfig
    var exact: Bool
    var semantic: Bool
    /// False under `Cache-Control: no-cache`: answer fresh (the answer may still be stored).
    var lookup: Bool
    /// False under `Cache-Control: no-store`.
    var store: Bool

    /// The plan, or nil when the cache stays out of this request. Throws for a header Sluice
    /// cannot honour.
    static func make(rule configured: CacheRuleConfig?, chat: ChatCompletionRequest, headers: [String: String], semanticAvailable: Bool) throws -> CachePlan? {
        let mode = headers["x-sluice-cache"]?.trimmingCharacters(in: .whitespaces).lowercased()
        switch mode {
        case nil, "exact", "semantic", "off": break
        default:
            throw SluiceError(.invalidValue, "Header x-sluice-cache must be exact, semantic or off, got '\(mode ?? "")'", param: "x-sluice-cache")
        }
        if mode == "off" { return nil }
        if mode == "semantic" && !semanticAvailable {
            throw SluiceError(.invalidValue, "Semantic caching is not configured on this server (cache.embedding_model)", param: "x-sluice-cache")
        }
        // A header alone opts in with the defaults (exact, team scope, an hour).
        guard let rule = configured ?? (mode != nil ? CacheRuleConfig() : nil) else { return nil }
        // Only a deterministic request may be answered by an earlier answer, unless someone opted in.
        guard chat.temperature == 0 || rule.anyTemperature || mode != nil else { return nil }
        let directives = Set((headers["cache-control"] ?? "").lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let semantic = semanticAvailable && (mode == "semantic" || (mode == nil && rule.semantic))
        let exact = rule.exact || mode != nil
        guard exact || semantic else { return nil }
        return CachePlan(rule: rule, exact: exact, semantic: semantic, lookup: !directives.contains("no-cache"), store: !directives.contains("no-store"))
    }
}

/// Answers from the response cache when it may, and keeps fresh answers for next time. It sits
/// after admission (a hit still counts as a request; its tokens and cost are zero) and inside
/// the guardrails (a cached answer is checked like a fresh one).
public struct CacheStage: InferenceStage {
    let cache: ResponseCache
    private let hits: Counter
    private let semanticHits: Counter
    /// Semantic candidates the question check turned away.
    private let rejected: Counter
    private let misses: Counter
    private let tokensSaved: Counter

    public init(cache: ResponseCache) {
        self.cache = cache
        self.hits = Counter(label: "sluice_cache_lookups_total", dimensions: [("result", "hit")])
        self.semanticHits = Counter(label: "sluice_cache_lookups_total", dimensions: [("result", "semantic-hit")])
        self.rejected = Counter(label: "sluice_cache_lookups_total", dimensions: [("result", "semantic-rejected")])
        self.misses = Counter(label: "sluice_cache_lookups_total", dimensions: [("result", "miss")])
        self.tokensSaved = Counter(label: "sluice_cache_tokens_saved_total")
    }

    /// The candidate check `verify` names. The model check falls back to the rule where no
    /// verifier is configured (a request that opted in by header); a verifier that fails costs
    /// the hit, not the request.
    private func sameQuestion(_ cached: String, _ asked: String, _ verify: CacheVerification, context: InferenceContext) async -> Bool {
        switch verify {
        case .off: return true
        case .rule: return QuestionMatch.matches(cached, asked)
        case .model:
            guard let verifier = cache.verifier else { return QuestionMatch.matches(cached, asked) }
            do {
                return try await verifier(cached, asked)
            } catch {
                context.logger.warning("the cache's paraphrase verifier failed; answering fresh", metadata: ["error": "\(error)"])
                return false
            }
        }
    }

    public func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        // Only chat answers are cached.
        guard let chat = request.chat else { return try await next(request, context) }
        guard
            let plan = try CachePlan.make(
                rule: request.cacheRule, chat: chat, headers: context.headers, semanticAvailable: cache.embedder != nil)
        else {
            context.facts.update(\.cache) { $0.status = .off }
            return try await next(request, context)
        }
        let tenant = CacheKeys.tenant(plan.rule.scope, context: context)
        let key = try CacheKeys.exact(chat, tenant: tenant)
        var partition: String?
        var vector: [Float]?
        if plan.lookup, plan.exact, let entry = await cache.exact(key), let response = serve(entry, status: .hit, similarity: nil, context: context) {
            return response
        }
        if plan.semantic, let embedder = cache.embedder, let text = CacheKeys.semanticText(chat) {
            partition = try CacheKeys.partition(chat, tenant: tenant)
            // An embedding failure costs the semantic lookup, not the request.
            vector = try? await embedder([text]).first
            if plan.lookup, let vector, let partition,
                let (entry, similarity) = cache.nearest(vector, partition: partition, threshold: plan.rule.threshold)
            {
                // Close in the embedding is not the same question: check before answering.
                if let cached = entry.question, await !sameQuestion(cached, text, plan.rule.verify, context: context) {
                    rejected.increment()
                } else if let response = serve(entry, status: .semanticHit, similarity: similarity, context: context) {
                    return response
                }
            }
        }
        misses.increment()
        context.facts.update(\.cache) { $0.status = .miss }
        let response = try await next(request, context)
        guard plan.store else { return response }
        let now = ResponseCache.now
        let template = CacheEntry(
            key: key, partition: vector == nil ? nil : partition, embedding: vector, question: vector == nil ? nil : CacheKeys.semanticText(chat),
            answer: .completion(ByteBuffer()), promptTokens: 0,
            completionTokens: 0, createdAt: now, expiresAt: now + Double(plan.rule.ttlS))
        switch response {
        case .embeddings:
            return response
        case .completion(let result):
            // Only a whole answer is worth keeping.
            guard let finish = result.finishReason, finish != "error", let bytes = try? result.bytes() else { return response }
            var entry = template
            entry.answer = .completion(bytes)
            entry.promptTokens = result.usage?.promptTokens ?? 0
            entry.completionTokens = result.usage?.completionTokens ?? 0
            cache.put(entry)
            return response
        case .stream(let stream):
            let collected = Mutex<(chunks: [ByteBuffer], usage: Usage?, finished: Bool)>(([], nil, false))
            let cache = cache
            return .stream(
                stream.observed(
                    onEvent: { event in
                        collected.withLock { c in
                            if let bytes = try? event.bytes() { c.chunks.append(bytes) }
                            if let u = event.summary.usage { c.usage = u }
                            if event.summary.finishReason != nil { c.finished = true }
                        }
                    },
                    onFinish: { outcome in
                        // A stream that failed or was abandoned midway is not an answer.
                        guard case .finished = outcome else { return }
                        let c = collected.withLock { $0 }
                        guard c.finished, !c.chunks.isEmpty else { return }
                        var entry = template
                        entry.answer = .stream(c.chunks)
                        entry.promptTokens = c.usage?.promptTokens ?? 0
                        entry.completionTokens = c.usage?.completionTokens ?? 0
                        cache.put(entry)
                    }))
        }
    }

    /// The cached answer as a response; nil (a miss) if what was stored no longer reads.
    private func serve(_ entry: CacheEntry, status: CacheStatus, similarity: Double?, context: InferenceContext) -> InferenceResponse? {
        let response: InferenceResponse
        switch entry.answer {
        case .completion(let bytes):
            guard let result = try? ChatResult(encoded: bytes) else { return nil }
            response = .completion(result)
        case .stream(let chunks):
            let events = chunks.compactMap { try? ChatStreamEvent(encoded: $0) }
            guard events.count == chunks.count else { return nil }
            response = .stream(ChatStream(events: events))
        }
        (similarity == nil ? hits : semanticHits).increment()
        tokensSaved.increment(by: entry.promptTokens + entry.completionTokens)
        context.facts.update(\.cache) {
            $0.status = status
            $0.similarity = similarity
            $0.tokensSaved = entry.promptTokens + entry.completionTokens
        }
        return response
    }
}
