import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SluiceCore

/// How an HTTP provider reaches its upstream: POST a JSON body to a path under the base URL and
/// take the answer whole or as it arrives. A status of 400 or more is thrown as the upstream's
/// error and a transport failure as Sluice's, so providers only translate. Two implementations:
/// `PooledTransport` (Sluice's lean HTTP/1.1 pool, for plain-HTTP upstreams such as local model
/// servers and sidecars; the measured fast path) and `ClientTransport` (AsyncHTTPClient: HTTPS,
/// HTTP/2). `makeTransport` picks by the base URL's scheme.
public protocol UpstreamTransport: Sendable {
    /// POSTs `body` to `path` and returns the whole answer, at most `maxBodyBytes`; `headers` go
    /// with this request only (a signature).
    func post(_ path: String, body: ByteBuffer, headers: HTTPHeaders, maxBodyBytes: Int, context: InferenceContext) async throws -> ByteBuffer
    /// POSTs `body` to `path` and returns once the answer's head says it succeeded; its body as it arrives.
    func postStreaming(_ path: String, body: ByteBuffer, headers: HTTPHeaders, maxBodyBytes: Int, context: InferenceContext) async throws -> UpstreamBody
    /// Whether `GET path` answers below 400.
    func checkHealth(_ path: String) async -> ProviderHealth
    /// Closes kept-alive connections that are idle (at shutdown).
    func closeIdle()
}

extension UpstreamTransport {
    public func post(_ path: String, body: ByteBuffer, maxBodyBytes: Int, context: InferenceContext) async throws -> ByteBuffer {
        try await post(path, body: body, headers: [:], maxBodyBytes: maxBodyBytes, context: context)
    }

    public func postStreaming(_ path: String, body: ByteBuffer, maxBodyBytes: Int, context: InferenceContext) async throws -> UpstreamBody {
        try await postStreaming(path, body: body, headers: [:], maxBodyBytes: maxBodyBytes, context: context)
    }
}

/// Every request's headers with one request's own added (they win).
func merged(_ base: HTTPHeaders, _ extra: HTTPHeaders) -> HTTPHeaders {
    guard !extra.isEmpty else { return base }
    var out = base
    for (name, value) in extra { out.replaceOrAdd(name: name, value: value) }
    return out
}

/// The transport for a base URL: the lean pool for `http://`, AsyncHTTPClient otherwise.
/// `headers` go with every request; `client` also answers health probes.
public func makeTransport(
    baseURL: String, headers: HTTPHeaders, client: HTTPClient, provider: String, config: HTTPProviderConfig
) -> any UpstreamTransport {
    var base = baseURL
    while base.hasSuffix("/") { base.removeLast() }
    let client = ClientTransport(client: client, baseURL: base, headers: headers, provider: provider, timeouts: config.timeouts)
    guard let url = URL(string: base), url.scheme == "http", let host = url.host else { return client }
    var poolHeaders = headers
    poolHeaders.replaceOrAdd(name: "host", value: url.port.map { "\(host):\($0)" } ?? host)
    let pool = HTTP1ConnectionPool(host: host, port: url.port ?? 80, maxConnections: config.maxConnections, timeouts: config.timeouts)
    return PooledTransport(pool: pool, basePath: url.path, headers: poolHeaders, provider: provider, timeouts: config.timeouts, health: client)
}

/// A streamed answer's body, from either transport.
public struct UpstreamBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    enum Source: Sendable {
        case pooled(AsyncThrowingStream<ByteBuffer, any Error>)
        case client(HTTPClientResponse.Body)
    }

    let source: Source

    public func makeAsyncIterator() -> AsyncIterator {
        switch source {
        case .pooled(let stream): AsyncIterator(pooled: stream.makeAsyncIterator())
        case .client(let body): AsyncIterator(client: body.makeAsyncIterator())
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        // Two optionals rather than an enum: each advances in place, without a copy per chunk.
        var pooled: AsyncThrowingStream<ByteBuffer, any Error>.AsyncIterator?
        var client: HTTPClientResponse.Body.AsyncIterator?

        public mutating func next() async throws -> ByteBuffer? {
            if pooled != nil { return try await pooled!.next(isolation: #isolation) }
            return try await client?.next(isolation: #isolation)
        }
    }
}

/// Sluice's own HTTP/1.1 connection pool: fewer allocations and hops than AsyncHTTPClient for
/// plain-HTTP upstreams (see docs/performance.md), on the client connection's event loop when it
/// can.
public struct PooledTransport: UpstreamTransport {
    let pool: HTTP1ConnectionPool
    /// The base URL's path (`/v1`).
    let basePath: String
    /// Every request's headers, `Host` included.
    let headers: HTTPHeaders
    let provider: String
    let timeouts: Timeouts
    /// Health probes go through AsyncHTTPClient (a GET is rare; the pool only POSTs).
    let health: ClientTransport?

    init(pool: HTTP1ConnectionPool, basePath: String, headers: HTTPHeaders, provider: String, timeouts: Timeouts, health: ClientTransport?) {
        self.pool = pool
        self.basePath = basePath
        self.headers = headers
        self.provider = provider
        self.timeouts = timeouts
        self.health = health
    }

    public func post(_ path: String, body: ByteBuffer, headers extra: HTTPHeaders, maxBodyBytes: Int, context: InferenceContext) async throws -> ByteBuffer {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: basePath + path, headers: merged(headers, extra))
        let response: HTTP1ConnectionPool.Response
        do {
            response = try await pool.execute(head: head, body: body, maxBodyBytes: maxBodyBytes, preferredEventLoop: context.eventLoop)
        } catch {
            throw UpstreamError.fromTransport(error, provider: provider, timeouts: timeouts)
        }
        try response.failIfError(provider: provider)
        return response.body
    }

    public func postStreaming(
        _ path: String, body: ByteBuffer, headers extra: HTTPHeaders, maxBodyBytes: Int, context: InferenceContext
    ) async throws -> UpstreamBody {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: basePath + path, headers: merged(headers, extra))
        let response: HTTP1ConnectionPool.StreamedResponse
        do {
            response = try await pool.stream(head: head, body: body, maxBodyBytes: maxBodyBytes, preferredEventLoop: context.eventLoop)
        } catch {
            throw UpstreamError.fromTransport(error, provider: provider, timeouts: timeouts)
        }
        try await response.failIfError(provider: provider)
        return UpstreamBody(source: .pooled(response.body))
    }

    public func checkHealth(_ path: String) async -> ProviderHealth {
        guard let health else { return .healthy }
        return await health.checkHealth(path)
    }

    public func closeIdle() { pool.closeIdle() }
}

/// AsyncHTTPClient: HTTPS and HTTP/2 upstreams. Its own pool is the provider's client's (sized
/// and timed by the provider's config, see `OpenAICompatibleProvider.makeHTTPClient`).
public struct ClientTransport: UpstreamTransport {
    let client: HTTPClient
    /// The base URL without a trailing slash.
    let baseURL: String
    let headers: HTTPHeaders
    let provider: String
    let timeouts: Timeouts

    init(client: HTTPClient, baseURL: String, headers: HTTPHeaders, provider: String, timeouts: Timeouts) {
        self.client = client
        self.baseURL = baseURL
        self.headers = headers
        self.provider = provider
        self.timeouts = timeouts
    }

    /// Sends the request and waits for the head (within `first_token_ms`); a status of 400 or
    /// more is thrown.
    private func send(_ path: String, body: ByteBuffer, headers extra: HTTPHeaders, context: InferenceContext) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers = merged(headers, extra)
        request.body = .bytes(body)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, deadline: .now() + .milliseconds(Int64(timeouts.firstTokenMs)), logger: context.logger)
        } catch {
            throw UpstreamError.fromTransport(error, provider: provider, timeouts: timeouts)
        }
        guard response.status.code >= 400 else { return response }
        let errorBody = try? await response.body.collect(upTo: 1 << 20)
        throw UpstreamError.fromResponse(
            status: Int(response.status.code), body: errorBody, retryAfter: response.headers.first(name: "retry-after"), provider: provider)
    }

    public func post(_ path: String, body: ByteBuffer, headers extra: HTTPHeaders, maxBodyBytes: Int, context: InferenceContext) async throws -> ByteBuffer {
        let response = try await send(path, body: body, headers: extra, context: context)
        do {
            return try await response.body.collect(upTo: maxBodyBytes)
        } catch {
            throw UpstreamError.fromTransport(error, provider: provider, timeouts: timeouts)
        }
    }

    public func postStreaming(
        _ path: String, body: ByteBuffer, headers extra: HTTPHeaders, maxBodyBytes: Int, context: InferenceContext
    ) async throws -> UpstreamBody {
        UpstreamBody(source: .client(try await send(path, body: body, headers: extra, context: context).body))
    }

    public func checkHealth(_ path: String) async -> ProviderHealth {
        let url = baseURL + path
        var request = HTTPClientRequest(url: url)
        request.headers = headers
        do {
            let response = try await client.execute(request, timeout: .seconds(5))
            _ = try? await response.body.collect(upTo: 1 << 20)
            return response.status.code < 400 ? .healthy : .unhealthy("HTTP \(response.status.code) from \(url)")
        } catch {
            return .unhealthy("\(UpstreamError.fromTransport(error, provider: provider, timeouts: timeouts))")
        }
    }

    public func closeIdle() {}
}
