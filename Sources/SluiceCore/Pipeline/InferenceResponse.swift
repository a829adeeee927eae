import NIOCore

/// What the pipeline answers: a whole completion, or a stream of chunks.
public enum InferenceResponse: Sendable {
    case completion(ChatResult)
    case stream(ChatStream)
}

/// A completion: either decoded, or the upstream's bytes forwarded unchanged with just what
/// accounting needs read from them (usage, finish reason). A stage that needs the whole
/// completion calls `completion()`; a stage that changes it calls `modify`.
public struct ChatResult: Sendable {
    /// The upstream's bytes; dropped as soon as a stage changes the completion.
    public private(set) var encoded: ByteBuffer?
    private var decoded: ChatCompletion?
    /// Token usage, if the upstream reported it.
    public private(set) var usage: Usage?
    /// The first choice's finish reason.
    public private(set) var finishReason: String?

    /// A completion built in-process (a provider that translates, a cache, a stage).
    public init(completion: ChatCompletion) {
        self.decoded = completion
        self.usage = completion.usage
        self.finishReason = completion.choices.first?.finishReason
    }

    /// An upstream's answer, read only as far as accounting needs; throws if it is not a
    /// chat completion at all.
    public init(encoded: ByteBuffer) throws {
        self.encoded = encoded
        if let summary = CompletionSummaryReader.read(encoded) {
            self.usage = summary.usage
            self.finishReason = summary.finishReason
        } else {
            let summary = try JSONCoding.decode(CompletionSummary.self, from: encoded)
            self.usage = summary.usage
            self.finishReason = summary.choices.first?.finishReason
        }
    }

    /// The whole completion, decoding the upstream's bytes if that has not happened yet.
    public func completion() throws -> ChatCompletion {
        if let decoded { return decoded }
        guard let encoded else { throw SluiceError(.internalError, "A completion has neither a value nor bytes.") }
        return try JSONCoding.decode(ChatCompletion.self, from: encoded)
    }

    /// Changes the completion; the forwarded bytes no longer match, so they are dropped.
    public mutating func modify(_ body: (inout ChatCompletion) throws -> Void) throws {
        var value = try completion()
        try body(&value)
        decoded = value
        encoded = nil
        usage = value.usage
        finishReason = value.choices.first?.finishReason
    }

    /// The bytes to send to the client.
    public func bytes() throws -> ByteBuffer {
        if let encoded { return encoded }
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

/// One event of a stream, with the upstream's bytes for its `data:` payload when they can be
/// forwarded unchanged.
public struct ChatStreamEvent: Sendable {
    public private(set) var chunk: ChatCompletionChunk
    public private(set) var encoded: ByteBuffer?

    public init(chunk: ChatCompletionChunk, encoded: ByteBuffer? = nil) {
        self.chunk = chunk
        self.encoded = encoded
    }

    /// Changes the chunk; the forwarded bytes are dropped.
    public mutating func modify(_ body: (inout ChatCompletionChunk) throws -> Void) rethrows {
        try body(&chunk)
        encoded = nil
    }
}
