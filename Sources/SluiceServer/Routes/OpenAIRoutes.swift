import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import NIOPosix
import SluiceCore
import SluiceObservability

/// `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`: OpenAI's wire format in and out.
struct OpenAIRoutes: Sendable {
    let pipeline: Pipeline
    let catalog: ModelCatalog
    let recorder: RequestRecorder
    let admission: AdmissionControl
    let body: RequestBodyReader
    let startedAt: Int
    /// `server.request_timeout_s`: the longest a request (a stream included) may take.
    let requestTimeout: TimeAmount
    /// Cancels a stream whose client goes away.
    let cancellers: ConnectionCancellers

    func register(on router: Router<SluiceRequestContext>) {
        router.post("/v1/chat/completions") { request, context in try await chatCompletions(request, context: context) }
        router.post("/v1/embeddings") { request, context in try await embeddings(request, context: context) }
        router.get("/v1/models") { _, _ in try models() }
        router.get("/v1/models/{id}") { _, context in try model(context.parameters.get("id") ?? "") }
    }

    func makeContext(_ request: Request, _ context: SluiceRequestContext, endpoint: String) -> InferenceContext {
        var inference = InferenceContext(
            requestID: context.requestID, endpoint: endpoint, logger: context.logger, headers: request.extensionHeaders,
            receivedAtUnix: Date().timeIntervalSince1970)
        inference.eventLoop = context.channel?.eventLoop
        if let principal = context.principal {
            inference.principal = principal
            inference.trace.withValues {
                $0.keyID = principal.key.id
                $0.teamID = principal.team?.id ?? ""
            }
        }
        // The same bound `server.request_timeout_s` enforces, for stages that plan retries.
        inference.deadline = .now + .nanoseconds(requestTimeout.nanoseconds)
        return inference
    }

    func chatCompletions(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let inference = makeContext(request, context, endpoint: "chat.completions")
        let chat: ChatCompletionRequest
        do {
            chat = try await body.decode(ChatCompletionRequest.self, from: request, direct: ChatCompletionRequest.init(parsed:))
            try RequestValidation.validate(chat)
        } catch {
            recorder.finish(inference, outcome: .failed(error))
            throw error
        }
        let deadline = NIODeadline.now() + requestTimeout
        let timeout = requestTimeout
        let response = try await withDeadline(deadline, timeoutError: { Self.timedOut(timeout) }) {
            try await pipeline.run(InferenceRequest(chat: chat), context: inference)
        }
        var headers: HTTPFields = [:]
        if let deployment = inference.trace.values.deployment { headers[.sluiceModel] = deployment }
        let values = inference.trace.values
        headers[.sluiceCache] = values.cacheStatus == "none" ? "off" : values.cacheStatus
        if let similarity = values.cacheSimilarity { headers[.sluiceCacheSimilarity] = String((similarity * 10_000).rounded() / 10_000) }
        // A cache hit made no upstream call.
        headers[.sluiceAttempts] = String(values.tokensSaved != nil ? values.attempts.count : max(1, values.attempts.count))
        Self.addRateLimitHeaders(inference, to: &headers)
        switch response {
        case .completion(let result):
            headers[.contentType] = "application/json"
            if let cost = inference.trace.values.costUSD { headers[.sluiceCost] = Self.usd(cost) }
            let bytes = try result.bytes()
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: bytes))
        case .stream(let stream):
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            let includeUsage = chat.includeUsageInStream
            let channel = context.channel
            let logger = inference.logger
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    try await cancellers.run(on: channel) {
                        do {
                            try await withDeadline(deadline, timeoutError: { Self.timedOut(timeout) }) {
                                for try await event in stream {
                                    guard let event = try Self.forClient(event, includeUsage: includeUsage) else { continue }
                                    try await writer.write(SSEEncoder.event(event))
                                }
                            }
                            try await writer.write(SSEEncoder.done)
                        } catch let error as SluiceError {
                            // The head is sent: the error can only travel as an event.
                            logger.debug("stream failed after it started", metadata: ["error": "\(error)"])
                            try await writer.write(SSEEncoder.errorEvent(error))
                        }
                    }
                    try await writer.finish(nil)
                })
        }
    }

    /// The caller's `x-ratelimit-*` headers, as admission left them.
    static func addRateLimitHeaders(_ inference: InferenceContext, to headers: inout HTTPFields) {
        for (name, value) in inference.trace.values.rateLimitHeaders {
            if let field = Self.rateLimitFieldNames[name] ?? HTTPField.Name(name) { headers[field] = value }
        }
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
        do {
            let embeddingsRequest = try await body.decode(EmbeddingsRequest.self, from: request)
            inference.trace.withValues { $0.modelRequested = embeddingsRequest.model }
            try RequestValidation.validate(embeddingsRequest)
            guard let deployment = catalog.embedding[embeddingsRequest.model] else {
                if catalog.chat[embeddingsRequest.model] != nil {
                    throw SluiceError(
                        .invalidValue, "The model '\(embeddingsRequest.model)' is a chat model; use /v1/chat/completions.", param: "model")
                }
                throw catalog.notFound(embeddingsRequest.model)
            }
            inference.trace.withValues {
                $0.deployment = deployment.name
                $0.provider = deployment.providerName
                $0.price = deployment.price
            }
            let inputs: [String] = if case .strings(let s) = embeddingsRequest.input { s } else { [] }
            let promptTokens: Int =
                if case .tokens(let t) = embeddingsRequest.input { t.reduce(0) { $0 + $1.count } } else {
                    inputs.reduce(0) { $0 + TokenEstimator.tokens(in: $1) }
                }
            try await admission.admit(inference, model: embeddingsRequest.model, promptTokens: promptTokens, outputTokens: 0, price: deployment.price)
            var upstream = embeddingsRequest
            upstream.model = deployment.upstreamModel
            var result = try await deployment.provider.embed(upstream, context: inference)
            result.model = embeddingsRequest.model
            if embeddingsRequest.encodingFormat == .base64 {
                for i in result.data.indices {
                    if case .float(let v) = result.data[i].embedding { result.data[i].embedding = .base64(Self.base64(v)) }
                }
            }
            inference.trace.withValues {
                $0.usage = Usage(promptTokens: result.usage.promptTokens, completionTokens: 0)
                $0.attempts.append(.init(deployment: deployment.name, status: 200, errorCode: nil, latencyMs: inference.elapsed.milliseconds))
            }
            recorder.finish(inference, outcome: .finished)
            var headers: HTTPFields = [.contentType: "application/json", .sluiceModel: deployment.name]
            Self.addRateLimitHeaders(inference, to: &headers)
            if let cost = inference.trace.values.costUSD { headers[.sluiceCost] = Self.usd(cost) }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: try JSONCoding.encode(result)))
        } catch {
            recorder.finish(inference, outcome: .failed(error))
            throw error
        }
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
