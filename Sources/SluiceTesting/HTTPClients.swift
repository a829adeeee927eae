import AsyncHTTPClient

/// Runs `body` with `client`, then shuts the client down on every path: a test that throws or
/// fails an expectation reports it instead of crashing the runner in `HTTPClient.deinit`.
/// Shutting it down inside `body` (to close its connections early) is allowed.
public func withHTTPClient<T>(
    _ client: HTTPClient = HTTPClient(eventLoopGroupProvider: .singleton),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (HTTPClient) async throws -> T
) async throws -> T {
    let result: T
    do {
        result = try await body(client)
    } catch {
        try? await client.shutdown()
        throw error
    }
    do {
        try await client.shutdown()
    } catch let error as HTTPClientError where error == .alreadyShutdown {
        // `body` closed it already.
    }
    return result
}

/// `withHTTPClient` with a client of `configuration` on the shared event loops.
public func withHTTPClient<T>(
    configuration: HTTPClient.Configuration,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (HTTPClient) async throws -> T
) async throws -> T {
    try await withHTTPClient(HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration), body)
}

extension HTTPClient.Configuration {
    /// Keep-alive connections, at most `connections` per host (load tests).
    public static func pooled(_ connections: Int) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        return configuration
    }
}
