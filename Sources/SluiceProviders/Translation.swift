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
                    event = try await base.next(isolation: #isolation)
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

extension ChatCompletionRequest {
    /// The request as a provider that knows only function tools takes it: `allowed_tools`
    /// becomes the allowed subset of the tools with its mode (auto or required), a legacy
    /// assistant `function_call` and its `function` reply become a tool call and a tool message.
    /// Custom tools, a custom `tool_choice` and custom tool calls are refused with a 400 naming
    /// the provider: free-form tool input has no equivalent there.
    func withFunctionToolsOnly(provider: String) throws -> ChatCompletionRequest {
        var r = self
        for (i, tool) in (tools ?? []).enumerated() where tool.custom != nil {
            throw SluiceError(.unsupported, "Custom tools are supported only by OpenAI-compatible deployments, not \(provider).", param: "tools[\(i)]")
        }
        if case .object(let o)? = toolChoice {
            if o["type"] == "custom" {
                throw SluiceError(.unsupported, "A custom tool_choice is supported only by OpenAI-compatible deployments, not \(provider).", param: "tool_choice")
            }
            if o["type"] == "allowed_tools", case .object(let allowed)? = o["allowed_tools"] {
                var names = Set<String>()
                if case .array(let list)? = allowed["tools"] {
                    for t in list { if let name = t["function"]?["name"]?.stringValue { names.insert(name) } }
                }
                r.tools = tools?.filter { names.contains($0.function.name) }
                r.toolChoice = .string(allowed["mode"]?.stringValue ?? "auto")
            }
        }
        var lastCall: [String: String] = [:]  // function name → the id given to its latest legacy call
        for (i, m) in messages.enumerated() {
            for (k, call) in (m.toolCalls ?? []).enumerated() where call.custom != nil {
                throw SluiceError(
                    .unsupported, "Custom tool calls are supported only by OpenAI-compatible deployments, not \(provider).",
                    param: "messages[\(i)].tool_calls[\(k)]")
            }
            if let call = m.functionCall {
                let id = "call_legacy_\(i)"
                lastCall[call.name] = id
                r.messages[i].toolCalls = (m.toolCalls ?? []) + [ToolCall(id: id, name: call.name, arguments: call.arguments)]
                r.messages[i].functionCall = nil
            }
            if m.role == .function {
                guard let name = m.name, let id = lastCall[name] else {
                    throw SluiceError(
                        .invalidValue, "A 'function' message must follow an assistant 'function_call' of the same name.", param: "messages[\(i)].name")
                }
                r.messages[i].role = .tool
                r.messages[i].toolCallId = id
            }
        }
        return r
    }
}
