import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import SluiceCore

/// Anthropic's Messages API behind the chat-completions interface.
public struct AnthropicProvider: ChatProvider {
    public let name: String
    let config: HTTPProviderConfig
    let client: HTTPClient
    let url: String
    let headers: HTTPHeaders

    public init(name: String, config: HTTPProviderConfig, client: HTTPClient) {
        self.name = name
        self.config = config
        self.client = client
        var base = config.baseURL
        while base.hasSuffix("/") { base.removeLast() }
        if base.hasSuffix("/v1") { base.removeLast(3) }
        self.url = base + "/v1/messages"
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "anthropic-version", value: config.anthropicVersion)
        if let key = config.apiKey { headers.add(name: "x-api-key", value: key) }
        for (k, v) in config.headers.sorted(by: { $0.key < $1.key }) { headers.replaceOrAdd(name: k, value: v) }
        self.headers = headers
    }

    private func post(_ body: JSONValue, logger: Logger) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers = headers
        request.body = .bytes(try JSONCoding.encode(body))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, deadline: .now() + .milliseconds(Int64(config.timeouts.firstTokenMs)), logger: logger)
        } catch {
            throw UpstreamError.fromTransport(error, provider: name, timeouts: config.timeouts)
        }
        if response.status.code >= 400 {
            let bytes = try? await response.body.collect(upTo: 1 << 20)
            // Anthropic's 529 "overloaded" is a 5xx like any other.
            throw UpstreamError.fromResponse(
                status: Int(response.status.code), body: bytes, retryAfter: response.headers.first(name: "retry-after"), provider: name)
        }
        return response
    }

    public func complete(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatResult {
        var request = request
        request.stream = nil
        let body = try AnthropicTranslator.messagesRequest(from: request, defaultMaxTokens: config.defaultMaxTokens)
        let logger = context.logger
        let created = Int(context.receivedAtUnix)
        return try await withDeadline(.now() + .milliseconds(Int64(config.timeouts.totalMs)),
            timeoutError: { SluiceError(.upstreamTimeout, "Upstream '\(name)' did not finish within \(config.timeouts.totalMs) ms") }
        ) {
            let response = try await post(body, logger: logger)
            let bytes: ByteBuffer
            do {
                bytes = try await response.body.collect(upTo: 64 << 20)
            } catch {
                throw UpstreamError.fromTransport(error, provider: name, timeouts: config.timeouts)
            }
            guard let message = try? JSONCoding.decode(JSONValue.self, from: bytes) else {
                throw SluiceError(.upstreamBadResponse, "Upstream '\(name)' returned malformed JSON")
            }
            return ChatResult(completion: try AnthropicTranslator.completion(from: message, created: created))
        }
    }

    public func stream(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatStream {
        var request = request
        request.stream = true
        let body = try AnthropicTranslator.messagesRequest(from: request, defaultMaxTokens: config.defaultMaxTokens)
        let response = try await post(body, logger: context.logger)
        return ChatStream(
            AnthropicChunkSequence(
                events: SSEEventSequence(response.body), state: .init(created: Int(context.receivedAtUnix)), provider: name,
                timeouts: config.timeouts))
    }

    public func checkHealth() async -> ProviderHealth {
        let modelsURL = String(url.dropLast("/messages".count)) + "/models"
        return await HealthProbe.check(client: client, url: modelsURL, headers: headers, provider: name, timeouts: config.timeouts)
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
