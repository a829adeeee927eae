import NIOCore

/// What the pipeline answers: a whole completion, or a stream of chunks.
public enum InferenceResponse: Sendable {
    case completion(ChatResult)
    case stream(ChatStream)
}

/// A completion, with the upstream's bytes when they can be forwarded unchanged.
public struct ChatResult: Sendable {
    /// The completion, decoded.
    public private(set) var completion: ChatCompletion
    /// The upstream's encoding of `completion`; dropped as soon as a stage changes it.
    public private(set) var encoded: ByteBuffer?

    public init(completion: ChatCompletion, encoded: ByteBuffer? = nil) {
        self.completion = completion
        self.encoded = encoded
    }

    /// Changes the completion; the forwarded bytes no longer match, so they are dropped.
    public mutating func modify(_ body: (inout ChatCompletion) throws -> Void) rethrows {
        try body(&completion)
        encoded = nil
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
