import NIOCore
import SluiceCore

/// Chat completions over llama-server's text-completion endpoint: the request becomes a
/// Gemma-format prompt, and the `text_completion` answer (whole or streamed) becomes a chat
/// completion. Pure functions; the provider does the I/O.
enum LlamaCompletionTranslator {
    /// The `/v1/completions` body for a chat request.
    static func completionRequest(from request: ChatCompletionRequest, stream: Bool, defaultMaxTokens: Int = 1024) throws -> ByteBuffer {
        if let tools = request.tools, !tools.isEmpty {
            throw SluiceError(.unsupported, "This local model does not support tools.", param: "tools")
        }
        if let n = request.n, n != 1 {
            throw SluiceError(.unsupported, "This local model returns one choice per request; 'n' must be 1.", param: "n")
        }
        if request.logprobs == true {
            throw SluiceError(.unsupported, "This local model does not return logprobs.", param: "logprobs")
        }
        var body: [String: JSONValue] = [:]
        // Extension fields the server understands (top_k, min_p, repeat_penalty, …) pass through.
        for (key, value) in request.extra { body[key] = value }
        body["model"] = .string(request.model)
        body["prompt"] = .string(try GemmaTurnFormat.prompt(for: request.messages))
        body["stop"] = .array((GemmaTurnFormat.stopSequences + (request.stop?.values ?? [])).map(JSONValue.string))
        body["cache_prompt"] = true
        if stream {
            body["stream"] = true
            body["stream_options"] = ["include_usage": true]
        }
        body["max_tokens"] = .int(request.outputTokenLimit ?? defaultMaxTokens)
        if let t = request.temperature { body["temperature"] = .double(t) }
        if let p = request.topP { body["top_p"] = .double(p) }
        if let seed = request.seed { body["seed"] = .int(seed) }
        if let p = request.presencePenalty { body["presence_penalty"] = .double(p) }
        if let p = request.frequencyPenalty { body["frequency_penalty"] = .double(p) }
        if let bias = request.logitBias { body["logit_bias"] = .object(bias.mapValues(JSONValue.double)) }
        if let format = request.responseFormat {
            // Grammar-constrained decoding: the server only samples tokens that keep the output valid.
            switch format.type {
            case "json_object": body["json_schema"] = ["type": "object"]
            case "json_schema": body["json_schema"] = format.jsonSchema?.schema ?? ["type": "object"]
            case "text": break
            default:
                throw SluiceError(.invalidValue, "Unknown response_format type '\(format.type)'.", param: "response_format.type")
            }
        }
        return try JSONCoding.encode(JSONValue.object(body))
    }

    /// A whole `text_completion` as a chat completion.
    static func chatCompletion(from bytes: ByteBuffer, model: String) throws -> ChatCompletion {
        let answer = try JSONCoding.decode(TextCompletion.self, from: bytes)
        guard let choice = answer.choices.first else { throw SluiceError(.upstreamBadResponse, "the completion has no choices") }
        return ChatCompletion(
            id: answer.id ?? "chatcmpl-local", created: answer.created ?? 0, model: model,
            choices: [.init(index: 0, message: AssistantMessage(content: choice.text), finishReason: choice.finishReason ?? "stop")],
            usage: answer.usage)
    }

    /// One streamed `text_completion` event as chat-chunk events: the text as a delta (the
    /// first also carries the role), and usage in a chunk of its own, as OpenAI sends it.
    static func chatChunks(from data: ByteBuffer, model: String, first: Bool) throws -> [ChatCompletionChunk] {
        let event = try JSONCoding.decode(TextCompletion.self, from: data)
        let id = event.id ?? "chatcmpl-local"
        let created = event.created ?? 0
        var out: [ChatCompletionChunk] = []
        if let choice = event.choices.first {
            let text = choice.text ?? ""
            if first || !text.isEmpty || choice.finishReason != nil {
                let delta = ChatCompletionChunk.Delta(role: first ? "assistant" : nil, content: text.isEmpty && !first ? nil : text)
                out.append(ChatCompletionChunk(id: id, created: created, model: model, choices: [.init(index: 0, delta: delta, finishReason: choice.finishReason)]))
            }
        }
        if let usage = event.usage {
            out.append(ChatCompletionChunk(id: id, created: created, model: model, choices: [], usage: usage))
        }
        return out
    }

    /// What Sluice reads of a `text_completion` (whole or one stream event).
    struct TextCompletion: Decodable {
        struct Choice: Decodable {
            var text: String?
            var finishReason: String?
            enum CodingKeys: String, CodingKey {
                case text
                case finishReason = "finish_reason"
            }
        }
        var id: String?
        var created: Int?
        var choices: [Choice]
        var usage: Usage?
    }

    /// The server's SSE events with each `text_completion` payload rewritten as chat chunks;
    /// `[DONE]` and error events pass through for `ChatEventSequence` to handle.
    struct ChunkSequence<Events: AsyncSequence & Sendable>: AsyncSequence, Sendable where Events.Element == SSEEvent {
        typealias Element = SSEEvent
        let events: Events
        let model: String

        func makeAsyncIterator() -> Iterator { Iterator(base: events.makeAsyncIterator(), model: model) }

        struct Iterator: AsyncIteratorProtocol {
            var base: Events.AsyncIterator
            let model: String
            var pending: [SSEEvent] = []
            var first = true

            mutating func next() async throws -> SSEEvent? {
                while pending.isEmpty {
                    guard let event = try await base.next(isolation: #isolation) else { return nil }
                    let data = event.data
                    let isDone = data.readableBytes == 6 && data.readableBytesView.elementsEqual("[DONE]".utf8)
                    guard !isDone, data.readableBytes > 0,
                        let chunks = try? LlamaCompletionTranslator.chatChunks(from: data, model: model, first: first)
                    else { return event }
                    if !chunks.isEmpty { first = false }
                    pending = try chunks.map { SSEEvent(event: nil, data: try JSONCoding.encode($0)) }
                }
                return pending.removeFirst()
            }
        }
    }
}
