import NIOHTTP1
import NIOCore
import SluiceCore

/// A conversation's turns for APIs that want user and assistant turns to alternate (Anthropic,
/// Gemini, Bedrock): content for the same role as the last turn joins that turn.
struct AlternatingTurns {
    private(set) var turns: [(role: String, content: [JSONValue])] = []

    mutating func append(_ role: String, _ content: [JSONValue]) {
        guard !content.isEmpty else { return }
        if let last = turns.last, last.role == role {
            turns[turns.count - 1].content += content
        } else {
            turns.append((role, content))
        }
    }

    /// The turns as `{"role", key: [...]}` objects.
    func json(contentKey: String) -> JSONValue {
        .array(turns.map { .object(["role": .string($0.role), contentKey: .array($0.content)]) })
    }
}

/// What chat content becomes in other vendors' formats: inline images (a `data:` URL's media
/// type and base64 payload, `data:image/png;base64,iVBOR…`) and tool-call arguments.
enum ChatContent {
    /// A tool call's arguments as the JSON object other vendors take (`{}` when empty).
    static func toolInput(_ call: ToolCall, messageIndex i: Int) throws -> JSONValue {
        if call.function.arguments.isEmpty { return .object([:]) }
        var text = call.function.arguments
        guard let parsed = text.withUTF8({ JSONParser.parse(UnsafeRawBufferPointer($0)) }), case .object = parsed else {
            throw SluiceError(.invalidValue, "Tool call arguments must be a JSON object", param: "messages[\(i)].tool_calls")
        }
        return parsed
    }


    /// A `data:` URL's media type and base64 payload.
    static func dataURL(_ url: String) -> (mediaType: String, data: String)? {
        guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") else { return nil }
        let meta = url[url.index(url.startIndex, offsetBy: 5)..<comma]
        let mediaType = meta.split(separator: ";").first.map(String.init) ?? "application/octet-stream"
        return (mediaType, String(url[url.index(after: comma)...]))
    }

    /// The URL of an `image_url` content part.
    static func imageURL(of part: ContentPart) -> String? {
        part.raw["image_url"]?["url"]?.stringValue ?? part.raw["image_url"]?.stringValue
    }
}

/// Turns one vendor's SSE events into chat chunks: one value per stream, fed every event.
protocol SSEStreamTranslation: Sendable {
    /// Whether the answer is complete, so that no more events are read.
    var isComplete: Bool { get }
    /// The chunks for one event (often none).
    mutating func chunks(event: String?, data: JSONValue) throws -> [ChatCompletionChunk]
    /// The chunks that end a stream whose body ended, or the error when it ended too early.
    mutating func endOfBody(provider: String) throws -> [ChatCompletionChunk]
}

/// A vendor's SSE stream as chat stream events, through its translation.
struct TranslatedSSEStream<Events: AsyncSequence & Sendable, Translation: SSEStreamTranslation>: AsyncSequence, Sendable
where Events.Element == SSEEvent {
    typealias Element = ChatStreamEvent
    let events: Events
    let translation: Translation
    let provider: String
    let timeouts: Timeouts

    func makeAsyncIterator() -> Iterator { Iterator(base: events.makeAsyncIterator(), translation: translation, owner: self) }

    struct Iterator: AsyncIteratorProtocol {
        var base: Events.AsyncIterator
        var translation: Translation
        let owner: TranslatedSSEStream
        var pending: [ChatCompletionChunk] = []
        var ended = false

        mutating func next() async throws -> ChatStreamEvent? {
            while pending.isEmpty {
                if ended || translation.isComplete { return nil }
                let event: SSEEvent?
                do {
                    event = try await base.next()
                } catch {
                    throw UpstreamError.fromTransport(error, provider: owner.provider, timeouts: owner.timeouts)
                }
                guard let event else {
                    ended = true
                    pending = try translation.endOfBody(provider: owner.provider)
                    continue
                }
                if event.data.readableBytes == 0 { continue }
                guard let data = try? JSONCoding.decode(JSONValue.self, from: event.data) else {
                    throw SluiceError(.upstreamBadResponse, "Upstream '\(owner.provider)' sent a stream event that is not JSON")
                }
                pending = try translation.chunks(event: event.event, data: data)
            }
            return ChatStreamEvent(chunk: pending.removeFirst())
        }
    }
}

extension UpstreamTransport {
    /// POSTs and returns the whole answer within `timeouts.total_ms`.
    func postWithin(
        _ timeouts: Timeouts, provider: String, path: String, body: ByteBuffer, headers: HTTPHeaders = [:], maxBodyBytes: Int, context: InferenceContext
    ) async throws -> ByteBuffer {
        try await withDeadline(
            .now() + .milliseconds(Int64(timeouts.totalMs)),
            timeoutError: { SluiceError(.upstreamTimeout, "Upstream '\(provider)' did not finish within \(timeouts.totalMs) ms") }
        ) {
            try await self.post(path, body: body, headers: headers, maxBodyBytes: maxBodyBytes, context: context)
        }
    }

    /// POSTs and decodes the whole answer as JSON.
    func postForJSON(
        _ timeouts: Timeouts, provider: String, path: String, body: ByteBuffer, headers: HTTPHeaders = [:], context: InferenceContext
    ) async throws -> JSONValue {
        let bytes = try await postWithin(timeouts, provider: provider, path: path, body: body, headers: headers, maxBodyBytes: 64 << 20, context: context)
        guard let value = try? JSONCoding.decode(JSONValue.self, from: bytes) else {
            throw SluiceError(.upstreamBadResponse, "Upstream '\(provider)' returned malformed JSON")
        }
        return value
    }
}
