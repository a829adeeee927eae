import Metrics
import SluiceCore
import Tracing

/// The end of the pipeline: tries the route's deployments in order until one answers. A
/// connection error, timeout, 429 or 5xx moves on to the next deployment; a context-length error
/// moves on to a larger window; after a round through them all, another round follows after an
/// exponential backoff with jitter (at least as long as a `Retry-After` asked), for
/// `routing.retries` rounds, within the request's deadline. A deployment whose breaker is open
/// is passed over. A stream is peeked: it may fall back until its first chunk, never after.
public struct FallbackInvoker: Sendable {
    let board: DeploymentBoard
    let queues: [String: DeploymentQueue]
    let queueConfig: QueueConfig
    let retries: Int
    let backoff: Backoff
    let maxRetryAfter: Duration
    private let fallbackCounters: [String: Counter]
    /// A span per upstream attempt; nil with tracing off.
    public var tracer: (any Tracer)?
    /// Whether the current request is being traced (its span sampled): only then does an attempt get a span of its own.
    public var isTraced: @Sendable () -> Bool = { false }

    public init(board: DeploymentBoard, queues: [String: DeploymentQueue], queueConfig: QueueConfig, routing: RoutingConfig) {
        self.board = board
        self.queues = queues
        self.queueConfig = queueConfig
        self.retries = routing.retries
        self.backoff = Backoff(base: .milliseconds(routing.backoffMs), cap: .milliseconds(routing.maxBackoffMs))
        self.maxRetryAfter = .seconds(routing.maxRetryAfterS)
        var counters: [String: Counter] = [:]
        for name in board.statuses.keys { counters[name] = Counter(label: "sluice_fallback_attempts_total", dimensions: [("deployment", name)]) }
        self.fallbackCounters = counters
    }

    /// The terminal handler for `Pipeline`.
    public var handler: InferenceHandler {
        InferenceHandler { request, context in try await invoke(request, context: context) }
    }

    /// Why a deployment is not tried again within this request.
    private struct Plan {
        /// Deployments not to try again (timed out; context too small).
        var excluded: Set<String> = []
        /// Per deployment: not before this instant (its `Retry-After`).
        var notBefore: [String: ContinuousClock.Instant] = [:]
        var attempts = 0
        var lastError: (any Error)?
        /// Deployments passed over because their breaker was open.
        var unavailable: [String] = []
        /// Whether a deployment was passed over because of a `Retry-After` it was given.
        var cooling = false
    }

    func invoke(_ request: InferenceRequest, context: InferenceContext) async throws -> InferenceResponse {
        guard !request.deployments.isEmpty else {
            throw SluiceError(.internalError, "No deployment was chosen for the request.")
        }
        var plan = Plan()
        for round in 0...retries {
            if round > 0 {
                let remaining = request.deployments.filter { !plan.excluded.contains($0.name) }
                guard !remaining.isEmpty else { break }
                var wait = backoff.delay(round: round)
                // When every deployment asked to be left alone, wait for the first to be ready.
                let now = ContinuousClock.now
                let ready = remaining.map { plan.notBefore[$0.name] ?? now }.min() ?? now
                if ready - now > wait { wait = ready - now }
                if let deadline = context.deadline, now + wait >= deadline { break }
                try await Task.sleep(for: wait)
            }
            plan.unavailable.removeAll()
            plan.cooling = false
            for deployment in request.deployments where !plan.excluded.contains(deployment.name) {
                if let until = plan.notBefore[deployment.name], until > .now { continue }
                let status = board[deployment.name]
                switch status?.begin() ?? .granted {
                case .granted:
                    break
                case .breakerOpen:
                    plan.unavailable.append(deployment.name)
                    continue
                case .cooling(let until):
                    // Another request was told to wait: so is this one, within reason.
                    if until - .now > maxRetryAfter { plan.excluded.insert(deployment.name) } else { plan.notBefore[deployment.name] = until }
                    plan.cooling = true
                    continue
                }
                if plan.attempts > 0 { fallbackCounters[deployment.name]?.increment() }
                var attemptContext = context
                attemptContext.attempt = plan.attempts
                plan.attempts += 1
                do {
                    guard let tracer, isTraced() else {
                        return try await attempt(request, on: deployment, status: status, context: attemptContext)
                    }
                    return try await tracer.withSpan("upstream \(deployment.name)", ofKind: .client) { span in
                        span.attributes["sluice.deployment"] = deployment.name
                        span.attributes["gen_ai.request.model"] = deployment.upstreamModel
                        span.attributes["sluice.attempt"] = attemptContext.attempt
                        return try await attempt(request, on: deployment, status: status, context: attemptContext)
                    }
                } catch let expired as QueueWaitExpired {
                    // It already waited its priority's whole queue timeout: waiting again would double it.
                    plan.excluded.insert(deployment.name)
                    plan.lastError = expired.error
                } catch {
                    if error is CancellationError || Task.isCancelled { throw error }
                    guard let failure = error as? SluiceError else { throw error }
                    plan.lastError = failure
                    switch failure.code {
                    case .contextLengthExceeded:
                        // Only a larger window can help.
                        let window = deployment.contextWindow ?? 0
                        for other in request.deployments where other.name == deployment.name || (other.contextWindow ?? .max) <= window {
                            plan.excluded.insert(other.name)
                        }
                    case .contentFiltered:
                        // Each vendor filters differently: another deployment may answer.
                        plan.excluded.insert(deployment.name)
                    case .upstreamTimeout:
                        // A deployment that hung once would likely hang again: spend the deadline elsewhere.
                        plan.excluded.insert(deployment.name)
                    case .upstreamRateLimited, .rateLimited:
                        let seconds = failure.retryAfter ?? 1
                        if .seconds(seconds) > maxRetryAfter {
                            plan.excluded.insert(deployment.name)
                        } else {
                            plan.notBefore[deployment.name] = .now + .seconds(seconds)
                        }
                    case .upstreamError, .upstreamBadResponse, .upstreamUnavailable:
                        break
                    default:
                        // The request itself is at fault: another deployment would refuse it too.
                        throw failure
                    }
                }
            }
            // Only open breakers, nothing that a wait would help: no point in another round.
            if plan.attempts == 0 && !plan.unavailable.isEmpty && !plan.cooling { break }
        }
        if let error = plan.lastError { throw error }
        if plan.unavailable.isEmpty {
            let until = plan.notBefore.values.min().map { $0 - .now } ?? .seconds(1)
            throw SluiceError(
                .upstreamRateLimited,
                "Every deployment of '\(request.model)' asked to be left alone for now (Retry-After); try again later.",
                retryAfter: max(1, Int(until.components.seconds) + 1))
        }
        throw SluiceError(
            .upstreamUnavailable,
            "Every deployment of '\(request.model)' is unavailable (circuit breaker open: \(plan.unavailable.joined(separator: ", "))); try again shortly.",
            retryAfter: 1)
    }

    /// A deployment's queue timed out before the call could start.
    private struct QueueWaitExpired: Error { let error: SluiceError }

    /// One call to one deployment, with its queue slot, its status and its record among the request's facts.
    private func attempt(
        _ request: InferenceRequest, on deployment: Deployment, status: DeploymentStatus?, context: InferenceContext
    ) async throws -> InferenceResponse {
        let started = ContinuousClock.now
        let queue = queues[deployment.name]
        do {
            if let queue {
                let priority = context.principal?.key.priority ?? .normal
                try await queue.acquire(priority: priority, timeoutMs: queueConfig.timeoutMs(priority))
            }
        } catch {
            status?.finish(.neutral)
            record(deployment, error: error, since: started, context: context)
            if let failure = error as? SluiceError { throw QueueWaitExpired(error: failure) }
            throw error
        }
        do {
            let response: InferenceResponse
            switch request.body {
            case .embeddings(var upstream):
                upstream.model = deployment.upstreamModel
                let result = try await embed(upstream, on: deployment, context: context)
                queue?.release()
                status?.finish(.success(latency: ContinuousClock.now - started, streamed: false))
                let usage = Usage(promptTokens: result.usage.promptTokens, completionTokens: 0)
                context.ledger.charge(usage, deployment: deployment.name, price: deployment.price)
                response = .embeddings(result)
            case .chat(var upstream) where upstream.isStreaming:
                upstream.model = deployment.upstreamModel
                let (first, rest) = try await firstEvent(upstream, on: deployment, context: context)
                let latency = ContinuousClock.now - started
                let charge = context.ledger.openCharge(
                    deployment: deployment.name, price: deployment.price, promptEstimate: TokenEstimator.promptTokens(of: upstream))
                if let first { charge.observe(first.summary) }
                let tail = rest.observed(
                    onEvent: { charge.observe($0.summary) },
                    onFinish: { outcome in
                        queue?.release()
                        switch outcome {
                        case .finished: status?.finish(.success(latency: latency, streamed: true))
                        case .cancelled: status?.finish(.neutral)
                        case .failed: status?.finish(.failure)
                        }
                    })
                response = .stream(PeekedStream(first: first, rest: tail).chatStream)
            case .chat(var upstream):
                upstream.model = deployment.upstreamModel
                let result = try await complete(upstream, on: deployment, context: context)
                queue?.release()
                status?.finish(.success(latency: ContinuousClock.now - started, streamed: false))
                context.ledger.charge(Self.usage(of: result, for: upstream), deployment: deployment.name, price: deployment.price)
                response = .completion(result)
            }
            let latency = (ContinuousClock.now - started).milliseconds
            context.facts.update(\.route) {
                $0.deployment = deployment.name
                $0.provider = deployment.providerName
                $0.attempts.append(.init(deployment: deployment.name, status: 200, errorCode: nil, latencyMs: latency))
            }
            return response
        } catch {
            queue?.release()
            if let failure = error as? SluiceError {
                switch failure.code {
                case .upstreamRateLimited: status?.finish(.rateLimited(retryAfter: failure.retryAfter.map { .seconds($0) }))
                case .upstreamError, .upstreamBadResponse, .upstreamUnavailable, .upstreamTimeout: status?.finish(.failure)
                default: status?.finish(.neutral)
                }
            } else {
                status?.finish(.neutral)
            }
            record(deployment, error: error, since: started, context: context)
            throw error
        }
    }

    /// An answer's usage as the upstream reported it, else estimated from the prompt and the answer's text.
    static func usage(of result: ChatResult, for request: ChatCompletionRequest) -> Usage {
        if let usage = result.usage { return usage }
        let output = ((try? result.answerText()) ?? []).reduce(0) { total, choice in
            total + (choice.content?.utf8.count ?? 0) + choice.toolCalls.reduce(0) { $0 + $1.name.utf8.count + $1.arguments.utf8.count }
        }
        return Usage(promptTokens: TokenEstimator.promptTokens(of: request), completionTokens: (output + 3) / 4)
    }

    /// A whole completion, under the model entry's own timeouts when it has them.
    private func complete(_ request: ChatCompletionRequest, on deployment: Deployment, context: InferenceContext) async throws -> ChatResult {
        let provider = try Self.chatProvider(deployment)
        guard let timeouts = deployment.timeouts else { return try await provider.complete(request, context: context) }
        let limit = min(timeouts.firstTokenMs, timeouts.totalMs)
        let name = deployment.name
        return try await withTimeLimit(.milliseconds(limit), timeoutError: { Self.timeout(name, limit) }) {
            try await provider.complete(request, context: context)
        }
    }

    /// Embeddings, under the model entry's total timeout when it has one.
    private func embed(_ request: EmbeddingsRequest, on deployment: Deployment, context: InferenceContext) async throws -> EmbeddingsResponse {
        guard let provider = deployment.embeddingProvider else {
            throw SluiceError(.invalidValue, "The model '\(deployment.name)' is a chat model; use /v1/chat/completions.", param: "model")
        }
        guard let timeouts = deployment.timeouts else { return try await provider.embed(request, context: context) }
        let name = deployment.name
        return try await withTimeLimit(.milliseconds(timeouts.totalMs), timeoutError: { Self.timeout(name, timeouts.totalMs) }) {
            try await provider.embed(request, context: context)
        }
    }

    private static func chatProvider(_ deployment: Deployment) throws -> any ChatProvider {
        guard let provider = deployment.chatProvider else {
            throw SluiceError(.invalidValue, "The model '\(deployment.name)' is an embedding model; use /v1/embeddings.", param: "model")
        }
        return provider
    }

    /// Starts a stream and waits for its first event, so that a failure up to then can still fall
    /// back; under the model entry's first-token timeout when it has one.
    private func firstEvent(
        _ request: ChatCompletionRequest, on deployment: Deployment, context: InferenceContext
    ) async throws -> (ChatStreamEvent?, ChatStream) {
        let provider = try Self.chatProvider(deployment)
        let start: @Sendable () async throws -> (ChatStreamEvent?, IteratorHandle) = {
            let stream = try await provider.stream(request, context: context)
            let handle = IteratorHandle(stream.makeAsyncIterator())
            return (try await handle.next(), handle)
        }
        guard let timeouts = deployment.timeouts else {
            let (first, handle) = try await start()
            return (first, ChatStream(HandleSequence(handle: handle, idle: nil, deadline: nil, name: deployment.name)))
        }
        let name = deployment.name
        let began = ContinuousClock.now
        let (first, handle) = try await withTimeLimit(
            .milliseconds(min(timeouts.firstTokenMs, timeouts.totalMs)), timeoutError: { Self.timeout(name, timeouts.firstTokenMs) }, start)
        let rest = HandleSequence(handle: handle, idle: .milliseconds(timeouts.idleMs), deadline: began + .milliseconds(timeouts.totalMs), name: name)
        return (first, ChatStream(rest))
    }

    static func timeout(_ deployment: String, _ ms: Int) -> SluiceError {
        SluiceError(.upstreamTimeout, "Deployment '\(deployment)' did not answer within \(ms) ms")
    }

    private func record(_ deployment: Deployment, error: any Error, since: ContinuousClock.Instant, context: InferenceContext) {
        let ms = (ContinuousClock.now - since).milliseconds
        let failure = error as? SluiceError
        let status = failure.map { $0.upstreamStatus ?? $0.httpStatus } ?? 499
        let code = failure?.code.wireValue ?? "cancelled"
        context.facts.update(\.route) { $0.attempts.append(.init(deployment: deployment.name, status: status, errorCode: code, latencyMs: ms)) }
    }
}

/// An iterator handed from the task that peeked it to the one that drains it; only one task
/// uses it at a time (the peek finishes before the response is returned).
final class IteratorHandle: @unchecked Sendable {
    private var iterator: ChatStream.AsyncIterator

    init(_ iterator: ChatStream.AsyncIterator) { self.iterator = iterator }

    func next() async throws -> ChatStreamEvent? { try await iterator.next() }
}

/// The rest of a peeked stream, with the model entry's idle and total timeouts when it has them.
struct HandleSequence: AsyncSequence, Sendable {
    typealias Element = ChatStreamEvent
    let handle: IteratorHandle
    let idle: Duration?
    let deadline: ContinuousClock.Instant?
    let name: String

    func makeAsyncIterator() -> Iterator { Iterator(owner: self) }

    struct Iterator: AsyncIteratorProtocol {
        let owner: HandleSequence

        mutating func next() async throws -> ChatStreamEvent? {
            guard let idle = owner.idle, let deadline = owner.deadline else { return try await owner.handle.next() }
            let remaining = deadline - .now
            guard remaining > .zero else {
                throw SluiceError(.upstreamTimeout, "Deployment '\(owner.name)' did not finish within its total_ms")
            }
            let handle = owner.handle
            let name = owner.name
            let limit = Swift.min(idle, remaining)
            return try await withTimeLimit(limit, timeoutError: {
                SluiceError(.upstreamTimeout, "Deployment '\(name)' stalled for more than \(limit.milliseconds) ms")
            }) { try await handle.next() }
        }
    }
}

/// A stream whose first event was already read: that event, then the rest.
struct PeekedStream: AsyncSequence, Sendable {
    typealias Element = ChatStreamEvent
    let first: ChatStreamEvent?
    let rest: ChatStream

    var chatStream: ChatStream { ChatStream(self) }

    func makeAsyncIterator() -> Iterator { Iterator(first: first, rest: rest.makeAsyncIterator()) }

    struct Iterator: AsyncIteratorProtocol {
        var first: ChatStreamEvent?
        var rest: ChatStream.AsyncIterator

        mutating func next() async throws -> ChatStreamEvent? {
            if let event = first {
                first = nil
                return event
            }
            return try await rest.next()
        }
    }
}

