import Logging
import NIOCore
import Synchronization

/// What travels with one request through the pipeline: its id, logger, deadline, the client's
/// `x-` headers, and a `RequestTrace` that stages annotate as they go.
public struct InferenceContext: Sendable {
    /// The request's id (`x-request-id`), kept from the client when it sent one.
    public let requestID: String
    /// When the request arrived, on the monotonic clock (for latencies).
    public let startedAt: ContinuousClock.Instant
    /// When the request arrived, as Unix time in seconds (for records).
    public let receivedAtUnix: Double
    /// The endpoint the request came in on, e.g. `chat.completions`.
    public let endpoint: String
    /// A logger carrying the request id in its metadata.
    public var logger: Logger
    /// The point after which the request is abandoned with 504.
    public var deadline: ContinuousClock.Instant?
    /// Client headers beginning with `x-`, lower-cased names (used by the simulated provider's
    /// per-request script and by later stages).
    public let headers: [String: String]
    /// Mutable annotations shared by every stage of this request.
    public let trace: RequestTrace
    /// Who is calling (nil when `auth.enabled` is off).
    public var principal: Principal?
    /// The event loop of the client's connection: upstream calls made on it avoid thread hops.
    public var eventLoop: (any EventLoop)?
    /// Which upstream attempt of this request a provider is serving (0 for the first).
    public var attempt: Int = 0

    public init(
        requestID: String,
        endpoint: String,
        logger: Logger,
        headers: [String: String] = [:],
        deadline: ContinuousClock.Instant? = nil,
        receivedAtUnix: Double
    ) {
        self.requestID = requestID
        self.startedAt = .now
        self.receivedAtUnix = receivedAtUnix
        self.endpoint = endpoint
        var logger = logger
        logger[metadataKey: "request_id"] = .string(requestID)
        self.logger = logger
        self.headers = headers
        self.deadline = deadline
        self.trace = RequestTrace()
    }

    /// Time since the request arrived.
    public var elapsed: Duration { ContinuousClock.now - startedAt }
}

/// The facts stages learn about one request (which deployment served it, usage, time to first
/// token, attempts), recorded at the end. Thread-safe: a stream's consumer and the stage that
/// started it may touch it from different tasks.
public final class RequestTrace: Sendable {
    /// One call to an upstream deployment.
    public struct Attempt: Sendable, Hashable, Codable {
        public var deployment: String
        public var status: Int
        public var errorCode: String?
        public var latencyMs: Double

        enum CodingKeys: String, CodingKey {
            case deployment, status
            case errorCode = "error_code"
            case latencyMs = "latency_ms"
        }

        public init(deployment: String, status: Int, errorCode: String?, latencyMs: Double) {
            self.deployment = deployment
            self.status = status
            self.errorCode = errorCode
            self.latencyMs = latencyMs
        }
    }

    /// The annotations themselves.
    public struct Values: Sendable {
        public var modelRequested: String = ""
        public var deployment: String?
        public var provider: String?
        /// The served deployment's price, for the cost.
        public var price: Price?
        public var usage: Usage?
        public var costUSD: Double?
        public var timeToFirstToken: Duration?
        public var finishReason: String?
        public var cacheStatus: String = "none"
        public var stream: Bool = false
        public var attempts: [Attempt] = []
        public var keyID: String = ""
        public var teamID: String = ""
        /// What the guardrails found and did (never the matched values).
        public var guardrailEvents: [GuardrailEvent] = []
        /// The guardrail policy applied, if any.
        public var guardrailPolicy: String?
        /// The complexity classifier's score, when an alias routed by complexity.
        public var routingScore: Double?
        /// The similarity of the entry a semantic cache hit served.
        public var cacheSimilarity: Double?
        /// Tokens a cache hit saved.
        public var tokensSaved: Int?
        /// `x-ratelimit-*` headers for the answer, from the admission stage.
        public var rateLimitHeaders: [(String, String)] = []
        /// The messages as the client sent them, when the audit log keeps bodies.
        public var requestMessages: [ChatMessage]?
        /// The OpenTelemetry trace id, when tracing is on.
        public var traceID: String?
        /// The whole answer, undecoded, when the audit log keeps bodies.
        public var responseResult: ChatResult?
        /// A stream's events that carried output, undecoded, when the audit log keeps bodies.
        public var responseEvents: [ChatStreamEvent]?
    }

    private let state = Mutex(Values())
    // Run once with the final values; nil once run.
    private let settlements = Mutex<[@Sendable (Values) -> Void]?>([])

    public init() {}

    /// Runs `body` once the request's usage and cost are final (see `settle()`).
    public func onSettle(_ body: @escaping @Sendable (Values) -> Void) {
        let ran = settlements.withLock { list -> Bool in
            guard list != nil else { return true }
            list!.append(body)
            return false
        }
        if ran { body(values) }
    }

    /// Runs the `onSettle` hooks, once: the recorder calls it when a request is over. Should that
    /// never happen (a response dropped unread), the trace's end runs them, so reservations such
    /// as concurrency slots are always given back.
    public func settle() {
        let hooks = settlements.withLock { list -> [@Sendable (Values) -> Void] in
            defer { list = nil }
            return list ?? []
        }
        guard !hooks.isEmpty else { return }
        let v = values
        for hook in hooks { hook(v) }
    }

    deinit { settle() }

    /// Reads or changes the annotations under the lock.
    public func withValues<T>(_ body: (inout Values) throws -> T) rethrows -> T {
        try state.withLock { try body(&$0) }
    }

    /// A copy of the annotations as they are now.
    public var values: Values { state.withLock { $0 } }
}

/// One guardrail decision on a request: which direction, which check, what type, where (code
/// points into the message it was found in), how sure, and what was done. Never the value.
public struct GuardrailEvent: Sendable, Hashable, Codable {
    public var direction: String
    public var check: String
    public var type: String
    /// The message's index for input findings; the choice's index for output findings.
    public var index: Int
    public var start: Int
    public var end: Int
    public var score: Double
    public var action: String

    public init(direction: String, check: String, type: String, index: Int, start: Int, end: Int, score: Double, action: String) {
        self.direction = direction
        self.check = check
        self.type = type
        self.index = index
        self.start = start
        self.end = end
        self.score = score
        self.action = action
    }
}
