import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SluiceCore

/// Any server that speaks OpenAI's `/v1` API: OpenAI, vLLM, llama.cpp, Ollama, LM Studio.
/// Non-streamed answers are decoded for accounting and forwarded as the upstream's bytes;
/// streamed answers are forwarded event by event.
public struct OpenAICompatibleProvider: ChatProvider, EmbeddingProvider {
    public let name: String
    let config: HTTPProviderConfig
    let client: HTTPClient
    let baseURL: String
    let headers: HTTPHeaders
    /// The lean client for whole exchanges with a plain-HTTP upstream; nil for HTTPS.
    let pool: HTTP1ConnectionPool?
    /// The base URL's path (`/v1`), for requests made through `pool`.
    let basePath: String
    /// Headers for requests made through `pool` (with `Host`).
    let poolHeaders: HTTPHeaders

    /// Makes a provider that sends its calls through `client` (one client per provider, so its
    /// pool and timeouts are the provider's own; see `makeHTTPClient`).
    public init(name: String, config: HTTPProviderConfig, client: HTTPClient) {
        self.name = name
        self.config = config
        self.client = client
        var base = config.baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "accept", value: "application/json, text/event-stream")
        if let key = config.apiKey { headers.add(name: "authorization", value: "Bearer \(key)") }
        for (k, v) in config.headers.sorted(by: { $0.key < $1.key }) { headers.replaceOrAdd(name: k, value: v) }
        self.headers = headers
        if let url = URL(string: base), url.scheme == "http", let host = url.host {
            let port = url.port ?? 80
            self.pool = HTTP1ConnectionPool(host: host, port: port, maxConnections: config.maxConnections, timeouts: config.timeouts)
            self.basePath = url.path
            var poolHeaders = headers
            poolHeaders.replaceOrAdd(name: "host", value: url.port.map { "\(host):\($0)" } ?? host)
            self.poolHeaders = poolHeaders
        } else {
            self.pool = nil
            self.basePath = ""
            self.poolHeaders = headers
        }
    }

    /// Closes kept-alive connections of the lean client.
    public func closeIdleConnections() {
        pool?.closeIdle()
    }

    /// An HTTP client configured with a provider's pool size and timeouts.
    public static func makeHTTPClient(for config: HTTPProviderConfig) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .milliseconds(Int64(config.timeouts.connectMs)), read: .milliseconds(Int64(config.timeouts.idleMs)))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: config.maxConnections)
        configuration.httpVersion = .automatic
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    private func post(path: String, body: ByteBuffer, logger: Logger) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers = headers
        request.body = .bytes(body)
        do {
            return try await client.execute(request, deadline: .now() + .milliseconds(Int64(config.timeouts.firstTokenMs)), logger: logger)
        } catch {
            throw UpstreamError.fromTransport(error, provider: name, timeouts: config.timeouts)
        }
    }

    private func failIfError(_ response: HTTPClientResponse) async throws {
        guard response.status.code >= 400 else { return }
        let body = try? await response.body.collect(upTo: 1 << 20)
        throw UpstreamError.fromResponse(
            status: Int(response.status.code), body: body, retryAfter: response.headers.first(name: "retry-after"), provider: name)
    }

    private var totalLimit: Duration { .milliseconds(config.timeouts.totalMs) }

    private func timeoutError() -> SluiceError {
        SluiceError(.upstreamTimeout, "Upstream '\(name)' did not finish within \(config.timeouts.totalMs) ms")
    }

    /// Runs a whole call under `timeouts.total_ms`.
    private func withTotalTimeout<T>(_ body: () async throws -> T) async throws -> T {
        try await withDeadline(.now() + .milliseconds(Int64(config.timeouts.totalMs)), timeoutError: timeoutError, body)
    }

    /// POSTs a body and returns the whole answer, within `total_ms`; errors mapped.
    private func fetchWhole(path: String, body: ByteBuffer, context: InferenceContext, limit: Int) async throws -> ByteBuffer {
        if let pool {
            return try await withTotalTimeout {
                let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: basePath + path, headers: poolHeaders)
                let response: HTTP1ConnectionPool.Response
                do {
                    response = try await pool.execute(head: head, body: body, maxBodyBytes: limit, preferredEventLoop: context.eventLoop)
                } catch {
                    throw UpstreamError.fromTransport(error, provider: name, timeouts: config.timeouts)
                }
                try response.failIfError(provider: name)
                return response.body
            }
        }
        let logger = context.logger
        return try await withTotalTimeout {
            let response = try await post(path: path, body: body, logger: logger)
            try await failIfError(response)
            do {
                return try await response.body.collect(upTo: limit)
            } catch {
                throw UpstreamError.fromTransport(error, provider: name, timeouts: config.timeouts)
            }
        }
    }

    public func complete(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatResult {
        var request = request
        request.stream = nil
        request.streamOptions = nil
        let bytes = try await fetchWhole(path: "/chat/completions", body: try request.jsonBytes(), context: context, limit: 64 << 20)
        do {
            return try ChatResult(encoded: bytes)
        } catch {
            throw SluiceError(.upstreamBadResponse, "Upstream '\(name)' returned a response that is not a chat completion: \(error)")
        }
    }

    public func stream(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatStream {
        var request = request
        request.stream = true
        // Always ask for usage so the call can be accounted; the stage that knows what the
        // client asked for strips it again if the client did not.
        request.streamOptions = StreamOptions(includeUsage: true)
        let body = try request.jsonBytes()
        let deadline = ContinuousClock.now + totalLimit
        if let pool {
            let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: basePath + "/chat/completions", headers: poolHeaders)
            let response: HTTP1ConnectionPool.StreamedResponse
            do {
                response = try await pool.stream(head: head, body: body, maxBodyBytes: 256 << 20, preferredEventLoop: context.eventLoop)
            } catch {
                throw UpstreamError.fromTransport(error, provider: name, timeouts: config.timeouts)
            }
            try await response.failIfError(provider: name)
            return ChatStream(
                ChatEventSequence(events: SSEEventSequence(response.body), provider: name, timeouts: config.timeouts, deadline: deadline))
        }
        let response = try await post(path: "/chat/completions", body: body, logger: context.logger)
        try await failIfError(response)
        let events = ChatEventSequence(events: SSEEventSequence(response.body), provider: name, timeouts: config.timeouts, deadline: deadline)
        return ChatStream(events)
    }

    public func embed(_ request: EmbeddingsRequest, context: InferenceContext) async throws -> EmbeddingsResponse {
        let bytes = try await fetchWhole(path: "/embeddings", body: try JSONCoding.encode(request), context: context, limit: 256 << 20)
        do {
            return try JSONCoding.decode(EmbeddingsResponse.self, from: bytes)
        } catch {
            throw SluiceError(.upstreamBadResponse, "Upstream '\(name)' returned a response that is not an embeddings list: \(error)")
        }
    }

    public func checkHealth() async -> ProviderHealth {
        await HealthProbe.check(client: client, url: baseURL + "/models", headers: headers, provider: name, timeouts: config.timeouts)
    }
}

/// Turns an upstream's SSE events into chat chunks, keeping each event's bytes for forwarding.
struct ChatEventSequence<Events: AsyncSequence & Sendable>: AsyncSequence, Sendable where Events.Element == SSEEvent {
    typealias Element = ChatStreamEvent
    let events: Events
    let provider: String
    let timeouts: Timeouts
    let deadline: ContinuousClock.Instant

    func makeAsyncIterator() -> Iterator { Iterator(base: events.makeAsyncIterator(), owner: self) }

    struct Iterator: AsyncIteratorProtocol {
        var base: Events.AsyncIterator
        let owner: ChatEventSequence
        var done = false

        mutating func next() async throws -> ChatStreamEvent? {
            guard !done else { return nil }
            while true {
                let event: SSEEvent?
                do {
                    event = try await base.next()
                } catch {
                    done = true
                    throw UpstreamError.fromTransport(error, provider: owner.provider, timeouts: owner.timeouts)
                }
                guard let event else {
                    done = true
                    throw SluiceError(.upstreamError, "Upstream '\(owner.provider)' ended the stream without [DONE]")
                }
                if ContinuousClock.now > owner.deadline {
                    done = true
                    throw SluiceError(.upstreamTimeout, "Upstream '\(owner.provider)' did not finish within \(owner.timeouts.totalMs) ms")
                }
                let data = event.data
                if data.readableBytes == 6, data.readableBytesView.elementsEqual("[DONE]".utf8) {
                    done = true
                    // Read the body to its end (the response's last chunk may come in a later
                    // packet), so the connection is returned for reuse instead of being closed as
                    // abandoned. A stall here ends at the idle timeout; its error no longer matters.
                    while (try? await base.next()) != nil {}
                    return nil
                }
                if data.readableBytes == 0 { continue }
                do {
                    return try ChatStreamEvent(encoded: data)
                } catch {
                    done = true
                    if let message = UpstreamError.message(in: data), (try? JSONCoding.decode(JSONValue.self, from: data))?["error"] != nil {
                        throw SluiceError(.upstreamError, "Upstream '\(owner.provider)' failed mid-stream: \(message)")
                    }
                    throw SluiceError(.upstreamBadResponse, "Upstream '\(owner.provider)' sent a stream event that is not a chat chunk")
                }
            }
        }
    }
}
