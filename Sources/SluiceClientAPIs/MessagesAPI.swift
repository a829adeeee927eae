import SluiceCore

/// Anthropic's Messages API as clients speak it (`POST /v1/messages`): a request becomes the
/// chat request the pipeline runs, and the pipeline's answer becomes a Messages API message.
/// Pure functions; the route does the I/O.
public enum MessagesAPI {
    /// The chat request for a Messages API request body. `requireMaxTokens` is false for
    /// `count_tokens`, which takes no `max_tokens`.
    public static func chatRequest(from body: JSONValue, requireMaxTokens: Bool = true) throws -> ChatCompletionRequest {
        guard case .object(let fields) = body else {
            throw SluiceError(.invalidType, "The request body must be a JSON object.")
        }
        guard let model = fields["model"]?.stringValue, !model.isEmpty else {
            throw SluiceError(.missingParameter, "model: a string is required.", param: "model")
        }
        guard case .array(let rawMessages)? = fields["messages"] else {
            throw SluiceError(.missingParameter, "messages: an array of messages is required.", param: "messages")
        }
        var messages: [ChatMessage] = []
        switch fields["system"] {
        case nil, .null?: break
        case .string(let s)?: if !s.isEmpty { messages.append(ChatMessage(role: .system, text: s)) }
        case .array(let blocks)?:
            var text: [String] = []
            for (i, block) in blocks.enumerated() {
                guard block["type"]?.stringValue == "text", let t = block["text"]?.stringValue else {
                    throw SluiceError(.invalidValue, "system[\(i)]: system blocks must be text blocks.", param: "system[\(i)]")
                }
                text.append(t)
            }
            if !text.isEmpty { messages.append(ChatMessage(role: .system, text: text.joined(separator: "\n\n"))) }
        default:
            throw SluiceError(.invalidType, "system: expected a string or an array of text blocks.", param: "system")
        }
        for (i, message) in rawMessages.enumerated() {
            messages += try chatMessages(message, index: i)
        }
        guard messages.contains(where: { $0.role != .system }) else {
            throw SluiceError(.invalidValue, "messages: at least one message is required.", param: "messages")
        }
        var chat = ChatCompletionRequest(model: model, messages: messages)
        switch fields["max_tokens"] {
        case .int(let n)? where n >= 1: chat.maxTokens = n
        case nil where !requireMaxTokens: break
        case nil: throw SluiceError(.missingParameter, "max_tokens: an integer is required.", param: "max_tokens")
        default: throw SluiceError(.invalidValue, "max_tokens: expected an integer of at least 1.", param: "max_tokens")
        }
        chat.temperature = try RequestFields.number(fields["temperature"], "temperature", in: 0...1)
        chat.topP = try RequestFields.number(fields["top_p"], "top_p", in: 0...1)
        switch fields["stop_sequences"] {
        case nil, .null?: break
        case .array(let values)?:
            let stops = values.compactMap(\.stringValue)
            guard stops.count == values.count else {
                throw SluiceError(.invalidType, "stop_sequences: expected an array of strings.", param: "stop_sequences")
            }
            if !stops.isEmpty { chat.stop = .many(stops) }
        default: throw SluiceError(.invalidType, "stop_sequences: expected an array of strings.", param: "stop_sequences")
        }
        switch fields["stream"] {
        case nil, .null?: break
        case .bool(let b)?: chat.stream = b
        default: throw SluiceError(.invalidType, "stream: expected a boolean.", param: "stream")
        }
        if chat.isStreaming { chat.streamOptions = StreamOptions(includeUsage: true) }
        if let user = fields["metadata"]?["user_id"]?.stringValue { chat.user = user }
        if let tools = fields["tools"], tools != .null {
            chat.tools = try Self.tools(tools)
        }
        if let choice = fields["tool_choice"], choice != .null {
            try applyToolChoice(choice, to: &chat)
        }
        return chat
    }

    /// One Messages API message as chat messages: a user turn's `tool_result` blocks become tool
    /// messages (which must follow the assistant's calls), its other blocks one user message.
    static func chatMessages(_ message: JSONValue, index i: Int) throws -> [ChatMessage] {
        let role = message["role"]?.stringValue
        guard role == "user" || role == "assistant" else {
            throw SluiceError(.invalidValue, "messages[\(i)].role: expected 'user' or 'assistant'.", param: "messages[\(i)].role")
        }
        let blocks: [JSONValue]
        switch message["content"] {
        case .string(let s)?: return [ChatMessage(role: role == "user" ? .user : .assistant, text: s)]
        case .array(let a)?: blocks = a
        default:
            throw SluiceError(.invalidType, "messages[\(i)].content: expected a string or an array of content blocks.", param: "messages[\(i)].content")
        }
        if role == "assistant" {
            var text = ""
            var calls: [ToolCall] = []
            for (j, block) in blocks.enumerated() {
                let param = "messages[\(i)].content[\(j)]"
                switch block["type"]?.stringValue {
                case "text": text += block["text"]?.stringValue ?? ""
                case "tool_use":
                    guard let id = block["id"]?.stringValue, let name = block["name"]?.stringValue else {
                        throw SluiceError(.missingParameter, "\(param): a tool_use block needs 'id' and 'name'.", param: param)
                    }
                    calls.append(ToolCall(id: id, name: name, arguments: (block["input"] ?? .object([:])).compactJSON))
                case "thinking", "redacted_thinking":
                    continue  // Another model's reasoning: not part of what any chat model reads back.
                default:
                    throw unsupportedBlock(block, param: param)
                }
            }
            var out = ChatMessage(role: .assistant, content: text.isEmpty && !calls.isEmpty ? nil : .text(text))
            if !calls.isEmpty { out.toolCalls = calls }
            return [out]
        }
        var results: [ChatMessage] = []
        var parts: [ContentPart] = []
        for (j, block) in blocks.enumerated() {
            let param = "messages[\(i)].content[\(j)]"
            switch block["type"]?.stringValue {
            case "text":
                guard let t = block["text"]?.stringValue else {
                    throw SluiceError(.missingParameter, "\(param).text: a text block needs a string 'text'.", param: param + ".text")
                }
                parts.append(ContentPart(text: t))
            case "image":
                parts.append(try imagePart(block, param: param))
            case "tool_result":
                guard let id = block["tool_use_id"]?.stringValue else {
                    throw SluiceError(.missingParameter, "\(param).tool_use_id: a tool_result block needs it.", param: param + ".tool_use_id")
                }
                var text: String
                switch block["content"] {
                case nil, .null?: text = ""
                case .string(let s)?: text = s
                case .array(let inner)?:
                    text = ""
                    for (k, b) in inner.enumerated() {
                        guard b["type"]?.stringValue == "text", let t = b["text"]?.stringValue else {
                            throw SluiceError(
                                .unsupported, "\(param).content[\(k)]: only text blocks can be returned in a tool_result here.",
                                param: "\(param).content[\(k)]")
                        }
                        text += t
                    }
                default:
                    throw SluiceError(.invalidType, "\(param).content: expected a string or an array of text blocks.", param: param + ".content")
                }
                if block["is_error"] == .bool(true) { text = "Error: " + text }
                results.append(ChatMessage(role: .tool, content: .text(text), toolCallId: id))
            default:
                throw unsupportedBlock(block, param: param)
            }
        }
        if parts.isEmpty { return results }
        let content: MessageContent = parts.allSatisfy({ $0.type == "text" }) ? .text(parts.compactMap(\.text).joined()) : .parts(parts)
        return results + [ChatMessage(role: .user, content: content)]
    }

    static func imagePart(_ block: JSONValue, param: String) throws -> ContentPart {
        let source = block["source"]
        switch source?["type"]?.stringValue {
        case "base64":
            guard let media = source?["media_type"]?.stringValue, let data = source?["data"]?.stringValue else {
                throw SluiceError(.missingParameter, "\(param).source: a base64 image needs 'media_type' and 'data'.", param: param + ".source")
            }
            return ContentPart(imageURL: "data:\(media);base64,\(data)")
        case "url":
            guard let url = source?["url"]?.stringValue else {
                throw SluiceError(.missingParameter, "\(param).source.url: required for a url image.", param: param + ".source.url")
            }
            return ContentPart(imageURL: url)
        default:
            throw SluiceError(.invalidValue, "\(param).source.type: expected 'base64' or 'url'.", param: param + ".source.type")
        }
    }

    static func unsupportedBlock(_ block: JSONValue, param: String) -> SluiceError {
        guard let type = block["type"]?.stringValue else {
            return SluiceError(.missingParameter, "\(param).type: a content block needs a string 'type'.", param: param + ".type")
        }
        return SluiceError(
            .unsupported, "\(param): content blocks of type '\(type)' are not supported by Sluice's Messages API (text, image, tool_use and tool_result are).",
            param: param + ".type")
    }

    static func tools(_ value: JSONValue) throws -> [Tool] {
        guard case .array(let items) = value else {
            throw SluiceError(.invalidType, "tools: expected an array of tools.", param: "tools")
        }
        return try items.enumerated().map { i, tool in
            if let type = tool["type"]?.stringValue, type != "custom" {
                throw SluiceError(
                    .unsupported, "tools[\(i)]: Anthropic server tools ('\(type)') are not supported; declare client tools with name and input_schema.",
                    param: "tools[\(i)].type")
            }
            guard let name = tool["name"]?.stringValue, !name.isEmpty else {
                throw SluiceError(.missingParameter, "tools[\(i)].name: a tool needs a name.", param: "tools[\(i)].name")
            }
            guard let schema = tool["input_schema"], case .object = schema else {
                throw SluiceError(.missingParameter, "tools[\(i)].input_schema: a tool needs a JSON Schema object.", param: "tools[\(i)].input_schema")
            }
            return Tool(function: FunctionDefinition(name: name, description: tool["description"]?.stringValue, parameters: schema))
        }
    }

    static func applyToolChoice(_ choice: JSONValue, to chat: inout ChatCompletionRequest) throws {
        switch choice["type"]?.stringValue {
        case "auto": chat.toolChoice = "auto"
        case "any": chat.toolChoice = "required"
        case "none": chat.toolChoice = "none"
        case "tool":
            guard let name = choice["name"]?.stringValue else {
                throw SluiceError(.missingParameter, "tool_choice.name: required when type is 'tool'.", param: "tool_choice.name")
            }
            chat.toolChoice = ["type": "function", "function": ["name": .string(name)]]
        default:
            throw SluiceError(.invalidValue, "tool_choice.type: expected 'auto', 'any', 'tool' or 'none'.", param: "tool_choice.type")
        }
        if choice["disable_parallel_tool_use"] == .bool(true) { chat.parallelToolCalls = false }
    }

    /// Anthropic's stop reason for a chat finish reason.
    public static func stopReason(_ finishReason: String?) -> String {
        switch finishReason {
        case "length": "max_tokens"
        case "tool_calls", "function_call": "tool_use"
        case "content_filter": "refusal"
        default: "end_turn"
        }
    }

    /// The Messages API message for a completion; `model` is the name the client asked for.
    public static func message(from completion: ChatCompletion, id: String, model: String) -> JSONValue {
        var content: [JSONValue] = []
        let choice = completion.choices.first
        if let text = choice?.message.content, !text.isEmpty { content.append(["type": "text", "text": .string(text)]) }
        for call in choice?.message.toolCalls ?? [] {
            content.append(["type": "tool_use", "id": .string(call.id), "name": .string(call.function.name), "input": toolInput(call.function.arguments)])
        }
        return [
            "id": .string(id), "type": "message", "role": "assistant", "model": .string(model), "content": .array(content),
            "stop_reason": .string(stopReason(choice?.finishReason)), "stop_sequence": .null,
            "usage": usage(completion.usage),
        ]
    }

    /// A tool call's arguments as the `input` object Anthropic clients expect (`{}` when they are
    /// not a JSON object, as a model can write them).
    static func toolInput(_ arguments: String) -> JSONValue {
        var text = arguments
        if let parsed = text.withUTF8({ JSONParser.parse(UnsafeRawBufferPointer($0)) }), case .object = parsed { return parsed }
        return .object([:])
    }

    static func usage(_ usage: Usage?) -> JSONValue {
        ["input_tokens": .int(usage?.promptTokens ?? 0), "output_tokens": .int(usage?.completionTokens ?? 0)]
    }

    /// An error in Anthropic's shape: `{"type": "error", "error": {"type", "message"}}`.
    public static func errorBody(_ error: SluiceError) -> JSONValue {
        ["type": "error", "error": ["type": .string(errorType(status: error.httpStatus)), "message": .string(error.message)]]
    }

    /// Anthropic's error type for a status.
    public static func errorType(status: Int) -> String {
        switch status {
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 503, 529: "overloaded_error"
        case 500...: "api_error"
        default: "invalid_request_error"
        }
    }
}

/// One server-sent event: its name and JSON payload.
public struct NamedEvent: Sendable, Hashable {
    public var name: String
    public var data: JSONValue

    public init(_ name: String, _ data: JSONValue) {
        self.name = name
        self.data = data
    }
}

/// Turns a chat stream into Anthropic's event sequence: `message_start`, then per content block
/// `content_block_start`, its deltas and `content_block_stop`, then `message_delta` (stop reason,
/// usage) and `message_stop`. One per stream.
public struct MessagesStreamWriter: Sendable {
    let id: String
    let model: String
    let estimatedInputTokens: Int
    /// The block being written: its Anthropic index, and the chat tool-call index when it is a tool_use block.
    var open: (index: Int, toolCall: Int?)?
    var nextIndex = 0
    /// Anthropic block index of each chat tool call.
    var blockForToolCall: [Int: Int] = [:]
    var finishReason: String?
    var usage: Usage?

    public init(id: String, model: String, estimatedInputTokens: Int) {
        self.id = id
        self.model = model
        self.estimatedInputTokens = estimatedInputTokens
    }

    /// `message_start` and a `ping`, sent before the first chunk.
    public func start() -> [NamedEvent] {
        [
            NamedEvent(
                "message_start",
                [
                    "type": "message_start",
                    "message": [
                        "id": .string(id), "type": "message", "role": "assistant", "model": .string(model), "content": [],
                        "stop_reason": .null, "stop_sequence": .null,
                        "usage": ["input_tokens": .int(estimatedInputTokens), "output_tokens": 0],
                    ],
                ]),
            NamedEvent("ping", ["type": "ping"]),
        ]
    }

    mutating func close() -> [NamedEvent] {
        guard let block = open else { return [] }
        open = nil
        return [NamedEvent("content_block_stop", ["type": "content_block_stop", "index": .int(block.index)])]
    }

    mutating func openBlock(_ block: JSONValue, toolCall: Int?) -> [NamedEvent] {
        var out = close()
        let index = nextIndex
        nextIndex += 1
        open = (index, toolCall)
        out.append(NamedEvent("content_block_start", ["type": "content_block_start", "index": .int(index), "content_block": block]))
        return out
    }

    /// The events for one chat chunk.
    public mutating func events(for chunk: ChatCompletionChunk) -> [NamedEvent] {
        var out: [NamedEvent] = []
        if let u = chunk.usage { usage = u }
        guard let choice = chunk.choices.first(where: { $0.index == 0 }) else { return out }
        if let text = choice.delta.content, !text.isEmpty {
            if open == nil || open?.toolCall != nil { out += openBlock(["type": "text", "text": ""], toolCall: nil) }
            out.append(
                NamedEvent(
                    "content_block_delta",
                    ["type": "content_block_delta", "index": .int(open!.index), "delta": ["type": "text_delta", "text": .string(text)]]))
        }
        for call in choice.delta.toolCalls ?? [] {
            if blockForToolCall[call.index] == nil {
                out += openBlock(
                    [
                        "type": "tool_use", "id": .string(call.id ?? "toolu_\(id)_\(call.index)"), "name": .string(call.function?.name ?? ""),
                        "input": .object([:]),
                    ], toolCall: call.index)
                blockForToolCall[call.index] = open!.index
            }
            if let arguments = call.function?.arguments, !arguments.isEmpty, let index = blockForToolCall[call.index] {
                out.append(
                    NamedEvent(
                        "content_block_delta",
                        ["type": "content_block_delta", "index": .int(index), "delta": ["type": "input_json_delta", "partial_json": .string(arguments)]]
                    ))
            }
        }
        if let reason = choice.finishReason { finishReason = reason }
        return out
    }

    /// The events that end the message, after the last chunk.
    public mutating func finish() -> [NamedEvent] {
        var out = close()
        out.append(
            NamedEvent(
                "message_delta",
                [
                    "type": "message_delta", "delta": ["stop_reason": .string(MessagesAPI.stopReason(finishReason)), "stop_sequence": .null],
                    "usage": [
                        "input_tokens": .int(usage?.promptTokens ?? estimatedInputTokens), "output_tokens": .int(usage?.completionTokens ?? 0),
                    ],
                ]))
        out.append(NamedEvent("message_stop", ["type": "message_stop"]))
        return out
    }
}
