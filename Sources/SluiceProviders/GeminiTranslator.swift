import Foundation
import SluiceCore

/// Translates between OpenAI chat completions and Google's Gemini API (`generateContent`,
/// `streamGenerateContent`, `batchEmbedContents`), both ways and for streams. Pure functions.
public enum GeminiTranslator {
    /// The `generateContent` body for a chat request.
    public static func generateContentRequest(from request: ChatCompletionRequest) throws -> JSONValue {
        let request = try request.withFunctionToolsOnly(provider: "Gemini")
        var system: [String] = []
        var contents = AlternatingTurns()
        // Gemini answers a function call by the function's name, OpenAI by the call's id.
        var names: [String: String] = [:]

        func append(_ role: String, _ parts: [JSONValue]) { contents.append(role, parts) }

        for (i, message) in request.messages.enumerated() {
            switch message.role {
            case .system, .developer:
                system.append(message.text)
            case .user:
                append("user", try parts(message.content, messageIndex: i))
            case .assistant:
                var parts: [JSONValue] = []
                let text = message.text
                if !text.isEmpty { parts.append(["text": .string(text)]) }
                for call in message.toolCalls ?? [] {
                    names[call.id] = call.function.name
                    parts.append(["functionCall": ["name": .string(call.function.name), "args": try ChatContent.toolInput(call, messageIndex: i)]])
                }
                append("model", parts)
            case .tool, .function:
                guard let id = message.toolCallId ?? message.name else {
                    throw SluiceError(.missingParameter, "A tool message needs 'tool_call_id'", param: "messages[\(i)].tool_call_id")
                }
                let name = names[id] ?? message.name ?? id
                // `response` must be an object: a JSON object result as it is, anything else wrapped.
                var text = message.text
                let parsed = text.withUTF8 { JSONParser.parse(UnsafeRawBufferPointer($0)) }
                let response: JSONValue = if case .object? = parsed { parsed! } else { ["result": .string(message.text)] }
                append("user", [["functionResponse": ["name": .string(name), "response": response]]])
            }
        }

        var generation: [String: JSONValue] = [:]
        if let t = request.temperature { generation["temperature"] = .double(t) }
        if let p = request.topP { generation["topP"] = .double(p) }
        if let n = request.outputTokenLimit { generation["maxOutputTokens"] = .int(n) }
        if let stop = request.stop { generation["stopSequences"] = .array(stop.values.map { .string($0) }) }
        if let seed = request.seed { generation["seed"] = .int(seed) }
        if let p = request.presencePenalty { generation["presencePenalty"] = .double(p) }
        if let f = request.frequencyPenalty { generation["frequencyPenalty"] = .double(f) }
        switch request.responseFormat?.type {
        case "json_object":
            generation["responseMimeType"] = "application/json"
        case "json_schema":
            generation["responseMimeType"] = "application/json"
            if let schema = request.responseFormat?.jsonSchema?.schema { generation["responseJsonSchema"] = schema }
        default:
            break
        }

        var body: [String: JSONValue] = ["contents": contents.json(contentKey: "parts")]
        if !system.isEmpty { body["systemInstruction"] = ["parts": [["text": .string(system.joined(separator: "\n\n"))]]] }
        if !generation.isEmpty { body["generationConfig"] = .object(generation) }
        if let tools = request.tools, !tools.isEmpty {
            body["tools"] = [
                [
                    "functionDeclarations": .array(
                        tools.map { tool in
                            var declaration: [String: JSONValue] = ["name": .string(tool.function.name)]
                            if let d = tool.function.description { declaration["description"] = .string(d) }
                            if let p = tool.function.parameters { declaration["parametersJsonSchema"] = p }
                            return .object(declaration)
                        })
                ]
            ]
            var config: [String: JSONValue]?
            switch request.toolChoice {
            case .string("auto")?: config = ["mode": "AUTO"]
            case .string("none")?: config = ["mode": "NONE"]
            case .string("required")?: config = ["mode": "ANY"]
            case .object(let o)?:
                if let name = o["function"]?["name"]?.stringValue { config = ["mode": "ANY", "allowedFunctionNames": [.string(name)]] }
            default: break
            }
            if let config { body["toolConfig"] = ["functionCallingConfig": .object(config)] }
        }
        return .object(body)
    }

    static func parts(_ content: MessageContent?, messageIndex: Int) throws -> [JSONValue] {
        switch content {
        case nil: return []
        case .text(let s)?: return s.isEmpty ? [] : [["text": .string(s)]]
        case .parts(let parts)?:
            return try parts.enumerated().map { j, part in
                switch part.type {
                case "text":
                    return ["text": .string(part.text ?? "")]
                case "image_url":
                    guard let url = ChatContent.imageURL(of: part) else {
                        throw SluiceError(.missingParameter, "An image part needs image_url.url", param: "messages[\(messageIndex)].content[\(j)].image_url")
                    }
                    if let inline = ChatContent.dataURL(url) {
                        return ["inlineData": ["mimeType": .string(inline.mediaType), "data": .string(inline.data)]]
                    }
                    return ["fileData": ["fileUri": .string(url), "mimeType": .string(mimeType(ofURL: url))]]
                default:
                    throw SluiceError(
                        .unsupported, "Content parts of type '\(part.type)' cannot be sent to a Gemini model",
                        param: "messages[\(messageIndex)].content[\(j)].type")
                }
            }
        }
    }

    static func mimeType(ofURL url: String) -> String {
        let path = url.split(separator: "?").first.map(String.init)?.lowercased() ?? ""
        if path.hasSuffix(".png") { return "image/png" }
        if path.hasSuffix(".webp") { return "image/webp" }
        if path.hasSuffix(".gif") { return "image/gif" }
        return "image/jpeg"
    }

    /// OpenAI's finish reason for Gemini's.
    static func finishReason(_ reason: String?, hasToolCalls: Bool) -> String? {
        switch reason {
        case nil: nil
        case "MAX_TOKENS": "length"
        case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY": "content_filter"
        default: hasToolCalls ? "tool_calls" : "stop"
        }
    }

    static func usage(_ metadata: JSONValue?) -> Usage? {
        guard let metadata else { return nil }
        let output = (metadata["candidatesTokenCount"]?.intValue ?? 0) + (metadata["thoughtsTokenCount"]?.intValue ?? 0)
        return Usage(promptTokens: metadata["promptTokenCount"]?.intValue ?? 0, completionTokens: output)
    }

    /// A prompt Gemini refused to answer at all, as the error clients see.
    static func blocked(_ response: JSONValue, provider: String) -> SluiceError? {
        guard let reason = response["promptFeedback"]?["blockReason"]?.stringValue else { return nil }
        return SluiceError(.contentFiltered, "Upstream '\(provider)' (Gemini) blocked the prompt: \(reason)", param: "messages", upstreamStatus: 200)
    }

    /// The text and function calls of a candidate's parts (thought summaries skipped).
    static func read(_ parts: [JSONValue], callIDPrefix: String, firstCall: Int) -> (text: String, calls: [ToolCall]) {
        var text = ""
        var calls: [ToolCall] = []
        for part in parts {
            if part["thought"] == .bool(true) { continue }
            if let t = part["text"]?.stringValue { text += t }
            if let call = part["functionCall"] {
                let id = call["id"]?.stringValue ?? "\(callIDPrefix)_\(firstCall + calls.count)"
                calls.append(ToolCall(id: id, name: call["name"]?.stringValue ?? "", arguments: (call["args"] ?? .object([:])).compactJSON))
            }
        }
        return (text, calls)
    }

    /// The chat completion for a `generateContent` response.
    public static func completion(from response: JSONValue, id: String, model: String, created: Int, provider: String) throws -> ChatCompletion {
        if let error = blocked(response, provider: provider) { throw error }
        guard let candidate = response["candidates"]?[0] else {
            throw SluiceError(.upstreamBadResponse, "Upstream '\(provider)' (Gemini) returned no candidate")
        }
        let (text, calls) = read(candidate["content"]?["parts"]?.arrayValue ?? [], callIDPrefix: "call_" + id, firstCall: 0)
        let finish = finishReason(candidate["finishReason"]?.stringValue, hasToolCalls: !calls.isEmpty) ?? "stop"
        if finish == "content_filter" && text.isEmpty && calls.isEmpty {
            throw SluiceError(
                .contentFiltered, "Upstream '\(provider)' (Gemini) stopped the answer: \(candidate["finishReason"]?.stringValue ?? "SAFETY")",
                upstreamStatus: 200)
        }
        let message = AssistantMessage(content: calls.isEmpty || !text.isEmpty ? text : nil, toolCalls: calls.isEmpty ? nil : calls)
        return ChatCompletion(
            id: id, created: created, model: response["modelVersion"]?.stringValue ?? model,
            choices: [.init(index: 0, message: message, finishReason: finish)], usage: usage(response["usageMetadata"]))
    }

    /// Turns `streamGenerateContent?alt=sse` events into chat chunks; one per stream.
    public struct StreamState: SSEStreamTranslation {
        let id: String
        let model: String
        let created: Int
        let provider: String
        var started = false
        var toolCalls = 0
        var usage: Usage?
        /// Whether a finish reason arrived (the stream has no other end marker).
        public private(set) var finished = false

        public init(id: String, model: String, created: Int, provider: String) {
            self.id = id
            self.model = model
            self.created = created
            self.provider = provider
        }

        func chunk(_ delta: ChatCompletionChunk.Delta, finish: String? = nil) -> ChatCompletionChunk {
            ChatCompletionChunk(id: id, created: created, model: model, choices: [.init(index: 0, delta: delta, finishReason: finish)])
        }

        /// Gemini's stream has no end marker: it ends with the body.
        var isComplete: Bool { false }

        func endOfBody(provider: String) throws -> [ChatCompletionChunk] {
            guard finished else { throw SluiceError(.upstreamError, "Upstream '\(provider)' ended the stream before a finish reason") }
            return [end()]
        }

        public mutating func chunks(event: String?, data: JSONValue) throws -> [ChatCompletionChunk] {
            if let error = GeminiTranslator.blocked(data, provider: provider) { throw error }
            if let message = data["error"]?["message"]?.stringValue {
                throw SluiceError(.upstreamError, "Upstream '\(provider)' (Gemini) failed mid-stream: \(message)")
            }
            var out: [ChatCompletionChunk] = []
            if !started {
                started = true
                out.append(chunk(.init(role: "assistant", content: "")))
            }
            if let u = GeminiTranslator.usage(data["usageMetadata"]) { usage = u }
            guard let candidate = data["candidates"]?[0] else { return out }
            let (text, calls) = GeminiTranslator.read(candidate["content"]?["parts"]?.arrayValue ?? [], callIDPrefix: "call_" + id, firstCall: toolCalls)
            if !text.isEmpty { out.append(chunk(.init(content: text))) }
            for call in calls {
                out.append(
                    chunk(
                        .init(toolCalls: [
                            .init(index: toolCalls, id: call.id, type: "function", function: .init(name: call.function.name, arguments: call.function.arguments))
                        ])))
                toolCalls += 1
            }
            if let reason = candidate["finishReason"]?.stringValue {
                finished = true
                let finish = GeminiTranslator.finishReason(reason, hasToolCalls: toolCalls > 0) ?? "stop"
                out.append(chunk(.init(), finish: finish))
            }
            return out
        }

        /// The usage chunk that ends the stream.
        public func end() -> ChatCompletionChunk {
            ChatCompletionChunk(id: id, created: created, model: model, choices: [], usage: usage ?? Usage(promptTokens: 0, completionTokens: 0))
        }
    }

    /// The `batchEmbedContents` body for an embeddings request.
    public static func embedRequest(from request: EmbeddingsRequest, model: String) throws -> JSONValue {
        guard case .strings(let texts) = request.input else {
            throw SluiceError(.unsupported, "Gemini embeddings take text input, not token ids", param: "input")
        }
        return [
            "requests": .array(
                texts.map { text in
                    var one: [String: JSONValue] = ["model": .string("models/" + model), "content": ["parts": [["text": .string(text)]]]]
                    if let d = request.dimensions { one["outputDimensionality"] = .int(d) }
                    return .object(one)
                })
        ]
    }

    /// The embeddings list for a `batchEmbedContents` response; usage is estimated (Gemini reports none).
    public static func embeddings(from response: JSONValue, request: EmbeddingsRequest, provider: String) throws -> EmbeddingsResponse {
        guard let list = response["embeddings"]?.arrayValue else {
            throw SluiceError(.upstreamBadResponse, "Upstream '\(provider)' (Gemini) returned no embeddings")
        }
        let data = try list.enumerated().map { i, item in
            guard let values = item["values"]?.arrayValue else {
                throw SluiceError(.upstreamBadResponse, "Upstream '\(provider)' (Gemini) returned an embedding without values")
            }
            return EmbeddingsResponse.Embedding(index: i, embedding: .float(values.map { Float($0.doubleValue ?? 0) }))
        }
        return EmbeddingsResponse(data: data, model: request.model, usage: EmbeddingUsage(promptTokens: TokenEstimator.inputTokens(of: request)))
    }
}
