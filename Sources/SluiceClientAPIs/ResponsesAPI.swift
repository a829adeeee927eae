import SluiceCore

/// A `POST /v1/responses` request, read: the chat request it runs (without the history a
/// `previous_response_id` brings), and what the response object echoes back.
public struct ResponsesRequest: Sendable {
    /// The chat request: `instructions` as a system message, then the new input's messages.
    public var chat: ChatCompletionRequest
    /// The new input as chat messages (what a stored response adds to the history).
    public var input: [ChatMessage]
    /// `instructions`, which OpenAI does not carry over to a response that continues this one.
    public var instructions: String?
    public var previousResponseID: String?
    /// Whether the response is kept for `GET` and `previous_response_id` (OpenAI's default: yes).
    public var store: Bool
    public var metadata: [String: JSONValue]
    /// The fields the response object repeats as they were sent (`tools`, `text`, …).
    public var echo: [String: JSONValue]

    /// The chat request with the stored history in front of the new input.
    public func chat(continuing history: [ChatMessage]) -> ChatCompletionRequest {
        var chat = chat
        chat.messages = (instructions.map { [ChatMessage(role: .system, text: $0)] } ?? []) + history + input
        return chat
    }
}

/// OpenAI's Responses API as clients speak it: a request becomes a chat request, a completion
/// becomes a response object, a chat stream becomes the typed event sequence. Pure functions.
public enum ResponsesAPI {
    public static func request(from body: JSONValue) throws -> ResponsesRequest {
        guard case .object(let fields) = body else {
            throw SluiceError(.invalidType, "The request body must be a JSON object.")
        }
        guard let model = fields["model"]?.stringValue, !model.isEmpty else {
            throw SluiceError(.missingParameter, "Missing required parameter: 'model'.", param: "model")
        }
        var input: [ChatMessage]
        switch fields["input"] {
        case .string(let s)?: input = [ChatMessage(role: .user, text: s)]
        case .array(let items)?: input = try messages(fromItems: items)
        case nil, .null?: throw SluiceError(.missingParameter, "Missing required parameter: 'input'.", param: "input")
        default: throw SluiceError(.invalidType, "input: expected a string or an array of input items.", param: "input")
        }
        var instructions: String?
        switch fields["instructions"] {
        case nil, .null?: break
        case .string(let s)?: instructions = s.isEmpty ? nil : s
        default: throw SluiceError(.invalidType, "instructions: expected a string.", param: "instructions")
        }
        var chat = ChatCompletionRequest(model: model, messages: (instructions.map { [ChatMessage(role: .system, text: $0)] } ?? []) + input)
        var echo: [String: JSONValue] = [:]
        switch fields["max_output_tokens"] {
        case nil, .null?: break
        case .int(let n)? where n >= 1:
            chat.maxCompletionTokens = n
            echo["max_output_tokens"] = .int(n)
        default: throw SluiceError(.invalidValue, "max_output_tokens: expected an integer of at least 1.", param: "max_output_tokens")
        }
        chat.temperature = try RequestFields.number(fields["temperature"], "temperature", in: 0...2)
        chat.topP = try RequestFields.number(fields["top_p"], "top_p", in: 0...1)
        switch fields["stream"] {
        case nil, .null?: break
        case .bool(let b)?: chat.stream = b
        default: throw SluiceError(.invalidType, "stream: expected a boolean.", param: "stream")
        }
        if chat.isStreaming { chat.streamOptions = StreamOptions(includeUsage: true) }
        if case .bool(let b)? = fields["parallel_tool_calls"] { chat.parallelToolCalls = b }
        if let user = fields["safety_identifier"]?.stringValue ?? fields["user"]?.stringValue { chat.user = user }
        if let tools = fields["tools"], tools != .null {
            let parsed = try Self.tools(tools)
            if !parsed.isEmpty { chat.tools = parsed }
            echo["tools"] = tools
        }
        if let choice = fields["tool_choice"], choice != .null {
            chat.toolChoice = try toolChoice(choice)
            echo["tool_choice"] = choice
        }
        if let text = fields["text"], text != .null {
            if let format = text["format"], format != .null { chat.responseFormat = try responseFormat(format) }
            echo["text"] = text
        }
        var metadata: [String: JSONValue] = [:]
        switch fields["metadata"] {
        case nil, .null?: break
        case .object(let o)?:
            guard o.count <= 16, o.values.allSatisfy({ $0.stringValue != nil }) else {
                throw SluiceError(.invalidValue, "metadata: at most 16 string values.", param: "metadata")
            }
            metadata = o
        default: throw SluiceError(.invalidType, "metadata: expected an object of strings.", param: "metadata")
        }
        var previous: String?
        switch fields["previous_response_id"] {
        case nil, .null?: break
        case .string(let s)? where !s.isEmpty: previous = s
        default: throw SluiceError(.invalidType, "previous_response_id: expected a response id.", param: "previous_response_id")
        }
        var store = true
        switch fields["store"] {
        case nil, .null?: break
        case .bool(let b)?: store = b
        default: throw SluiceError(.invalidType, "store: expected a boolean.", param: "store")
        }
        for key in ["temperature", "top_p", "parallel_tool_calls", "user", "truncation", "reasoning", "service_tier"] {
            if let v = fields[key], v != .null { echo[key] = v }
        }
        return ResponsesRequest(
            chat: chat, input: input, instructions: instructions, previousResponseID: previous, store: store, metadata: metadata, echo: echo)
    }

    /// Input items as chat messages: messages by role, `function_call` items folded into the
    /// assistant message before them, `function_call_output` items as tool messages.
    public static func messages(fromItems items: [JSONValue]) throws -> [ChatMessage] {
        var out: [ChatMessage] = []
        for (i, item) in items.enumerated() {
            let param = "input[\(i)]"
            guard case .object = item else {
                throw SluiceError(.invalidType, "\(param): expected an input item object.", param: param)
            }
            let type = item["type"]?.stringValue ?? (item["role"] != nil ? "message" : nil)
            switch type {
            case "message":
                out.append(try message(item, param: param))
            case "function_call":
                guard let callID = item["call_id"]?.stringValue, let name = item["name"]?.stringValue else {
                    throw SluiceError(.missingParameter, "\(param): a function_call item needs 'call_id' and 'name'.", param: param)
                }
                let call = ToolCall(id: callID, name: name, arguments: item["arguments"]?.stringValue ?? "{}")
                if let last = out.last, last.role == .assistant {
                    out[out.count - 1].toolCalls = (last.toolCalls ?? []) + [call]
                } else {
                    out.append(ChatMessage(role: .assistant, content: nil, toolCalls: [call]))
                }
            case "function_call_output":
                guard let callID = item["call_id"]?.stringValue else {
                    throw SluiceError(.missingParameter, "\(param).call_id: a function_call_output item needs it.", param: param + ".call_id")
                }
                let output: String
                switch item["output"] {
                case .string(let s)?: output = s
                case .array(let parts)?: output = parts.compactMap { $0["text"]?.stringValue }.joined()
                default:
                    throw SluiceError(.missingParameter, "\(param).output: a function_call_output item needs a string 'output'.", param: param + ".output")
                }
                out.append(ChatMessage(role: .tool, content: .text(output), toolCallId: callID))
            case "reasoning":
                continue  // Reasoning another model wrote: no chat model reads it back.
            case let other?:
                throw SluiceError(
                    .unsupported, "\(param).type: input items of type '\(other)' are not supported (message, function_call, function_call_output are).",
                    param: param + ".type")
            case nil:
                throw SluiceError(.missingParameter, "\(param).type: an input item needs a 'type' or a 'role'.", param: param + ".type")
            }
        }
        return out
    }

    static func message(_ item: JSONValue, param: String) throws -> ChatMessage {
        let role: ChatMessage.Role
        switch item["role"]?.stringValue {
        case "user": role = .user
        case "assistant": role = .assistant
        case "system": role = .system
        case "developer": role = .developer
        default: throw SluiceError(.invalidValue, "\(param).role: expected user, assistant, system or developer.", param: param + ".role")
        }
        switch item["content"] {
        case .string(let s)?: return ChatMessage(role: role, text: s)
        case .array(let parts)?:
            var converted: [ContentPart] = []
            for (j, part) in parts.enumerated() {
                let p = "\(param).content[\(j)]"
                switch part["type"]?.stringValue {
                case "input_text", "output_text", "text":
                    guard let t = part["text"]?.stringValue else {
                        throw SluiceError(.missingParameter, "\(p).text: a text part needs a string 'text'.", param: p + ".text")
                    }
                    converted.append(ContentPart(text: t))
                case "refusal":
                    converted.append(ContentPart(text: part["refusal"]?.stringValue ?? ""))
                case "input_image":
                    guard let url = part["image_url"]?.stringValue else {
                        throw SluiceError(
                            .unsupported, "\(p): images are taken by 'image_url' (a URL or a data: URL); 'file_id' is not supported.", param: p + ".image_url")
                    }
                    converted.append(ContentPart(imageURL: url, detail: part["detail"]?.stringValue))
                case let other:
                    throw SluiceError(
                        .unsupported, "\(p).type: content parts of type '\(other ?? "none")' are not supported (input_text, output_text, input_image are).",
                        param: p + ".type")
                }
            }
            if role != .user || converted.allSatisfy({ $0.type == "text" }) {
                return ChatMessage(role: role, text: converted.compactMap(\.text).joined())
            }
            return ChatMessage(role: role, content: .parts(converted))
        default:
            throw SluiceError(.invalidType, "\(param).content: expected a string or an array of content parts.", param: param + ".content")
        }
    }

    static func tools(_ value: JSONValue) throws -> [Tool] {
        guard case .array(let items) = value else {
            throw SluiceError(.invalidType, "tools: expected an array of tools.", param: "tools")
        }
        return try items.enumerated().map { i, tool in
            guard tool["type"]?.stringValue == "function" else {
                throw SluiceError(
                    .unsupported,
                    "tools[\(i)].type: only function tools are supported ('\(tool["type"]?.stringValue ?? "none")' is a hosted tool Sluice does not run).",
                    param: "tools[\(i)].type")
            }
            guard let name = tool["name"]?.stringValue, !name.isEmpty else {
                throw SluiceError(.missingParameter, "tools[\(i)].name: a function tool needs a name.", param: "tools[\(i)].name")
            }
            var function = FunctionDefinition(name: name, description: tool["description"]?.stringValue, parameters: tool["parameters"])
            if case .bool(let strict)? = tool["strict"] { function.strict = strict }
            return Tool(function: function)
        }
    }

    static func toolChoice(_ choice: JSONValue) throws -> JSONValue {
        switch choice {
        case .string("auto"), .string("none"), .string("required"): return choice
        case .object(let o) where o["type"]?.stringValue == "function":
            guard let name = o["name"]?.stringValue else {
                throw SluiceError(.missingParameter, "tool_choice.name: required when type is 'function'.", param: "tool_choice.name")
            }
            return ["type": "function", "function": ["name": .string(name)]]
        default:
            throw SluiceError(.invalidValue, "tool_choice: expected 'auto', 'none', 'required' or {\"type\": \"function\", \"name\"}.", param: "tool_choice")
        }
    }

    static func responseFormat(_ format: JSONValue) throws -> ResponseFormat {
        switch format["type"]?.stringValue {
        case "text": return ResponseFormat(type: "text")
        case "json_object": return ResponseFormat(type: "json_object")
        case "json_schema":
            guard let name = format["name"]?.stringValue, let schema = format["schema"], case .object = schema else {
                throw SluiceError(.missingParameter, "text.format: a json_schema format needs 'name' and 'schema'.", param: "text.format")
            }
            var strict: Bool?
            if case .bool(let b)? = format["strict"] { strict = b }
            var json = ResponseFormat.JSONSchemaFormat(name: name, schema: schema, strict: strict)
            json.description = format["description"]?.stringValue
            return ResponseFormat(type: "json_schema", jsonSchema: json)
        default:
            throw SluiceError(.invalidValue, "text.format.type: expected 'text', 'json_object' or 'json_schema'.", param: "text.format.type")
        }
    }

    /// The assistant's turn as a chat message (what a stored response adds to the history).
    public static func assistantMessage(_ completion: ChatCompletion) -> ChatMessage {
        let message = completion.choices.first?.message
        var out = ChatMessage(role: .assistant, content: message?.content.map { .text($0) })
        if let calls = message?.toolCalls, !calls.isEmpty { out.toolCalls = calls }
        return out
    }

    /// The output items of a completion.
    public static func output(of completion: ChatCompletion, responseID: String) -> [JSONValue] {
        var items: [JSONValue] = []
        let message = completion.choices.first?.message
        if let text = message?.content, !text.isEmpty || message?.toolCalls?.isEmpty != false {
            items.append(messageItem(id: itemID("msg", responseID, 0), text: text, status: "completed"))
        }
        for (i, call) in (message?.toolCalls ?? []).enumerated() {
            items.append(
                functionCallItem(id: itemID("fc", responseID, i + 1), callID: call.id, name: call.function.name, arguments: call.function.arguments, status: "completed"))
        }
        return items
    }

    static func itemID(_ prefix: String, _ responseID: String, _ n: Int) -> String {
        prefix + "_" + responseID.dropFirst("resp_".count) + (n == 0 ? "" : "_\(n)")
    }

    static func messageItem(id: String, text: String, status: String) -> JSONValue {
        [
            "type": "message", "id": .string(id), "status": .string(status), "role": "assistant",
            "content": status == "in_progress" ? [] : [outputText(text)],
        ]
    }

    static func outputText(_ text: String) -> JSONValue {
        ["type": "output_text", "text": .string(text), "annotations": [], "logprobs": []]
    }

    static func functionCallItem(id: String, callID: String, name: String, arguments: String, status: String) -> JSONValue {
        ["type": "function_call", "id": .string(id), "call_id": .string(callID), "name": .string(name), "arguments": .string(arguments), "status": .string(status)]
    }

    /// The response object. `status` is `in_progress`, `completed`, `incomplete` or `failed`.
    public static func response(
        id: String, createdAt: Int, model: String, request: ResponsesRequest, status: String, output: [JSONValue], usage: Usage?,
        finishReason: String?
    ) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id), "object": "response", "created_at": .int(createdAt), "status": .string(status), "error": .null,
            "incomplete_details": .null, "instructions": request.instructions.map { .string($0) } ?? .null,
            "max_output_tokens": .null, "model": .string(model), "output": .array(output), "parallel_tool_calls": true,
            "previous_response_id": request.previousResponseID.map { .string($0) } ?? .null, "reasoning": ["effort": .null, "summary": .null],
            "store": .bool(request.store), "temperature": 1.0, "text": ["format": ["type": "text"]], "tool_choice": "auto", "tools": [],
            "top_p": 1.0, "truncation": "disabled", "user": .null, "metadata": .object(request.metadata),
            "usage": usage.map { responseUsage($0) } ?? .null,
        ]
        for (key, value) in request.echo { object[key] = value }
        if status == "incomplete" {
            object["incomplete_details"] = ["reason": finishReason == "content_filter" ? "content_filter" : "max_output_tokens"]
        }
        return .object(object)
    }

    /// `completed`, or `incomplete` when the answer was cut short.
    public static func status(finishReason: String?) -> String {
        finishReason == "length" || finishReason == "content_filter" ? "incomplete" : "completed"
    }

    static func responseUsage(_ usage: Usage) -> JSONValue {
        [
            "input_tokens": .int(usage.promptTokens), "input_tokens_details": ["cached_tokens": 0],
            "output_tokens": .int(usage.completionTokens), "output_tokens_details": ["reasoning_tokens": 0],
            "total_tokens": .int(usage.promptTokens + usage.completionTokens),
        ]
    }
}

/// Turns a chat stream into the Responses API's typed events: `response.created`,
/// `response.in_progress`, per output item `response.output_item.added`, its deltas and
/// `…done` events, then `response.completed` (or `response.incomplete`). One per stream.
public struct ResponsesStreamWriter: Sendable {
    let id: String
    let createdAt: Int
    let model: String
    let request: ResponsesRequest
    var sequence = 0
    /// Output items so far, completed ones in their final form.
    var items: [JSONValue] = []
    /// The item being written: its output index, and the chat tool-call index for a function call.
    var open: (index: Int, toolCall: Int?)?
    var text = ""
    var messageID = ""
    /// Every text run, for the stored assistant turn.
    var allText = ""
    var calls: [Int: (outputIndex: Int, id: String, callID: String, name: String, arguments: String)] = [:]
    var finishReason: String?
    var usage: Usage?
    /// The assistant's turn as it was streamed, for the stored history.
    public private(set) var assistant = ChatMessage(role: .assistant, content: nil)

    public init(id: String, createdAt: Int, model: String, request: ResponsesRequest) {
        self.id = id
        self.createdAt = createdAt
        self.model = model
        self.request = request
    }

    mutating func event(_ type: String, _ fields: [String: JSONValue]) -> NamedEvent {
        var data = fields
        data["type"] = .string(type)
        data["sequence_number"] = .int(sequence)
        sequence += 1
        return NamedEvent(type, .object(data))
    }

    func snapshot(status: String) -> JSONValue {
        ResponsesAPI.response(
            id: id, createdAt: createdAt, model: model, request: request, status: status, output: items, usage: status == "in_progress" ? nil : usage,
            finishReason: finishReason)
    }

    public mutating func start() -> [NamedEvent] {
        let created = snapshot(status: "in_progress")
        return [event("response.created", ["response": created]), event("response.in_progress", ["response": created])]
    }

    mutating func close() -> [NamedEvent] {
        guard let current = open else { return [] }
        open = nil
        if let toolCall = current.toolCall, let call = calls[toolCall] {
            let item = ResponsesAPI.functionCallItem(id: call.id, callID: call.callID, name: call.name, arguments: call.arguments, status: "completed")
            items[current.index] = item
            return [
                event(
                    "response.function_call_arguments.done",
                    ["item_id": .string(call.id), "output_index": .int(current.index), "arguments": .string(call.arguments), "name": .string(call.name)]),
                event("response.output_item.done", ["output_index": .int(current.index), "item": item]),
            ]
        }
        let itemID = messageID
        let item = ResponsesAPI.messageItem(id: itemID, text: text, status: "completed")
        items[current.index] = item
        let at: [String: JSONValue] = ["item_id": .string(itemID), "output_index": .int(current.index), "content_index": 0]
        return [
            event("response.output_text.done", at.merging(["text": .string(text), "logprobs": []]) { a, _ in a }),
            event("response.content_part.done", at.merging(["part": ResponsesAPI.outputText(text)]) { a, _ in a }),
            event("response.output_item.done", ["output_index": .int(current.index), "item": item]),
        ]
    }

    mutating func openMessage() -> [NamedEvent] {
        var out = close()
        let index = items.count
        // Text after a tool call is a message item of its own.
        text = ""
        messageID = ResponsesAPI.itemID("msg", id, index)
        let itemID = messageID
        let item = ResponsesAPI.messageItem(id: itemID, text: "", status: "in_progress")
        items.append(item)
        open = (index, nil)
        out.append(event("response.output_item.added", ["output_index": .int(index), "item": item]))
        out.append(
            event(
                "response.content_part.added",
                ["item_id": .string(itemID), "output_index": .int(index), "content_index": 0, "part": ResponsesAPI.outputText("")]))
        return out
    }

    public mutating func events(for chunk: ChatCompletionChunk) -> [NamedEvent] {
        var out: [NamedEvent] = []
        if let u = chunk.usage { usage = u }
        guard let choice = chunk.choices.first(where: { $0.index == 0 }) else { return out }
        if let delta = choice.delta.content, !delta.isEmpty {
            if open == nil || open?.toolCall != nil { out += openMessage() }
            text += delta
            allText += delta
            out.append(
                event(
                    "response.output_text.delta",
                    [
                        "item_id": .string(messageID), "output_index": .int(open!.index), "content_index": 0,
                        "delta": .string(delta), "logprobs": [],
                    ]))
        }
        for call in choice.delta.toolCalls ?? [] {
            if calls[call.index] == nil {
                out += close()
                let index = items.count
                let itemID = ResponsesAPI.itemID("fc", id, call.index + 1)
                let callID = call.id ?? "call_\(id.dropFirst(5))_\(call.index)"
                let name = call.function?.name ?? ""
                calls[call.index] = (index, itemID, callID, name, "")
                let item = ResponsesAPI.functionCallItem(id: itemID, callID: callID, name: name, arguments: "", status: "in_progress")
                items.append(item)
                open = (index, call.index)
                out.append(event("response.output_item.added", ["output_index": .int(index), "item": item]))
            }
            if let arguments = call.function?.arguments, !arguments.isEmpty, var state = calls[call.index] {
                state.arguments += arguments
                calls[call.index] = state
                out.append(
                    event(
                        "response.function_call_arguments.delta",
                        ["item_id": .string(state.id), "output_index": .int(state.outputIndex), "delta": .string(arguments)]))
            }
        }
        if let reason = choice.finishReason { finishReason = reason }
        return out
    }

    /// The events that end the stream; `response` is the final response object (for storing).
    public mutating func finish() -> (events: [NamedEvent], response: JSONValue) {
        var out = close()
        let status = ResponsesAPI.status(finishReason: finishReason)
        let final = snapshot(status: status)
        out.append(event(status == "completed" ? "response.completed" : "response.incomplete", ["response": final]))
        assistant = ChatMessage(role: .assistant, content: allText.isEmpty && !calls.isEmpty ? nil : .text(allText))
        let ordered = calls.sorted { $0.key < $1.key }.map { ToolCall(id: $0.value.callID, name: $0.value.name, arguments: $0.value.arguments) }
        if !ordered.isEmpty { assistant.toolCalls = ordered }
        return (out, final)
    }

    /// The event that ends a stream which failed after it started.
    public mutating func failure(_ error: SluiceError) -> NamedEvent {
        event("error", ["code": .string(error.code.wireValue), "message": .string(error.message), "param": error.param.map { .string($0) } ?? .null])
    }
}
