import NIOCore

/// What the pipeline answers: a whole completion, a stream of chunks, or embeddings.
public enum InferenceResponse: Sendable {
    case completion(ChatResult)
    case stream(ChatStream)
    case embeddings(EmbeddingsResponse)
}

/// A completion: either decoded, or the upstream's bytes forwarded unchanged with just what
/// accounting needs read from them (usage, finish reason). A stage that needs the whole
/// completion calls `completion()`; a stage that changes it calls `modify`.
///
/// Its fields live in one immutable object that `modify` replaces: a result is a single
/// reference wide, so the async frames that pass it along each stage (each holds a few copies
/// across its suspension points) stay small.
public struct ChatResult: Sendable {
    private final class Storage: Sendable {
        let encoded: ByteBuffer?
        let decoded: ChatCompletion?
        let usage: Usage?
        let finishReason: String?

        init(encoded: ByteBuffer?, decoded: ChatCompletion?, usage: Usage?, finishReason: String?) {
            self.encoded = encoded
            self.decoded = decoded
            self.usage = usage
            self.finishReason = finishReason
        }
    }

    private var storage: Storage

    /// The upstream's bytes; dropped as soon as a stage changes the completion.
    public var encoded: ByteBuffer? { storage.encoded }
    /// Token usage, if the upstream reported it.
    public var usage: Usage? { storage.usage }
    /// The first choice's finish reason.
    public var finishReason: String? { storage.finishReason }

    /// A completion built in-process (a provider that translates, a cache, a stage).
    public init(completion: ChatCompletion) {
        storage = Storage(encoded: nil, decoded: completion, usage: completion.usage, finishReason: completion.choices.first?.finishReason)
    }

    /// An upstream's answer, read only as far as accounting needs; throws if it is not a
    /// chat completion at all.
    public init(encoded: ByteBuffer) throws {
        if let summary = SummaryReader.completion(encoded) {
            storage = Storage(encoded: encoded, decoded: nil, usage: summary.usage, finishReason: summary.finishReason)
        } else {
            let summary = try JSONCoding.decode(CompletionSummary.self, from: encoded)
            storage = Storage(encoded: encoded, decoded: nil, usage: summary.usage, finishReason: summary.choices.first?.finishReason)
        }
    }

    /// The whole completion, decoding the upstream's bytes if that has not happened yet.
    public func completion() throws -> ChatCompletion {
        if let decoded = storage.decoded { return decoded }
        guard let encoded = storage.encoded else { throw SluiceError(.internalError, "A completion has neither a value nor bytes.") }
        return try JSONCoding.decode(ChatCompletion.self, from: encoded)
    }

    /// Every choice's text and tool calls (what the audit log keeps of an answer), read from the
    /// upstream's bytes without decoding the completion when a stage did not change it.
    public func answerText() throws -> [AnswerText] {
        if storage.decoded == nil, let encoded = storage.encoded, let read = SummaryReader.answer(encoded) { return read }
        return try completion().choices.map { choice in
            AnswerText(
                content: choice.message.content,
                toolCalls: (choice.message.toolCalls ?? []).map { .init(name: $0.function.name, arguments: $0.function.arguments) })
        }
    }

    /// Changes the completion; the forwarded bytes no longer match, so they are dropped.
    public mutating func modify(_ body: (inout ChatCompletion) throws -> Void) throws {
        var value = try completion()
        try body(&value)
        storage = Storage(encoded: nil, decoded: value, usage: value.usage, finishReason: value.choices.first?.finishReason)
    }

    /// The bytes to send to the client.
    public func bytes() throws -> ByteBuffer {
        if let encoded = storage.encoded { return encoded }
        return try JSONCoding.encode(completion())
    }

    /// Just the fields of a completion accounting needs.
    struct CompletionSummary: Decodable {
        struct Choice: Decodable {
            var finishReason: String?
            enum CodingKeys: String, CodingKey { case finishReason = "finish_reason" }
        }
        var choices: [Choice]
        var usage: Usage?
    }
}

/// One choice of an answer as text: its content and its tool calls.
public struct AnswerText: Sendable, Hashable {
    public struct ToolCall: Sendable, Hashable {
        public var name: String
        public var arguments: String

        public init(name: String, arguments: String) {
            self.name = name
            self.arguments = arguments
        }
    }

    public var content: String?
    public var toolCalls: [ToolCall]

    public init(content: String? = nil, toolCalls: [ToolCall] = []) {
        self.content = content
        self.toolCalls = toolCalls
    }
}

/// One event of a stream: either a decoded chunk, or the upstream's bytes for its `data:`
/// payload with just what accounting needs read from them. A stage that needs the whole chunk
/// calls `chunk()`; a stage that changes it calls `modify`, which drops the bytes.
///
/// One reference wide, as `ChatResult` is: every wrapper of a stream holds a few events in its
/// `next()` frame, and a held stream keeps those frames for as long as it lasts.
public struct ChatStreamEvent: Sendable {
    private final class Storage: Sendable {
        let encoded: ByteBuffer?
        let decoded: ChatCompletionChunk?
        let summary: ChunkSummary

        init(encoded: ByteBuffer?, decoded: ChatCompletionChunk?, summary: ChunkSummary) {
            self.encoded = encoded
            self.decoded = decoded
            self.summary = summary
        }
    }

    private var storage: Storage

    /// The upstream's bytes; dropped as soon as a stage changes the chunk.
    public var encoded: ByteBuffer? { storage.encoded }
    /// Usage, finish reason and output size, read without decoding the chunk.
    public var summary: ChunkSummary { storage.summary }

    /// A chunk built in-process.
    public init(chunk: ChatCompletionChunk) {
        storage = Storage(encoded: nil, decoded: chunk, summary: ChunkSummary(chunk))
    }

    /// An upstream's chunk, read only as far as accounting needs; throws if it is not a chunk.
    public init(encoded: ByteBuffer) throws {
        if let summary = SummaryReader.chunk(encoded) {
            storage = Storage(encoded: encoded, decoded: nil, summary: summary)
        } else {
            let chunk = try JSONCoding.decode(ChatCompletionChunk.self, from: encoded)
            storage = Storage(encoded: encoded, decoded: chunk, summary: ChunkSummary(chunk))
        }
    }

    /// The whole chunk, decoding the upstream's bytes if that has not happened yet.
    public func chunk() throws -> ChatCompletionChunk {
        if let decoded = storage.decoded { return decoded }
        guard let encoded = storage.encoded else { throw SluiceError(.internalError, "A stream event has neither a value nor bytes.") }
        return try JSONCoding.decode(ChatCompletionChunk.self, from: encoded)
    }

    /// The first choice's `delta.content`, read from the upstream's bytes when they are kept.
    public func firstDeltaContent() throws -> String? {
        if storage.decoded == nil, let encoded = storage.encoded, let read = SummaryReader.firstDeltaContent(encoded) { return read }
        return try chunk().choices.first?.delta.content
    }

    /// Changes the chunk; the forwarded bytes are dropped.
    public mutating func modify(_ body: (inout ChatCompletionChunk) throws -> Void) throws {
        var value = try chunk()
        try body(&value)
        storage = Storage(encoded: nil, decoded: value, summary: ChunkSummary(value))
    }

    /// The `data:` payload to send.
    public func bytes() throws -> ByteBuffer {
        if let encoded = storage.encoded { return encoded }
        return try JSONCoding.encode(chunk())
    }
}

/// What accounting needs from a stream chunk.
public struct ChunkSummary: Sendable, Hashable {
    /// Usage, on the chunk that reports it.
    public var usage: Usage?
    /// The last finish reason among the chunk's choices.
    public var finishReason: String?
    /// Bytes of content and tool-call text the chunk adds (as written; for estimates and for
    /// noticing the first token).
    public var outputBytes = 0
    /// How many choices the chunk has (a usage-only chunk has none).
    public var choiceCount = 0

    public init() {}

    init(_ chunk: ChatCompletionChunk) {
        usage = chunk.usage
        choiceCount = chunk.choices.count
        for choice in chunk.choices {
            outputBytes += choice.delta.content?.utf8.count ?? 0
            for call in choice.delta.toolCalls ?? [] {
                outputBytes += (call.function?.arguments?.utf8.count ?? 0) + (call.function?.name?.utf8.count ?? 0)
            }
            if let f = choice.finishReason { finishReason = f }
        }
    }
}
