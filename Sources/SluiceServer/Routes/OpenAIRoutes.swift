import Foundation
import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import SluiceCore
import SluiceObservability

/// `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`: OpenAI's wire format in and out.
struct OpenAIRoutes: Sendable {
    let pipeline: Pipeline
    let catalog: ModelCatalog
    /// Records requests refused before the pipeline (a body that does not decode or validate).
    let recorder: AuditRecorder
    let body: RequestBodyReader
    let startedAt: Int
    /// `server.request_timeout_s`: the longest a request (a stream included) may take.
    let requestTimeout: TimeAmount
    /// Cancels a stream whose client goes away.
    let cancellers: ConnectionCancellers

    func register(on router: Router<SluiceRequestContext>) {
        router.post("/v1/chat/completions") { request, context in try await chatCompletions(request, context: context) }
        router.post("/v1/embeddings") { request, context in try await embeddings(request, context: context) }
        router.post("/v1/flows/{name}/run") { request, context in
            try await runFlow(request, name: context.parameters.get("name") ?? "", context: context)
        }
        router.get("/v1/models") { _, _ in try models() }
        router.get("/v1/models/{id}") { _, context in try model(context.parameters.get("id") ?? "") }
    }

    func makeContext(_ request: Request, _ context: SluiceRequestContext, endpoint: String) -> InferenceContext {
        var inference = InferenceContext(
            requestID: context.requestID, endpoint: endpoint, logger: context.logger, headers: request.extensionHeaders,
            receivedAtUnix: Date().timeIntervalSince1970)
        inference.eventLoop = context.channel?.eventLoop
        inference.principal = context.principal
        // The same bound `server.request_timeout_s` enforces, for stages that plan retries.
        inference.deadline = .now + .nanoseconds(requestTimeout.nanoseconds)
        return inference
    }

    // A connection's task keeps the memory of the deepest frames it ever ran (its allocator's
    // slabs) for as long as the connection lasts, a held stream's included. So the route's own
    // frame stays small: reading the request and framing the answer are functions of their own.
    func chatCompletions(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let inference = makeContext(request, context, endpoint: "chat.completions")
        let call = try await chatCall(request, inference: inference)
        let response = try await run(call.request, inference: inference, deadline: call.deadline)
        return try chatAnswer(response, call: call, inference: inference, context: context)
    }

    /// A chat request read, validated and made the pipeline's.
    final class ChatCall: Sendable {
        let request: InferenceRequest
        let includeUsage: Bool
        let deadline: NIODeadline

        init(request: InferenceRequest, includeUsage: Bool, deadline: NIODeadline) {
            self.request = request
            self.includeUsage = includeUsage
            self.deadline = deadline
        }
    }

    @inline(never)
    func chatCall(_ request: Request, inference: InferenceContext) async throws -> ChatCall {
        let chat: ChatCompletionRequest
        do {
            chat = try await body.decode(ChatCompletionRequest.self, from: request, direct: ChatCompletionRequest.init(parsed:))
        } catch {
            recorder.finish(inference, model: "", stream: false, outcome: .failed(error))
            throw error
        }
        return try chatCall(chat, inference: inference)
    }

    @inline(never)
    func chatCall(_ chat: ChatCompletionRequest, inference: InferenceContext) throws -> ChatCall {
        var chat = chat
        do {
            try RequestValidation.validate(chat)
        } catch {
            recorder.finish(inference, model: "", stream: false, outcome: .failed(error))
            throw error
        }
        let deadline = NIODeadline.now() + requestTimeout
        // `conversation` (an id, or {"id"}) is Sluice's: it is not sent upstream.
        let conversation = chat.extra.removeValue(forKey: "conversation")
        var inferenceRequest = try self.inferenceRequest(chat, inference: inference)
        if let conversation {
            guard let id = conversation.stringValue ?? conversation["id"]?.stringValue, !id.isEmpty else {
                let error = SluiceError(.invalidType, "conversation must be a conversation id (or {\"id\": …}).", param: "conversation")
                recorder.finish(inference, model: chat.model, stream: chat.isStreaming, outcome: .failed(error))
                throw error
            }
            inferenceRequest.conversation = id
        }
        return ChatCall(request: inferenceRequest, includeUsage: chat.includeUsageInStream, deadline: deadline)
    }

    @inline(never)
    func chatAnswer(_ response: InferenceResponse, call: ChatCall, inference: InferenceContext, context: SluiceRequestContext) throws -> Response {
        let headers = Self.answerHeaders(inference)
        switch response {
        case .embeddings:
            throw SluiceError(.internalError, "The chat pipeline answered with embeddings.")
        case .completion(let result):
            return Self.jsonAnswer(try result.bytes(), headers: headers, inference: inference)
        case .stream(let stream):
            let includeUsage = call.includeUsage
            return eventStream(headers: headers, inference: inference, context: context, deadline: call.deadline) { writer in
                for try await event in stream {
                    guard let event = try Self.forClient(event, includeUsage: includeUsage) else { continue }
                    try await writer.write(SSEEncoder.event(event))
                }
            }
        }
    }

    /// A whole answer: JSON, with what it cost.
    static func jsonAnswer(_ bytes: ByteBuffer, headers: HTTPFields, inference: InferenceContext) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        if let cost = inference.ledger.settlement?.costUSD { headers[.sluiceCost] = usd(cost) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: bytes))
    }

    /// The pipeline's request for a chat request from any API; a `model: "flow:NAME"` runs the
    /// flow with the last user message as its input.
    func inferenceRequest(_ chat: ChatCompletionRequest, inference: InferenceContext) throws -> InferenceRequest {
        var inferenceRequest = InferenceRequest(chat: chat)
        if chat.model.hasPrefix("flow:") {
            guard let text = Self.flowInputText(chat) else {
                let error = SluiceError(.missingParameter, "A flow called as a model takes its input from the last user message; there is none.", param: "messages")
                recorder.finish(inference, model: chat.model, stream: chat.isStreaming, outcome: .failed(error))
                throw error
            }
            inferenceRequest.flow = FlowRun(name: String(chat.model.dropFirst("flow:".count)), input: .null, text: text)
        }
        return inferenceRequest
    }

    /// Runs the pipeline within the request's deadline.
    ///
    /// A stream runs it in a child task. A task keeps the memory of its deepest frames (its
    /// allocator's slabs) until it ends, and a held stream keeps its connection's task alive for
    /// as long as it lasts: in a child task, the pipeline's frames are freed once the stream has
    /// started, and the connection keeps only those that write the events.
    func run(_ request: InferenceRequest, inference: InferenceContext, deadline: NIODeadline) async throws -> InferenceResponse {
        let timeout = requestTimeout
        let pipeline = pipeline
        return try await withDeadline(deadline, timeoutError: { Self.timedOut(timeout) }) {
            guard request.isStreaming else { return try await pipeline.run(request, context: inference) }
            async let response = pipeline.run(request, context: inference)
            return try await response
        }
    }

    /// A server-sent-events response: `body` writes the events within the request's deadline,
    /// then `[DONE]` follows; the stream is cancelled if the client goes away, and an error after
    /// the head was sent travels as a last event.
    /// `end` closes a stream that finished (OpenAI's `[DONE]`; the Responses and Messages APIs
    /// send none), `failure` frames an error in the API's own event shape.
    func eventStream(
        headers: HTTPFields, inference: InferenceContext, context: SluiceRequestContext, deadline: NIODeadline,
        end: ByteBuffer? = SSEEncoder.done, failure: @escaping @Sendable (SluiceError) -> ByteBuffer = SSEEncoder.errorEvent,
        // `@concurrent` like Hummingbird's own body closure: the writer is not Sendable, and its
        // `write` is Hummingbird's (concurrent) requirement.
        _ body: @escaping @concurrent @Sendable (inout any ResponseBodyWriter) async throws -> Void
    ) -> Response {
        var headers = headers
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let channel = context.channel
        let logger = inference.logger
        let timeout = requestTimeout
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                // From here on only this handle writes (the events, the end, the finish).
                var out: any ResponseBodyWriter = writer
                try await cancellers.run(on: channel) { @concurrent in
                    do {
                        try await withDeadline(deadline, timeoutError: { Self.timedOut(timeout) }) { @concurrent in try await body(&out) }
                        if let end { try await out.write(end) }
                    } catch let error as SluiceError {
                        // The head is sent: the error can only travel as an event.
                        try await out.write(Self.failureEvent(error, failure: failure, logger: logger))
                    }
                }
                try await out.finish(nil)
            })
    }

    /// The event that ends a stream that failed after it started. Out of line: the frame that
    /// writes a stream's events lives as long as the stream.
    @inline(never)
    static func failureEvent(_ error: SluiceError, failure: (SluiceError) -> ByteBuffer, logger: Logger) -> ByteBuffer {
        logger.debug("stream failed after it started", metadata: ["error": "\(error)"])
        return failure(error)
    }

    /// The last user message's text: a `model: "flow:NAME"` request's input.
    static func flowInputText(_ chat: ChatCompletionRequest) -> String? {
        chat.messages.last { $0.role == .user }?.text
    }

    /// What Sluice says about how it answered: the deployment, the cache's verdict, the
    /// attempts, and the caller's `x-ratelimit-*` headers as admission left them.
    static func answerHeaders(_ inference: InferenceContext) -> HTTPFields {
        let facts = inference.facts.snapshot
        var headers: HTTPFields = [:]
        // Room for everything below, the six `x-ratelimit-*` and what the answer adds (content type,
        // cost), so that the fields are not copied as they grow.
        headers.reserveCapacity(14)
        if let deployment = facts.route.deployment { headers[.sluiceModel] = deployment }
        if let variant = facts.experiment.variant, let name = facts.experiment.name {
            headers[.sluiceVariant] = variant
            headers[.sluiceExperiment] = name
        }
        headers[.sluiceCache] = facts.cache.status == .none ? "off" : facts.cache.status.rawValue
        if let similarity = facts.cache.similarity { headers[.sluiceCacheSimilarity] = String((similarity * 10_000).rounded() / 10_000) }
        // A cache hit made no upstream call.
        headers[.sluiceAttempts] = String(facts.cache.status.served ? facts.route.attempts.count : max(1, facts.route.attempts.count))
        for (name, value) in facts.rateLimitHeaders {
            if let field = Self.rateLimitFieldNames[name] ?? HTTPField.Name(name) { headers[field] = value }
        }
        return headers
    }

    /// The `x-ratelimit-*` names, made once (a name is validated when made).
    private static let rateLimitFieldNames: [String: HTTPField.Name] = Dictionary(
        uniqueKeysWithValues: ["limit-requests", "remaining-requests", "reset-requests", "limit-tokens", "remaining-tokens", "reset-tokens"]
            .map { ("x-ratelimit-" + $0, HTTPField.Name("x-ratelimit-" + $0)!) })

    /// A cost with 8 decimals (`0.00001234`), without Foundation's `String(format:)`.
    static func usd(_ cost: Double) -> String {
        guard cost.isFinite, cost >= 0, cost < 1e10 else { return cost.isFinite ? String(cost) : "0.00000000" }
        let units = UInt64((cost * 1e8).rounded())
        let fraction = String(units % 100_000_000)
        return String(units / 100_000_000) + "." + String(repeating: "0", count: 8 - fraction.count) + fraction
    }

    static func timedOut(_ limit: TimeAmount) -> SluiceError {
        SluiceError(.upstreamTimeout, "The request took longer than \(limit.nanoseconds / 1_000_000) ms (server.request_timeout_s).")
    }

    /// Sluice always asks upstreams for usage; a client that did not ask does not get it.
    static func forClient(_ event: ChatStreamEvent, includeUsage: Bool) throws -> ChatStreamEvent? {
        guard !includeUsage, event.summary.usage != nil else { return event }
        if event.summary.choiceCount == 0 { return nil }
        var event = event
        try event.modify { $0.usage = nil }
        return event
    }

    func embeddings(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let inference = makeContext(request, context, endpoint: "embeddings")
        let embeddingsRequest: EmbeddingsRequest
        do {
            embeddingsRequest = try await body.decode(EmbeddingsRequest.self, from: request)
            try RequestValidation.validate(embeddingsRequest)
        } catch {
            recorder.finish(inference, model: "", stream: false, outcome: .failed(error))
            throw error
        }
        let timeout = requestTimeout
        let response = try await withDeadline(NIODeadline.now() + requestTimeout, timeoutError: { Self.timedOut(timeout) }) {
            try await pipeline.run(InferenceRequest(embeddings: embeddingsRequest), context: inference)
        }
        guard case .embeddings(var result) = response else {
            throw SluiceError(.internalError, "The embeddings pipeline answered with a chat completion.")
        }
        // As for chat completions: `model` names the model that answered (the upstream's name,
        // as OpenAI names a dated snapshot); `x-sluice-model` names the deployment.
        if result.model.isEmpty { result.model = embeddingsRequest.model }
        if embeddingsRequest.encodingFormat == .base64 {
            for i in result.data.indices {
                if case .float(let v) = result.data[i].embedding { result.data[i].embedding = .base64(Self.base64(v)) }
            }
        }
        var headers = Self.answerHeaders(inference)
        headers[.contentType] = "application/json"
        headers[.sluiceCache] = nil
        if let cost = inference.ledger.settlement?.costUSD { headers[.sluiceCost] = Self.usd(cost) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: try JSONCoding.encode(result)))
    }

    /// Little-endian float32 bytes in base64, as OpenAI's `encoding_format: base64` has them.
    static func base64(_ vector: [Float]) -> String {
        var data = Data(capacity: vector.count * 4)
        for v in vector {
            withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) }
        }
        return data.base64EncodedString()
    }

    func models() throws -> Response {
        let list = ModelList(data: catalog.listing.map { .init(id: $0.name, created: startedAt, ownedBy: $0.provider) })
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(list)))
    }

    func model(_ id: String) throws -> Response {
        guard let entry = catalog.listing.first(where: { $0.name == id }) else { throw catalog.notFound(id) }
        let model = ModelList.Model(id: entry.name, created: startedAt, ownedBy: entry.provider)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(model)))
    }
}
