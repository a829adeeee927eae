import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import SluiceClientAPIs
import SluiceCore

/// `/v1/messages` and `/v1/messages/count_tokens`: Anthropic's Messages API in, through the same
/// pipeline as chat completions (keys, limits, guardrails, cache, routing, audit), to any chat
/// provider. Errors take Anthropic's shape (`ErrorMiddleware` answers by path).
struct MessagesRoutes: Sendable {
    /// The chat route, whose pipeline, body reader and stream framing these share.
    let openAI: OpenAIRoutes

    static let routes: [String: [HTTPRequest.Method]] = ["/v1/messages": [.post], "/v1/messages/count_tokens": [.post]]

    func register(on router: Router<SluiceRequestContext>) {
        router.post("/v1/messages") { request, context in try await messages(request, context: context) }
        router.post("/v1/messages/count_tokens") { request, context in try await countTokens(request, context: context) }
    }

    // Small frames on the connection's task, as in `OpenAIRoutes.chatCompletions`.
    func messages(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        var inference = openAI.makeContext(request, context, endpoint: "messages")
        let body: JSONValue
        do {
            body = try await openAI.body.decode(JSONValue.self, from: request)
        } catch {
            openAI.recorder.finish(inference, model: "", stream: false, outcome: .failed(error))
            throw error
        }
        let call = try messagesCall(body, inference: &inference)
        let response = try await openAI.run(call.request, inference: inference, deadline: call.deadline)
        return try answer(response, call: call, inference: inference, context: context)
    }

    /// A Messages request translated and made the pipeline's.
    final class MessagesCall: Sendable {
        let request: InferenceRequest
        let id: String
        let model: String
        let estimatedInputTokens: Int
        let deadline: NIODeadline

        init(request: InferenceRequest, id: String, model: String, estimatedInputTokens: Int, deadline: NIODeadline) {
            self.request = request
            self.id = id
            self.model = model
            self.estimatedInputTokens = estimatedInputTokens
            self.deadline = deadline
        }
    }

    @inline(never)
    func messagesCall(_ body: JSONValue, inference: inout InferenceContext) throws -> MessagesCall {
        let chat: ChatCompletionRequest
        do {
            chat = try MessagesAPI.chatRequest(from: body)
            try RequestValidation.validate(chat)
            inference.nativeRequest = NativeRequest(api: .anthropicMessages, body: body, translated: chat)
        } catch {
            openAI.recorder.finish(inference, model: "", stream: false, outcome: .failed(error))
            throw error
        }
        return MessagesCall(
            request: try openAI.inferenceRequest(chat, inference: inference),
            id: "msg_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(), model: chat.model,
            estimatedInputTokens: chat.isStreaming ? TokenEstimator.promptTokens(of: chat) : 0, deadline: NIODeadline.now() + openAI.requestTimeout)
    }

    @inline(never)
    func answer(_ response: InferenceResponse, call: MessagesCall, inference: InferenceContext, context: SluiceRequestContext) throws -> Response {
        let headers = OpenAIRoutes.answerHeaders(inference)
        switch response {
        case .embeddings:
            throw SluiceError(.internalError, "The chat pipeline answered with embeddings.")
        case .completion(let result):
            let message = MessagesAPI.message(from: try result.completion(), id: call.id, model: call.model)
            return OpenAIRoutes.jsonAnswer(try JSONCoding.encode(message), headers: headers, inference: inference)
        case .stream(let stream):
            return openAI.eventStream(
                headers: headers, inference: inference, context: context, deadline: call.deadline, end: nil,
                failure: { error in (try? SSEEncoder.event(NamedEvent("error", MessagesAPI.errorBody(error)))) ?? ByteBuffer() }
            ) { out in
                var events = MessagesStreamWriter(id: call.id, model: call.model, estimatedInputTokens: call.estimatedInputTokens)
                for event in events.start() { try await out.write(SSEEncoder.event(event)) }
                for try await chunk in stream {
                    for event in events.events(for: try chunk.chunk()) { try await out.write(SSEEncoder.event(event)) }
                }
                for event in events.finish() { try await out.write(SSEEncoder.event(event)) }
            }
        }
    }

    /// An estimate (Sluice's, not the model's tokenizer) of the prompt's tokens, after the same
    /// translation a request gets; the model must be one this key may call.
    func countTokens(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let chat = try MessagesAPI.chatRequest(from: try await openAI.body.decode(JSONValue.self, from: request), requireMaxTokens: false)
        guard openAI.catalog.listing.contains(where: { $0.name == chat.model }) else { throw openAI.catalog.notFound(chat.model) }
        if let principal = context.principal, !principal.key.allows(model: chat.model) {
            throw SluiceError(.permissionDenied, "This API key may not use the model '\(chat.model)'.", param: "model")
        }
        let body: JSONValue = ["input_tokens": .int(TokenEstimator.promptTokens(of: chat))]
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(body)))
    }
}
