import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SluiceCore
import SluiceTesting
import Testing
@testable import SluiceProviders

/// The lean HTTP/1.1 client used for whole exchanges with plain-HTTP upstreams.
@Suite struct HTTP1ConnectionPoolTests {
    static let answer = #"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#

    /// Runs `body` with a provider for the upstream at `base`, and shuts its client down after.
    func withProvider<T>(
        _ base: String, maxConnections: Int, timeouts: Timeouts = .init(), isolation: isolated (any Actor)? = #isolation,
        _ body: (OpenAICompatibleProvider) async throws -> T
    ) async throws -> T {
        var config = HTTPProviderConfig(baseURL: base + "/v1", timeouts: timeouts)
        config.maxConnections = maxConnections
        return try await withHTTPClient(OpenAICompatibleProvider.makeHTTPClient(for: config)) { client in
            try await body(OpenAICompatibleProvider(name: "up", config: config, client: client))
        }
    }

    func context() -> InferenceContext {
        InferenceContext(requestID: "r", endpoint: "chat.completions", logger: Logger(label: "t"), receivedAtUnix: 0)
    }

    let request = ChatCompletionRequest(model: "m", messages: [.init(role: .user, text: "hi")])

    func routes(_ log: ConnectionLog, delay: Duration = .zero) -> (Router<ConnectionContext>) -> Void {
        { router in
            router.post("/v1/chat/completions") { request, context -> Response in
                log.begin(context.channel)
                defer { log.end() }
                _ = try await request.body.collect(upTo: 1 << 20)
                if delay > .zero { try await Task.sleep(for: delay) }
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: Self.answer)))
            }
        }
    }

    static let chunk = #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}"#

    /// `/v1/chat/completions` answering a stream of `events` chunks, `gap` apart.
    func streamRoutes(_ log: ConnectionLog, events: Int, gap: Duration) -> (Router<ConnectionContext>) -> Void {
        { router in
            router.post("/v1/chat/completions") { request, context -> Response in
                log.begin(context.channel)
                _ = try await request.body.collect(upTo: 1 << 20)
                return Response(
                    status: .ok, headers: [.contentType: "text/event-stream"],
                    body: .init { writer in
                        defer { log.end() }
                        for _ in 0..<events {
                            try await writer.write(ByteBuffer(string: "data: \(Self.chunk)\n\n"))
                            if gap > .zero { try await Task.sleep(for: gap) }
                        }
                        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                        try await writer.finish(nil)
                    })
            }
        }
    }

    @Test func aStreamReadToTheEndGivesItsConnectionBack() async throws {
        let log = ConnectionLog()
        try await FakeUpstream.with(context: ConnectionContext.self, streamRoutes(log, events: 5, gap: .zero)) { base in
            try await withProvider(base, maxConnections: 4) { provider in
                var streamed = request
                streamed.stream = true
                for _ in 0..<5 {
                    var count = 0
                    for try await _ in try await provider.stream(streamed, context: context()) { count += 1 }
                    #expect(count == 5)
                }
            }
        }
        #expect(log.connections == 1)
    }

    @Test func anAbandonedStreamClosesItsConnection() async throws {
        let log = ConnectionLog()
        try await FakeUpstream.with(context: ConnectionContext.self, streamRoutes(log, events: 50, gap: .milliseconds(20))) { base in
            try await withProvider(base, maxConnections: 1) { provider in
                var streamed = request
                streamed.stream = true
                for _ in 0..<3 {
                    var count = 0
                    for try await _ in try await provider.stream(streamed, context: context()) {
                        count += 1
                        if count == 2 { break }
                    }
                    #expect(count == 2)
                }
            }
        }
        // Each abandoned stream's connection was closed, so each call needed a new one — and with
        // a cap of one, none of them waited forever for a slot.
        #expect(log.connections == 3)
    }

    @Test func keepsConnectionsAlive() async throws {
        let log = ConnectionLog()
        try await FakeUpstream.with(context: ConnectionContext.self, routes(log)) { base in
            try await withProvider(base, maxConnections: 8) { provider in
                #expect(provider.transport is PooledTransport)
                for _ in 0..<20 {
                    let result = try await provider.complete(request, context: context())
                    #expect(result.usage?.totalTokens == 2)
                }
            }
        }
        #expect(log.connections == 1)
    }

    @Test func neverOpensMoreThanTheCapAndQueuesTheRest() async throws {
        let log = ConnectionLog()
        try await FakeUpstream.with(context: ConnectionContext.self, routes(log, delay: .milliseconds(50))) { base in
            try await withProvider(base, maxConnections: 2) { provider in
                let ok = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for _ in 0..<10 {
                        group.addTask { try await provider.complete(request, context: context()).usage?.totalTokens == 2 }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                #expect(ok == 10)
            }
        }
        #expect(log.connections <= 2)
        #expect(log.maxInFlight <= 2)
    }

    /// Exchanges on a pool of its own over two event loops, each call preferring the given loop;
    /// the loops are shut down on every path.
    func exchanges(_ base: String, maxConnections: Int, loopOrder: [Int]) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let port = try #require(Int(base.split(separator: ":").last ?? ""))
        let pool = HTTP1ConnectionPool(host: "127.0.0.1", port: port, maxConnections: maxConnections, timeouts: Timeouts(), group: group)
        do {
            for index in loopOrder {
                let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/chat/completions", headers: ["host": "127.0.0.1:\(port)"])
                let response = try await pool.execute(head: head, body: ByteBuffer(string: "{}"), maxBodyBytes: 1 << 20, preferredEventLoop: loops[index])
                #expect(response.status == .ok)
            }
        } catch {
            pool.closeIdle()
            try await group.shutdownGracefully()
            throw error
        }
        pool.closeIdle()
        try await group.shutdownGracefully()
    }

    @Test func opensAConnectionOnTheCallersLoopRatherThanBorrowAnotherLoops() async throws {
        let log = ConnectionLog()
        try await FakeUpstream.with(context: ConnectionContext.self, routes(log)) { base in
            try await exchanges(base, maxConnections: 4, loopOrder: [0, 1, 0, 1, 1, 0])
        }
        // One connection per loop, each reused: no exchange was handed to the other loop's one.
        #expect(log.connections == 2)
    }

    @Test func atTheCapBorrowsAnIdleConnectionOfAnotherLoop() async throws {
        let log = ConnectionLog()
        try await FakeUpstream.with(context: ConnectionContext.self, routes(log)) { base in
            try await exchanges(base, maxConnections: 1, loopOrder: [0, 1, 0, 1])
        }
        #expect(log.connections == 1)
    }

    @Test func survivesAnUpstreamThatClosesIdleConnections() async throws {
        let log = ConnectionLog()
        try await FakeUpstream.with(context: ConnectionContext.self, idleTimeout: .milliseconds(100), routes(log)) { base in
            try await withProvider(base, maxConnections: 4) { provider in
                for _ in 0..<3 {
                    let result = try await provider.complete(request, context: context())
                    #expect(result.usage?.totalTokens == 2)
                    // Longer than the upstream keeps an idle connection.
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
        }
        #expect(log.connections == 3)
    }

    @Test func cancellationClosesTheConnectionAndFreesTheSlot() async throws {
        let log = ConnectionLog()
        try await FakeUpstream.with(context: ConnectionContext.self, routes(log, delay: .seconds(5))) { base in
            try await withProvider(base, maxConnections: 1) { provider in
                let slow = Task { try await provider.complete(request, context: context()) }
                try await Task.sleep(for: .milliseconds(100))
                slow.cancel()
                let outcome = await slow.result
                #expect(throws: (any Error).self) { try outcome.get() }
                // The only slot is free again: a new call gets a connection (and waits for the slow
                // handler on the server, so just check that it starts within the time limit).
                let started = ContinuousClock.now
                // In a task of its own: Swift Testing reads a cancelled test task as a cancelled test.
                let second = await Task {
                    try await withDeadline(.now() + .milliseconds(300),
                        timeoutError: { SluiceError(.upstreamTimeout, "waited") }
                    ) {
                        try await provider.complete(request, context: context())
                    }
                }.result
                #expect(throws: SluiceError.self) { try second.get() }
                #expect(ContinuousClock.now - started < .seconds(2))
                #expect(log.connections == 2)
            }
        }
    }
}


/// The exchange handler's one lazily re-armed timer: it must neither fire early for a later
/// exchange on a reused connection nor fail to fire when a stream stalls.
@Suite struct ExchangeTimerTests {
    let pool = HTTP1ConnectionPoolTests()

    @Test func aTimerLeftFromAnEarlierExchangeDoesNotCutTheNextOne() async throws {
        let log = ConnectionLog()
        // Each answer takes 250 ms against a 400 ms first-byte limit; the first exchange's timer
        // (due 400 ms after it started) comes while the second one is 150 ms in.
        try await FakeUpstream.with(context: ConnectionContext.self, pool.routes(log, delay: .milliseconds(250))) { base in
            try await pool.withProvider(base, maxConnections: 1, timeouts: Timeouts(firstTokenMs: 400, idleMs: 400)) { provider in
                for _ in 0..<3 {
                    let result = try await provider.complete(pool.request, context: pool.context())
                    #expect(result.usage?.completionTokens == 1)
                }
            }
        }
        #expect(log.connections == 1)
    }

    @Test func aStalledStreamFailsAfterTheIdleLimit() async throws {
        let log = ConnectionLog()
        // One chunk, then 3 s of silence, against a 300 ms idle limit.
        try await FakeUpstream.with(context: ConnectionContext.self, pool.streamRoutes(log, events: 2, gap: .seconds(3))) { base in
            try await pool.withProvider(base, maxConnections: 1, timeouts: Timeouts(firstTokenMs: 2000, idleMs: 300)) { provider in
                var streamed = pool.request
                streamed.stream = true
                let started = ContinuousClock.now
                var received = 0
                var failure: SluiceError?
                do {
                    for try await _ in try await provider.stream(streamed, context: pool.context()) { received += 1 }
                } catch let error as SluiceError {
                    failure = error
                }
                let waited = ContinuousClock.now - started
                #expect(received == 1)
                #expect(failure?.httpStatus == 504)
                #expect(waited >= .milliseconds(290) && waited < .milliseconds(2000))
            }
        }
    }
}
