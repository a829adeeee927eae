/// The body of `POST /v1/chat/completions`, as OpenAI defines it.
///
/// Fields Sluice interprets are typed; any other field is kept in `extra` and forwarded
/// verbatim to OpenAI-compatible upstreams (vLLM and llama.cpp accept many extensions).
public struct ChatCompletionRequest: Sendable, Hashable {
    public var model: String
    public var messages: [ChatMessage]
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    public var tools: [Tool]?
    public var toolChoice: JSONValue?
    public var parallelToolCalls: Bool?
    public var responseFormat: ResponseFormat?
    public var stop: StopSequences?
    public var maxTokens: Int?
    public var maxCompletionTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var seed: Int?
    public var user: String?
    public var n: Int?
    public var presencePenalty: Double?
    public var frequencyPenalty: Double?
    public var logitBias: [String: Double]?
    public var logprobs: Bool?
    public var topLogprobs: Int?
    /// Fields Sluice does not interpret, forwarded as they came.
    public var extra: [String: JSONValue]

    public init(model: String, messages: [ChatMessage], stream: Bool? = nil, maxTokens: Int? = nil, temperature: Double? = nil) {
        self.model = model
        self.messages = messages
        self.stream = stream
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.extra = [:]
    }

    /// Whether the client asked for an SSE stream.
    public var isStreaming: Bool { stream ?? false }

    /// The output-token cap the client asked for, whichever field carried it.
    public var outputTokenLimit: Int? { maxCompletionTokens ?? maxTokens }

    /// Whether a final usage chunk was requested for a stream.
    public var includeUsageInStream: Bool { streamOptions?.includeUsage ?? false }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, messages, stream, tools, stop, temperature, seed, user, n, logprobs
        case streamOptions = "stream_options"
        case toolChoice = "tool_choice"
        case parallelToolCalls = "parallel_tool_calls"
        case responseFormat = "response_format"
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
        case topP = "top_p"
        case presencePenalty = "presence_penalty"
        case frequencyPenalty = "frequency_penalty"
        case logitBias = "logit_bias"
        case topLogprobs = "top_logprobs"
    }

    static let knownKeys = Set(CodingKeys.allCases.map(\.rawValue))
}

extension ChatCompletionRequest: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.model = try c.decode(String.self, forKey: .model)
        self.messages = try c.decode([ChatMessage].self, forKey: .messages)
        self.stream = try c.decodeIfPresent(Bool.self, forKey: .stream)
        self.streamOptions = try c.decodeIfPresent(StreamOptions.self, forKey: .streamOptions)
        self.tools = try c.decodeIfPresent([Tool].self, forKey: .tools)
        self.toolChoice = try c.decodeIfPresent(JSONValue.self, forKey: .toolChoice)
        self.parallelToolCalls = try c.decodeIfPresent(Bool.self, forKey: .parallelToolCalls)
        self.responseFormat = try c.decodeIfPresent(ResponseFormat.self, forKey: .responseFormat)
        self.stop = try c.decodeIfPresent(StopSequences.self, forKey: .stop)
        self.maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens)
        self.maxCompletionTokens = try c.decodeIfPresent(Int.self, forKey: .maxCompletionTokens)
        self.temperature = try c.decodeIfPresent(Double.self, forKey: .temperature)
        self.topP = try c.decodeIfPresent(Double.self, forKey: .topP)
        self.seed = try c.decodeIfPresent(Int.self, forKey: .seed)
        self.user = try c.decodeIfPresent(String.self, forKey: .user)
        self.n = try c.decodeIfPresent(Int.self, forKey: .n)
        self.presencePenalty = try c.decodeIfPresent(Double.self, forKey: .presencePenalty)
        self.frequencyPenalty = try c.decodeIfPresent(Double.self, forKey: .frequencyPenalty)
        self.logitBias = try c.decodeIfPresent([String: Double].self, forKey: .logitBias)
        self.logprobs = try c.decodeIfPresent(Bool.self, forKey: .logprobs)
        self.topLogprobs = try c.decodeIfPresent(Int.self, forKey: .topLogprobs)

        var extra: [String: JSONValue] = [:]
        let all = try decoder.container(keyedBy: AnyCodingKey.self)
        for key in all.allKeys where !Self.knownKeys.contains(key.stringValue) {
            extra[key.stringValue] = try all.decode(JSONValue.self, forKey: key)
        }
        self.extra = extra
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model)
        try c.encode(messages, forKey: .messages)
        try c.encodeIfPresent(stream, forKey: .stream)
        try c.encodeIfPresent(streamOptions, forKey: .streamOptions)
        try c.encodeIfPresent(tools, forKey: .tools)
        try c.encodeIfPresent(toolChoice, forKey: .toolChoice)
        try c.encodeIfPresent(parallelToolCalls, forKey: .parallelToolCalls)
        try c.encodeIfPresent(responseFormat, forKey: .responseFormat)
        try c.encodeIfPresent(stop, forKey: .stop)
        try c.encodeIfPresent(maxTokens, forKey: .maxTokens)
        try c.encodeIfPresent(maxCompletionTokens, forKey: .maxCompletionTokens)
        try c.encodeIfPresent(temperature, forKey: .temperature)
        try c.encodeIfPresent(topP, forKey: .topP)
        try c.encodeIfPresent(seed, forKey: .seed)
        try c.encodeIfPresent(user, forKey: .user)
        try c.encodeIfPresent(n, forKey: .n)
        try c.encodeIfPresent(presencePenalty, forKey: .presencePenalty)
        try c.encodeIfPresent(frequencyPenalty, forKey: .frequencyPenalty)
        try c.encodeIfPresent(logitBias, forKey: .logitBias)
        try c.encodeIfPresent(logprobs, forKey: .logprobs)
        try c.encodeIfPresent(topLogprobs, forKey: .topLogprobs)
        if !extra.isEmpty {
            var all = encoder.container(keyedBy: AnyCodingKey.self)
            for (key, value) in extra {
                try all.encode(value, forKey: AnyCodingKey(key))
            }
        }
    }
}

/// `stream_options`.
public struct StreamOptions: Codable, Sendable, Hashable {
    public var includeUsage: Bool?
    public init(includeUsage: Bool?) { self.includeUsage = includeUsage }
    enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
}

/// `stop`: one string or up to four.
public enum StopSequences: Codable, Sendable, Hashable {
    case one(String)
    case many([String])

    /// The stop sequences as a list.
    public var values: [String] {
        switch self {
        case .one(let s): [s]
        case .many(let a): a
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            self = .one(s)
        } else if let a = try? c.decode([String].self) {
            self = .many(a)
        } else {
            throw DecodingError.typeMismatch(
                String.self, .init(codingPath: decoder.codingPath, debugDescription: "expected a string or an array of strings"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .one(let s): try c.encode(s)
        case .many(let a): try c.encode(a)
        }
    }
}

/// One message of a conversation.
public struct ChatMessage: Codable, Sendable, Hashable {
    public var role: Role
    public var content: MessageContent?
    public var name: String?
    public var toolCalls: [ToolCall]?
    public var toolCallId: String?
    public var refusal: String?
    /// The legacy `function_call` of an assistant message (before `tool_calls`), forwarded as sent.
    public var functionCall: FunctionCall?

    public init(role: Role, content: MessageContent?, name: String? = nil, toolCalls: [ToolCall]? = nil, toolCallId: String? = nil) {
        self.role = role
        self.content = content
        self.name = name
        self.toolCalls = toolCalls
        self.toolCallId = toolCallId
    }

    /// Shorthand for a plain text message.
    public init(role: Role, text: String) {
        self.init(role: role, content: .text(text))
    }

    enum CodingKeys: String, CodingKey {
        case role, content, name, refusal
        case toolCalls = "tool_calls"
        case toolCallId = "tool_call_id"
        case functionCall = "function_call"
    }

    /// The text of the message (text parts joined), empty when there is none.
    public var text: String { content?.text ?? "" }

    /// Message roles OpenAI defines.
    public enum Role: String, Codable, Sendable, Hashable {
        case system, developer, user, assistant, tool, function
    }
}

/// A message's `content`: a string or a list of typed parts (text, image_url, input_audio, file).
public enum MessageContent: Sendable, Hashable {
    case text(String)
    case parts([ContentPart])

    /// The text parts joined; non-text parts are skipped.
    public var text: String {
        switch self {
        case .text(let s): return s
        case .parts(let parts):
            var out = ""
            for part in parts {
                if let t = part.text { out += t }
            }
            return out
        }
    }
}

extension MessageContent: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            self = .text(s)
        } else if let p = try? c.decode([ContentPart].self) {
            self = .parts(p)
        } else {
            throw DecodingError.typeMismatch(
                String.self,
                .init(codingPath: decoder.codingPath, debugDescription: "expected a string or an array of content parts with a 'type'"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .text(let s): try c.encode(s)
        case .parts(let p): try c.encode(p)
        }
    }
}

/// One part of multi-part content; parts other than text are forwarded untouched.
public struct ContentPart: Codable, Sendable, Hashable {
    public var type: String
    public var text: String?
    /// The whole part as sent, for the kinds Sluice does not interpret.
    public var raw: JSONValue

    public init(text: String) {
        self.type = "text"
        self.text = text
        self.raw = ["type": "text", "text": .string(text)]
    }

    /// The same part with other text, every other member kept as sent (`cache_control`, say).
    public func replacingText(_ text: String) -> ContentPart {
        var part = self
        part.text = text
        if case .object(var members) = raw {
            members["text"] = .string(text)
            part.raw = .object(members)
        } else {
            part.raw = ["type": .string(type), "text": .string(text)]
        }
        return part
    }

    /// An image by URL (a `data:` URL for inline bytes).
    public init(imageURL url: String, detail: String? = nil) {
        var image: [String: JSONValue] = ["url": .string(url)]
        if let detail { image["detail"] = .string(detail) }
        self.init(type: "image_url", text: nil, raw: ["type": "image_url", "image_url": .object(image)])
    }

    init(type: String, text: String?, raw: JSONValue) {
        self.type = type
        self.text = text
        self.raw = raw
    }

    public init(from decoder: any Decoder) throws {
        let raw = try JSONValue(from: decoder)
        guard let type = raw["type"]?.stringValue else {
            throw DecodingError.keyNotFound(
                AnyCodingKey("type"), .init(codingPath: decoder.codingPath, debugDescription: "a content part needs a string 'type'"))
        }
        self.type = type
        self.text = raw["text"]?.stringValue
        if type == "text" && self.text == nil {
            throw DecodingError.keyNotFound(
                AnyCodingKey("text"), .init(codingPath: decoder.codingPath, debugDescription: "a text part needs a string 'text'"))
        }
        self.raw = raw
    }

    public func encode(to encoder: any Encoder) throws {
        try raw.encode(to: encoder)
    }
}

/// A tool the model may call.
public struct Tool: Codable, Sendable, Hashable {
    public var type: String
    /// A function tool's definition; for a custom tool, its name and description (what a
    /// provider that knows only functions would need).
    public var function: FunctionDefinition
    /// A custom tool (`type: custom`, free-form text input) as sent: `{name, description, format}`.
    public var custom: JSONValue?

    public init(function: FunctionDefinition) {
        self.type = "function"
        self.function = function
    }

    enum CodingKeys: String, CodingKey { case type, function, custom }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(String.self, forKey: .type)
        if type == "custom" {
            let custom = try c.decode(JSONValue.self, forKey: .custom)
            guard case .string(let name)? = custom["name"] else {
                throw DecodingError.keyNotFound(CodingKeys.function, .init(codingPath: c.codingPath + [CodingKeys.custom], debugDescription: "custom.name"))
            }
            self.custom = custom
            function = FunctionDefinition(name: name, description: custom["description"]?.stringValue)
        } else {
            function = try c.decode(FunctionDefinition.self, forKey: .function)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        if let custom { try c.encode(custom, forKey: .custom) } else { try c.encode(function, forKey: .function) }
    }
}

/// A function tool's definition.
public struct FunctionDefinition: Codable, Sendable, Hashable {
    public var name: String
    public var description: String?
    public var parameters: JSONValue?
    public var strict: Bool?

    public init(name: String, description: String? = nil, parameters: JSONValue? = nil) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }
}

/// A tool call made by the assistant.
public struct ToolCall: Codable, Sendable, Hashable {
    public var id: String
    public var type: String
    /// A function call; for a custom tool's call, its name and its input as the arguments.
    public var function: FunctionCall
    /// A custom tool's call (`type: custom`) as sent: `{name, input}`.
    public var custom: JSONValue?

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.type = "function"
        self.function = FunctionCall(name: name, arguments: arguments)
    }

    enum CodingKeys: String, CodingKey { case id, type, function, custom }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        type = try c.decode(String.self, forKey: .type)
        if type == "custom" {
            let custom = try c.decode(JSONValue.self, forKey: .custom)
            guard case .string(let name)? = custom["name"], case .string(let input)? = custom["input"] else {
                throw DecodingError.keyNotFound(CodingKeys.custom, .init(codingPath: c.codingPath + [CodingKeys.custom], debugDescription: "custom.name and custom.input"))
            }
            self.custom = custom
            function = FunctionCall(name: name, arguments: input)
        } else {
            function = try c.decode(FunctionCall.self, forKey: .function)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(type, forKey: .type)
        if let custom { try c.encode(custom, forKey: .custom) } else { try c.encode(function, forKey: .function) }
    }
}

/// The function a tool call invokes, with its arguments as a JSON string.
public struct FunctionCall: Codable, Sendable, Hashable {
    public var name: String
    public var arguments: String
}

/// `response_format`: `text`, `json_object`, or `json_schema` with a schema.
public struct ResponseFormat: Codable, Sendable, Hashable {
    public var type: String
    public var jsonSchema: JSONSchemaFormat?

    public init(type: String, jsonSchema: JSONSchemaFormat? = nil) {
        self.type = type
        self.jsonSchema = jsonSchema
    }

    enum CodingKeys: String, CodingKey {
        case type
        case jsonSchema = "json_schema"
    }

    /// `response_format.json_schema`.
    public struct JSONSchemaFormat: Codable, Sendable, Hashable {
        public var name: String
        public var description: String?
        public var schema: JSONValue?
        public var strict: Bool?

        public init(name: String, schema: JSONValue?, strict: Bool? = nil) {
            self.name = name
            self.schema = schema
            self.strict = strict
        }
    }
}
