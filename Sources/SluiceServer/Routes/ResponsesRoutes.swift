import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import SluiceClientAPIs
import SluiceCore

/// `/v1/responses`: OpenAI's Responses API in, through the same pipeline as chat completions, to
/// any chat provider; stored responses (`store`, the default) serve `GET`, `DELETE` and
/// `previous_response_id`, for their owner only.
struct ResponsesRoutes: Sendable {
    /// The chat route, whose pipeline, body reader and stream framing these share.
    let openAI: OpenAIRoutes
    let store: any ResponseStore

    static let routes: [String: [HTTPRequest.Method]] = ["/v1/responses": [.post], "/v1/responses/{id}": [.get, .delete]]

    func register(on router: Router<SluiceRequestContext>) {
        router.post("/v1/responses") { request, context in try await create(request, context: context) }
        router.get("/v1/responses/{id}") { _, context in try await show(context.parameters.get("id") ?? "", context: context) }
        router.delete("/v1/responses/{id}") { _, context in try await delete(context.parameters.get("id") ?? "", context: context) }
    }

    // Small frames on the connection's task, as in `OpenAIRoutes.chatCompletions`: the request is
    // read, the answer framed and a whole answer stored by functions of their own.
    func create(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let inference = openAI.makeContext(request, context, endpoint: "responses")
        let parsed: ResponsesCall.Parsed
        let history: [ChatMessage]
        do {
            parsed = try Self.parse(try await openAI.body.decode(JSONValue.self, from: request))
            history = try await previousMessages(parsed.request.previousResponseID, context: context)
        } catch {
            openAI.recorder.finish(inference, model: "", stream: false, outcome: .failed(error))
            throw error
        }
        let call = try responsesCall(parsed, history: history, inference: inference, context: context)
        let response = try await openAI.run(call.inferenceRequest, inference: inference, deadline: call.deadline)
        if case .completion(let result) = response { return try await answer(result, call: call, inference: inference) }
        return try streamAnswer(response, call: call, inference: inference, context: context)
    }

    /// A Responses request read, continued from its previous response and made the pipeline's.
    final class ResponsesCall: Sendable {
        final class Parsed: Sendable {
            let request: ResponsesRequest
            init(_ request: ResponsesRequest) { self.request = request }
        }

        let request: ResponsesRequest
        let history: [ChatMessage]
        let inferenceRequest: InferenceRequest
        let model: String
        let id: String
        let createdAt: Int
        let owner: String
        let deadline: NIODeadline

        init(
            request: ResponsesRequest, history: [ChatMessage], inferenceRequest: InferenceRequest, model: String, id: String, createdAt: Int,
            owner: String, deadline: NIODeadline
        ) {
            self.request = request
            self.history = history
            self.inferenceRequest = inferenceRequest
            self.model = model
            self.id = id
            self.createdAt = createdAt
            self.owner = owner
            self.deadline = deadline
        }
    }

    @inline(never)
    static func parse(_ body: JSONValue) throws -> ResponsesCall.Parsed {
        ResponsesCall.Parsed(try ResponsesAPI.request(from: body))
    }

    @inline(never)
    func responsesCall(_ parsed: ResponsesCall.Parsed, history: [ChatMessage], inference: InferenceContext, context: SluiceRequestContext) throws -> ResponsesCall {
        let chat = parsed.request.chat(continuing: history)
        do {
            try RequestValidation.validate(chat)
        } catch {
            openAI.recorder.finish(inference, model: "", stream: false, outcome: .failed(error))
            throw error
        }
        return ResponsesCall(
            request: parsed.request, history: history, inferenceRequest: try openAI.inferenceRequest(chat, inference: inference), model: chat.model,
            id: "resp_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(), createdAt: Int(inference.receivedAtUnix),
            owner: Ownership.owner(context.principal), deadline: NIODeadline.now() + openAI.requestTimeout)
    }

    /// A whole answer, stored when the request asks for it.
    @inline(never)
    func answer(_ result: ChatResult, call: ResponsesCall, inference: InferenceContext) async throws -> Response {
        let headers = OpenAIRoutes.answerHeaders(inference)
        let completion = try result.completion()
        let object = ResponsesAPI.response(
            id: call.id, createdAt: call.createdAt, model: call.model, request: call.request, status: ResponsesAPI.status(finishReason: result.finishReason),
            output: ResponsesAPI.output(of: completion, responseID: call.id), usage: result.usage, finishReason: result.finishReason)
        let bytes = try JSONCoding.encode(object)
        if call.request.store {
            try await store.save(
                StoredResponse(
                    id: call.id, owner: call.owner, createdAt: inference.receivedAtUnix, response: String(buffer: bytes),
                    messages: try Self.text(call.history + call.request.input + [ResponsesAPI.assistantMessage(completion)])))
        }
        return OpenAIRoutes.jsonAnswer(bytes, headers: headers, inference: inference)
    }

    @inline(never)
    func streamAnswer(_ response: InferenceResponse, call: ResponsesCall, inference: InferenceContext, context: SluiceRequestContext) throws -> Response {
        guard case .stream(let stream) = response else {
            throw SluiceError(.internalError, "The chat pipeline answered with embeddings.")
        }
        let headers = OpenAIRoutes.answerHeaders(inference)
        let store = store
        let logger = inference.logger
        let failed = ResponsesStreamWriter(id: call.id, createdAt: call.createdAt, model: call.model, request: call.request)
        return openAI.eventStream(
            headers: headers, inference: inference, context: context, deadline: call.deadline, end: nil,
            failure: { error in
                var writer = failed
                return (try? SSEEncoder.event(writer.failure(error))) ?? ByteBuffer()
            }
        ) { out in
            var events = ResponsesStreamWriter(id: call.id, createdAt: call.createdAt, model: call.model, request: call.request)
            for event in events.start() { try await out.write(SSEEncoder.event(event)) }
            for try await chunk in stream {
                for event in events.events(for: try chunk.chunk()) { try await out.write(SSEEncoder.event(event)) }
            }
            let (last, final) = events.finish()
            if call.request.store {
                // Kept before the last event goes out, so a client that continues at once finds it.
                do {
                    try await store.save(
                        StoredResponse(
                            id: call.id, owner: call.owner, createdAt: Double(call.createdAt), response: String(buffer: try JSONCoding.encode(final)),
                            messages: try Self.text(call.history + call.request.input + [events.assistant])))
                } catch {
                    logger.error("could not store a streamed response", metadata: ["error": "\(error)", "response_id": "\(call.id)"])
                }
            }
            for event in last { try await out.write(SSEEncoder.event(event)) }
        }
    }

    static func text(_ messages: [ChatMessage]) throws -> String {
        String(buffer: try JSONCoding.encode(messages))
    }

    /// The conversation a `previous_response_id` continues; 404 for an id this caller does not own.
    func previousMessages(_ id: String?, context: SluiceRequestContext) async throws -> [ChatMessage] {
        guard let id else { return [] }
        let stored = try await owned(id, context: context, param: "previous_response_id")
        do {
            return try JSONCoding.decode([ChatMessage].self, from: ByteBuffer(string: stored.messages))
        } catch {
            throw SluiceError(.internalError, "Stored response '\(id)' could not be read back.")
        }
    }

    func owned(_ id: String, context: SluiceRequestContext, param: String? = nil) async throws -> StoredResponse {
        guard let stored = try await store.response(id: id),
            stored.owner == Ownership.owner(context.principal) || context.principal?.key.role == .admin
        else {
            throw SluiceError(.notFound, "No response with id '\(id)' was found.", param: param)
        }
        return stored
    }

    func show(_ id: String, context: SluiceRequestContext) async throws -> Response {
        let stored = try await owned(id, context: context)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: stored.response)))
    }

    func delete(_ id: String, context: SluiceRequestContext) async throws -> Response {
        _ = try await owned(id, context: context)
        _ = try await store.delete(id: id)
        let body: JSONValue = ["id": .string(id), "object": "response", "deleted": true]
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(body)))
    }
}
