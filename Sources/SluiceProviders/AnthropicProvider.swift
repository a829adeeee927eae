import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import SluiceCore

/// Anthropic's Messages API behind the chat-completions interface.
public struct AnthropicProvider: ChatProvider {
    public let name: String
    let config: HTTPProviderConfig
    let transport: any UpstreamTransport

    public init(name: String, config: HTTPProviderConfig, client: HTTPClient) {
        self.name = name
        self.config = config
        var base = config.baseURL
        while base.hasSuffix("/") { base.removeLast() }
        if base.hasSuffix("/v1") { base.removeLast(3) }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "anthropic-version", value: config.anthropicVersion)
        if let key = config.apiKey { headers.add(name: "x-api-key", value: key) }
        for (k, v) in config.headers.sorted(by: { $0.key < $1.key }) { headers.replaceOrAdd(name: k, value: v) }
        // Anthropic's 529 "overloaded" is a 5xx like any other: the transport maps it so.
        self.transport = makeTransport(baseURL: base + "/v1", headers: headers, client: client, provider: name, config: config)
    }

    /// The Messages API body: the client's own when it spoke this API and no stage changed the
    /// request (so `cache_control`, `top_k`, `metadata` … reach Anthropic), else the translation.
    func body(_ request: ChatCompletionRequest, context: InferenceContext, stream: Bool) throws -> ByteBuffer {
        if let native = context.nativeRequest, native.api == .anthropicMessages, native.isUntouched(request), case .object(var fields) = native.body {
            fields["model"] = .string(request.model)
            // The answer comes back through the chat format, which has no thinking blocks, and a
            // tool-use turn without its thinking block would be refused: no extended thinking.
            fields.removeValue(forKey: "thinking")
            if stream { fields["stream"] = true } else { fields.removeValue(forKey: "stream") }
            return try JSONCoding.encode(JSONValue.object(fields))
        }
        var request = request
        request.stream = stream ? true : nil
        return try JSONCoding.encode(try AnthropicTranslator.messagesRequest(from: request, defaultMaxTokens: config.defaultMaxTokens))
    }

    public func complete(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatResult {
        let body = try body(request, context: context, stream: false)
        let created = Int(context.receivedAtUnix)
        let transport = transport
        let bytes = try await withDeadline(.now() + .milliseconds(Int64(config.timeouts.totalMs)),
            timeoutError: { SluiceError(.upstreamTimeout, "Upstream '\(name)' did not finish within \(config.timeouts.totalMs) ms") }
        ) {
            try await transport.post("/messages", body: body, maxBodyBytes: 64 << 20, context: context)
        }
        guard let message = try? JSONCoding.decode(JSONValue.self, from: bytes) else {
            throw SluiceError(.upstreamBadResponse, "Upstream '\(name)' returned malformed JSON")
        }
        return ChatResult(completion: try AnthropicTranslator.completion(from: message, created: created))
    }

    public func stream(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatStream {
        let body = try body(request, context: context, stream: true)
        let events = try await transport.postStreaming("/messages", body: body, maxBodyBytes: 256 << 20, context: context)
        return ChatStream(
            AnthropicChunkSequence(
                events: SSEEventSequence(events), state: .init(created: Int(context.receivedAtUnix)), provider: name,
                timeouts: config.timeouts))
    }

    public func checkHealth() async -> ProviderHealth {
        await transport.checkHealth("/models")
    }

    /// Closes kept-alive connections of the lean pool (a plain-HTTP base URL).
    public func closeIdleConnections() {
        transport.closeIdle()
    }
}

/// Anthropic SSE events turned into chat chunks.
struct AnthropicChunkSequence<Events: AsyncSequence & Sendable>: AsyncSequence, Sendable where Events.Element == SSEEvent {
    typealias Element = ChatStreamEvent
    let events: Events
    let state: AnthropicTranslator.StreamState
    let provider: String
    let timeouts: Timeouts

    func makeAsyncIterator() -> Iterator { Iterator(base: events.makeAsyncIterator(), state: state, owner: self) }

    struct Iterator: AsyncIteratorProtocol {
        var base: Events.AsyncIterator
        var state: AnthropicTranslator.StreamState
        let owner: AnthropicChunkSequence
        var pending: [ChatCompletionChunk] = []

        mutating func next() async throws -> ChatStreamEvent? {
            while pending.isEmpty {
                if state.finished { return nil }
                let event: SSEEvent?
                do {
                    event = try await base.next()
                } catch {
                    throw UpstreamError.fromTransport(error, provider: owner.provider, timeouts: owner.timeouts)
                }
                guard let event else {
                    throw SluiceError(.upstreamError, "Upstream '\(owner.provider)' ended the stream before message_stop")
                }
                guard let data = try? JSONCoding.decode(JSONValue.self, from: event.data) else {
                    throw SluiceError(.upstreamBadResponse, "Upstream '\(owner.provider)' sent a stream event that is not JSON")
                }
                pending = try state.chunks(for: event.event, data: data)
            }
            return ChatStreamEvent(chunk: pending.removeFirst())
        }
    }
}
