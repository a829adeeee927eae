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

    func create(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let inference = openAI.makeContext(request, context, endpoint: "responses")
        let parsed: ResponsesRequest
        let history: [ChatMessage]
        let chat: ChatCompletionRequest
        do {
            parsed = try ResponsesAPI.request(from: try await openAI.body.decode(JSONValue.self, from: request))
            history = try await previousMessages(parsed.previousResponseID, context: context)
            chat = parsed.chat(continuing: history)
            try RequestValidation.validate(chat)
        } catch {
            openAI.recorder.finish(inference, model: "", stream: false, outcome: .failed(error))
            throw error
        }
        let id = "resp_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let createdAt = Int(inference.receivedAtUnix)
        let owner = Ownership.owner(context.principal)
        let deadline = NIODeadline.now() + openAI.requestTimeout
        let response = try await openAI.run(try openAI.inferenceRequest(chat, inference: inference), inference: inference, deadline: deadline)
        let headers = OpenAIRoutes.answerHeaders(inference)
        let store = store
        switch response {
        case .embeddings:
            throw SluiceError(.internalError, "The chat pipeline answered with embeddings.")
        case .completion(let result):
            let completion = try result.completion()
            let object = ResponsesAPI.response(
                id: id, createdAt: createdAt, model: chat.model, request: parsed, status: ResponsesAPI.status(finishReason: result.finishReason),
                output: ResponsesAPI.output(of: completion, responseID: id), usage: result.usage, finishReason: result.finishReason)
            let bytes = try JSONCoding.encode(object)
            if parsed.store {
                try await store.save(
                    StoredResponse(
                        id: id, owner: owner, createdAt: inference.receivedAtUnix, response: String(buffer: bytes),
                        messages: try Self.text(history + parsed.input + [ResponsesAPI.assistantMessage(completion)])))
            }
            return OpenAIRoutes.jsonAnswer(bytes, headers: headers, inference: inference)
        case .stream(let stream):
            let logger = inference.logger
            let failed = ResponsesStreamWriter(id: id, createdAt: createdAt, model: chat.model, request: parsed)
            return openAI.eventStream(
                headers: headers, inference: inference, context: context, deadline: deadline, end: nil,
                failure: { error in
                    var writer = failed
                    return (try? SSEEncoder.event(writer.failure(error))) ?? ByteBuffer()
                }
            ) { out in
                var events = ResponsesStreamWriter(id: id, createdAt: createdAt, model: chat.model, request: parsed)
                for event in events.start() { try await out.write(SSEEncoder.event(event)) }
                for try await chunk in stream {
                    for event in events.events(for: try chunk.chunk()) { try await out.write(SSEEncoder.event(event)) }
                }
                let (last, final) = events.finish()
                if parsed.store {
                    // Kept before the last event goes out, so a client that continues at once finds it.
                    do {
                        try await store.save(
                            StoredResponse(
                                id: id, owner: owner, createdAt: Double(createdAt), response: String(buffer: try JSONCoding.encode(final)),
                                messages: try Self.text(history + parsed.input + [events.assistant])))
                    } catch {
                        logger.error("could not store a streamed response", metadata: ["error": "\(error)", "response_id": "\(id)"])
                    }
                }
                for event in last { try await out.write(SSEEncoder.event(event)) }
            }
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
