import Logging
import NIOCore
import Synchronization

/// What travels with one request through the pipeline: its id, logger, deadline, the client's
/// `x-` headers, the facts stages learn as they go, and its usage ledger.
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
    /// What the stages learn about this request (who served it, the cache's verdict, findings).
    public let facts: RequestFacts
    /// What this request spends and holds, settled once when it is over.
    public let ledger: UsageLedger
    /// Who is calling (nil when `auth.enabled` is off).
    public var principal: Principal?
    /// The event loop of the client's connection: upstream calls made on it avoid thread hops.
    public var eventLoop: (any EventLoop)?
    /// Which upstream attempt of this request a provider is serving (0 for the first).
    public var attempt: Int = 0
    /// The client's request in a provider's own API (a Messages API request), which that
    /// provider sends as it came when no stage changed what it was translated to.
    public var nativeRequest: NativeRequest? {
        get { nativeRequestBox?.value }
        set { nativeRequestBox = newValue.map(NativeRequestBox.init) }
    }
    /// Held by reference: the context is copied into every stage's task frame, and most requests
    /// have no native form.
    private var nativeRequestBox: NativeRequestBox?

    public init(
        requestID: String,
        endpoint: String,
        logger: Logger,
        headers: [String: String] = [:],
        deadline: ContinuousClock.Instant? = nil,
        receivedAtUnix: Double,
        costMultiplier: Double = 1
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
        self.facts = RequestFacts()
        self.ledger = UsageLedger(costMultiplier: costMultiplier)
    }

    /// Time since the request arrived.
    public var elapsed: Duration { ContinuousClock.now - startedAt }
}

/// One call to an upstream deployment, as the audit log keeps it.
public struct UpstreamAttempt: Sendable, Hashable, Codable {
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

/// Whether and how the response cache answered a request.
public enum CacheStatus: String, Sendable, Hashable, Codable {
    /// The cache stage never saw the request (it failed earlier, or the endpoint has no cache).
    case none
    /// No cache rule applies, or the caller asked for no cache.
    case off
    case miss
    case hit
    case semanticHit = "semantic-hit"

    /// Whether the answer came from the cache (no upstream call, nothing spent).
    public var served: Bool { self == .hit || self == .semanticHit }
}

/// What routing and the upstream calls learned: who served the request and every attempt.
public struct RouteFacts: Sendable {
    /// The deployment that answered.
    public var deployment: String?
    /// Its provider's name in the config.
    public var provider: String?
    /// Every upstream call, failed ones included, in order.
    public var attempts: [UpstreamAttempt] = []
    /// The complexity classifier's score, when an alias routed by complexity.
    public var complexityScore: Double?
}

/// What the cache stage did.
public struct CacheFacts: Sendable {
    public var status: CacheStatus = .none
    /// The similarity of the entry a semantic hit served.
    public var similarity: Double?
    /// Tokens a hit saved.
    public var tokensSaved: Int?
}

/// What the guardrails applied and found (never the matched values).
public struct GuardrailFacts: Sendable {
    /// The policy applied, if any.
    public var policy: String?
    public var events: [GuardrailEvent] = []
}

/// Which flow and version a request ran, set by the flow stage.
public struct FlowFacts: Sendable {
    public var name: String?
    public var version: Int?
    /// Whether the flow's output is a JSON document (it has an output schema).
    public var structuredOutput = false
    /// The conversation the request continued (set by the conversation stage once it is found).
    public var conversation: String?
    /// The passages its `retrieval:` put in the prompt, as numbered there.
    public var passages: [RetrievedPassage] = []
    /// Whether retrieval ran (and found nothing above `min_score`, when `passages` is empty).
    public var retrieved = false
    /// The answer's support by its passages (`grounding:`), once checked.
    public var grounding: GroundingOutcome?
}

/// The experiment a request took part in, and its variant.
public struct ExperimentFacts: Sendable {
    public var name: String?
    public var variant: String?
}

/// What the answer looked like as it left the pipeline.
public struct AnswerFacts: Sendable {
    public var timeToFirstToken: Duration?
    public var finishReason: String?
}

/// The request and its answer as the audit log keeps them, when it keeps bodies.
public struct CapturedBodies: Sendable {
    /// The messages as the client sent them.
    public var messages: [ChatMessage]?
    /// The whole answer, undecoded.
    public var result: ChatResult?
    /// A stream's answer: the first choice's text, gathered as the events passed (nil when no
    /// event carried output). Text, not the events: a held stream would otherwise keep every
    /// event's bytes, and the network buffers they are slices of, until it ends.
    public var streamText: String?
}

/// The facts the stages learn about one request, each part written by the stage that owns it
/// (`flow` by the flow stage, `route` by routing and the invoker, `cache` by the cache stage, `guardrails` by the
/// guardrail stage, `answer` and `bodies` by the record stage, `rateLimitHeaders` by admission)
/// and read when the request is recorded and its response headers are written. Thread-safe: a
/// stream's consumer and the stage that started it may touch it from different tasks.
public final class RequestFacts: Sendable {
    public struct Parts: Sendable {
        public var flow = FlowFacts()
        /// The experiment and variant the request was assigned (set by the experiment stage).
        public var experiment = ExperimentFacts()
        public var route = RouteFacts()
        public var cache = CacheFacts()
        public var guardrails = GuardrailFacts()
        public var answer = AnswerFacts()
        public var bodies = CapturedBodies()
        /// `x-ratelimit-*` headers for the answer.
        public var rateLimitHeaders: [(String, String)] = []
        /// The OpenTelemetry trace id, when the request is traced.
        public var traceID: String?
    }

    // Inlinable so that a stage's key path is resolved where it is written, not looked up at run time.
    @usableFromInline let parts = Mutex(Parts())

    public init() {}

    /// Changes one part under the lock.
    @inlinable
    public func update<Part: Sendable, T: Sendable>(_ part: WritableKeyPath<Parts, Part>, _ body: (inout Part) throws -> T) rethrows -> T {
        try parts.withLock { try body(&$0[keyPath: part]) }
    }

    /// A copy of one part as it is now.
    @inlinable
    public subscript<Part: Sendable>(_ part: KeyPath<Parts, Part>) -> Part { parts.withLock { $0[keyPath: part] } }

    /// A copy of every part as it is now.
    @inlinable
    public var snapshot: Parts { parts.withLock { $0 } }
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

/// A request as the client wrote it in one provider's API, with the chat request it was
/// translated to: a provider of that API sends the original (every field, those the chat
/// format cannot carry included) as long as the pipeline left the translation alone.
final class NativeRequestBox: Sendable {
    let value: NativeRequest
    init(_ value: NativeRequest) { self.value = value }
}

public struct NativeRequest: Sendable {
    public enum API: Sendable, Hashable {
        case anthropicMessages
    }

    public var api: API
    public var body: JSONValue
    public var translated: ChatCompletionRequest

    public init(api: API, body: JSONValue, translated: ChatCompletionRequest) {
        self.api = api
        self.body = body
        self.translated = translated
    }

    /// Whether `request` is the translation as it was, but for what routing and the provider
    /// always set (the upstream's model name, streaming).
    public func isUntouched(_ request: ChatCompletionRequest) -> Bool {
        var request = request
        request.model = translated.model
        request.stream = translated.stream
        request.streamOptions = translated.streamOptions
        return request == translated
    }
}
