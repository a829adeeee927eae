/// A non-streamed chat completion (`object: "chat.completion"`).
public struct ChatCompletion: Codable, Sendable, Hashable {
    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [Choice]
    public var usage: Usage?
    public var systemFingerprint: String?

    public init(id: String, created: Int, model: String, choices: [Choice], usage: Usage?) {
        self.id = id
        self.object = "chat.completion"
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
    }

    enum CodingKeys: String, CodingKey {
        case id, object, created, model, choices, usage
        case systemFingerprint = "system_fingerprint"
    }

    /// One choice of a completion.
    public struct Choice: Codable, Sendable, Hashable {
        public var index: Int
        public var message: AssistantMessage
        public var finishReason: String?
        public var logprobs: JSONValue?

        public init(index: Int, message: AssistantMessage, finishReason: String?) {
            self.index = index
            self.message = message
            self.finishReason = finishReason
        }

        enum CodingKeys: String, CodingKey {
            case index, message, logprobs
            case finishReason = "finish_reason"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(message, forKey: .message)
            try c.encode(finishReason, forKey: .finishReason)
            // OpenAI's schema requires `logprobs` (null when not asked for); typed clients expect it.
            try c.encode(logprobs ?? .null, forKey: .logprobs)
        }
    }
}

/// The assistant's message in a completion.
public struct AssistantMessage: Codable, Sendable, Hashable {
    public var role: String
    public var content: String?
    public var toolCalls: [ToolCall]?
    public var refusal: String?

    public init(content: String?, toolCalls: [ToolCall]? = nil) {
        self.role = "assistant"
        self.content = content
        self.toolCalls = toolCalls
    }

    enum CodingKeys: String, CodingKey {
        case role, content, refusal
        case toolCalls = "tool_calls"
    }

    // `content` and `refusal` are written as null when absent, as OpenAI does (its schema requires both).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(role, forKey: .role)
        try c.encode(content, forKey: .content)
        try c.encodeIfPresent(toolCalls, forKey: .toolCalls)
        try c.encode(refusal, forKey: .refusal)
    }
}

/// Token usage of one call.
public struct Usage: Codable, Sendable, Hashable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = promptTokens + completionTokens
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case totalTokens = "total_tokens"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.promptTokens = try c.decodeIfPresent(Int.self, forKey: .promptTokens) ?? 0
        self.completionTokens = try c.decodeIfPresent(Int.self, forKey: .completionTokens) ?? 0
        self.totalTokens = try c.decodeIfPresent(Int.self, forKey: .totalTokens) ?? (promptTokens + completionTokens)
    }
}

/// One event of a streamed completion (`object: "chat.completion.chunk"`).
public struct ChatCompletionChunk: Codable, Sendable, Hashable {
    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [Choice]
    public var usage: Usage?
    /// Sluice's own notes on the stream, on its final chunk (clients that do not know them ignore them).
    public var sluice: StreamAnnotations?

    public init(id: String, created: Int, model: String, choices: [Choice], usage: Usage? = nil) {
        self.id = id
        self.object = "chat.completion.chunk"
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
    }

    /// One choice's delta.
    public struct Choice: Codable, Sendable, Hashable {
        public var index: Int
        public var delta: Delta
        public var finishReason: String?

        public init(index: Int, delta: Delta, finishReason: String? = nil) {
            self.index = index
            self.delta = delta
            self.finishReason = finishReason
        }

        enum CodingKeys: String, CodingKey {
            case index, delta
            case finishReason = "finish_reason"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(delta, forKey: .delta)
            try c.encode(finishReason, forKey: .finishReason)
        }
    }

    /// What a chunk adds to the message.
    public struct Delta: Codable, Sendable, Hashable {
        public var role: String?
        public var content: String?
        public var toolCalls: [ToolCallDelta]?
        public var refusal: String?

        public init(role: String? = nil, content: String? = nil, toolCalls: [ToolCallDelta]? = nil) {
            self.role = role
            self.content = content
            self.toolCalls = toolCalls
        }

        enum CodingKeys: String, CodingKey {
            case role, content, refusal
            case toolCalls = "tool_calls"
        }
    }

    /// A fragment of a tool call in a stream; `index` says which call it extends.
    public struct ToolCallDelta: Codable, Sendable, Hashable {
        public var index: Int
        public var id: String?
        public var type: String?
        public var function: FunctionDelta?

        public init(index: Int, id: String? = nil, type: String? = nil, function: FunctionDelta? = nil) {
            self.index = index
            self.id = id
            self.type = type
            self.function = function
        }
    }

    /// A fragment of a function call: its name once, then pieces of its arguments.
    public struct FunctionDelta: Codable, Sendable, Hashable {
        public var name: String?
        public var arguments: String?

        public init(name: String? = nil, arguments: String? = nil) {
            self.name = name
            self.arguments = arguments
        }
    }
}

/// What Sluice tells a streaming client about the answer as a whole, in the final chunk.
public struct StreamAnnotations: Codable, Sendable, Hashable {
    /// True when the streamed answer was checked against `response_format`'s JSON Schema and
    /// matched it (an answer that does not match ends with an error event instead).
    public var schemaValid: Bool?

    public init(schemaValid: Bool? = nil) { self.schemaValid = schemaValid }

    enum CodingKeys: String, CodingKey {
        case schemaValid = "schema_valid"
    }
}
