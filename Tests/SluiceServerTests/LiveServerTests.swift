import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SluiceCore
import SluiceProviders
import SluiceTesting
import Testing
@testable import SluiceObservability
@testable import SluiceServer

/// Tests against a real listening server: disconnects, graceful shutdown, many requests.
@Suite(.serialized) struct LiveServerTests {
    func streamRequest(_ base: String, id: String, tps: Int, tokens: Int) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: base + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "x-request-id", value: id)
        request.headers.add(name: "x-sim-tps", value: String(tps))
        request.headers.add(name: "x-sim-tokens", value: String(tokens))
        request.body = .bytes(chatBody(#""stream":true"#))
        return request
    }

    @Test func aClientThatDisconnectsCancelsTheUpstreamWithin100ms() async throws {
        let probe = SimulationProbe()
        try await TestApp.live(probe: probe) { base, app, _ in
            try await withHTTPClient { client in
                // 2 tokens per second: the upstream sits between tokens for 500 ms at a time.
                let request = streamRequest(base, id: "disconnect-1", tps: 2, tokens: 100)
                let reader = Task {
                    let response = try await client.execute(request, timeout: .seconds(30))
                    var received = 0
                    for try await _ in response.body {
                        received += 1
                        if received >= 2 { break }
                    }
                    return received
                }
                #expect(try await reader.value >= 2)
                // Leaving the loop early drops the body: AsyncHTTPClient closes the connection.
                let closedAt = ContinuousClock.now
                var cancelledAt: ContinuousClock.Instant?
                for _ in 0..<100 {
                    if let at = probe.instant(of: .cancelled, requestID: "disconnect-1") {
                        cancelledAt = at
                        break
                    }
                    try await Task.sleep(for: .milliseconds(10))
                }
                try await client.shutdown()
                let at = try #require(cancelledAt, "the upstream stream was never cancelled")
                #expect(at - closedAt < .milliseconds(100), "cancelled \(at - closedAt) after the client left")
                #expect(probe.instant(of: .finished, requestID: "disconnect-1") == nil)
                await app.auditLog.drain()
                let row = try #require(try await app.store.recent(limit: 5).first { $0.id == "disconnect-1" })
                #expect(row.status == 499)
                #expect(row.errorCode == "client_disconnected")
                #expect(row.tokensOut > 0)
            }
        }
    }

    /// Streams on one keep-alive connection share one close callback, dropped when it closes
    /// (one per stream used to pile up on the connection until it closed).
    @Test func streamsOnAKeptAliveConnectionHoldOneCloseWatch() async throws {
        try await TestApp.live { base, app, _ in
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 1)
            try await withHTTPClient(configuration: configuration) { client in
                for i in 0..<50 {
                    let response = try await client.execute(streamRequest(base, id: "keepalive-\(i)", tps: 0, tokens: 3), timeout: .seconds(30))
                    let body = try await response.body.collect(upTo: 1 << 20)
                    #expect(String(buffer: body).hasSuffix("data: [DONE]\n\n"))
                }
                #expect(app.cancellers.connectionCount == 1)
                try await client.shutdown()
                for _ in 0..<100 where app.cancellers.connectionCount > 0 {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(app.cancellers.connectionCount == 0)
            }
        }
    }

    @Test func gracefulShutdownFinishesStreamsAndFlushesTheLog() async throws {
        let probe = SimulationProbe()
        let (app, body) = try await TestApp.live(probe: probe) { base, app, group in
            return try await withHTTPClient { client in
                // 20 tokens at 20/s: about a second of streaming after shutdown begins.
                let response = try await client.execute(streamRequest(base, id: "shutdown-1", tps: 20, tokens: 20), timeout: .seconds(30))
                var body = ""
                var iterator = response.body.makeAsyncIterator()
                if let first = try await iterator.next() { body += String(buffer: first) }
                await group.triggerGracefulShutdown()
                while let more = try await iterator.next() { body += String(buffer: more) }
                try await client.shutdown()
                return (app, body)
            }
        }
        #expect(body.hasSuffix("data: [DONE]\n\n"))
        #expect(probe.instant(of: .finished, requestID: "shutdown-1") != nil)
        // The service group has returned: the writer flushed before it did.
        #expect(app.auditLog.backlog == 0)
        let row = try #require(try await app.store.recent(limit: 5).first { $0.id == "shutdown-1" })
        #expect(row.status == 200)
        #expect(row.tokensOut == 20)
    }

    /// SIGTERM turns readiness off at once while requests are still served for `drain_s`; then the listener closes.
    @Test func readinessTurnsOffBeforeTheListenerCloses() async throws {
        let yaml = TestApp.yaml.replacingOccurrences(of: "shutdown_grace_s: 5 }", with: "shutdown_grace_s: 5, drain_s: 0.8 }")
        try await TestApp.live(yaml: yaml) { base, _, group in
            try await withHTTPClient { client in
                func get(_ path: String) async throws -> (HTTPResponseStatus, String) {
                    let response = try await client.execute(HTTPClientRequest(url: base + path), timeout: .seconds(5))
                    return (response.status, String(buffer: try await response.body.collect(upTo: 1 << 16)))
                }
                #expect(try await get("/readyz").0 == .ok)
                let shutdown = Task { await group.triggerGracefulShutdown() }
                var draining = false
                for _ in 0..<50 where !draining {
                    let (status, body) = try await get("/readyz")
                    draining = status == .serviceUnavailable && body.contains("draining")
                    if !draining { try await Task.sleep(for: .milliseconds(10)) }
                }
                #expect(draining, "readiness off within 500 ms of the shutdown signal")
                // Still serving while load balancers catch up.
                var request = HTTPClientRequest(url: base + "/v1/chat/completions")
                request.method = .POST
                request.body = .bytes(chatBody())
                let response = try await client.execute(request, timeout: .seconds(5))
                #expect(response.status == .ok)
                _ = try await response.body.collect(upTo: 1 << 20)
                await shutdown.value
                try await client.shutdown()
            }
        }
    }

    @Test func tenThousandRequestsMakeTenThousandRows() async throws {
        let (app, ok) = try await TestApp.live { base, app, _ in
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 16)
            return try await withHTTPClient(configuration: configuration) { client in
                let ok = try await withThrowingTaskGroup(of: Int.self) { tasks in
                    for worker in 0..<16 {
                        tasks.addTask {
                            var ok = 0
                            for i in 0..<625 {
                                var request = HTTPClientRequest(url: base + "/v1/chat/completions")
                                request.method = .POST
                                request.headers.add(name: "x-request-id", value: "load-\(worker)-\(i)")
                                request.body = .bytes(chatBody())
                                let response = try await client.execute(request, timeout: .seconds(30))
                                _ = try await response.body.collect(upTo: 1 << 20)
                                if response.status == .ok { ok += 1 }
                            }
                            return ok
                        }
                    }
                    return try await tasks.reduce(0, +)
                }
                try await client.shutdown()
                return (app, ok)
            }
        }
        #expect(ok == 10_000)
        // The service group has shut down, so the writer has flushed: one row per request.
        #expect(try await app.store.count() == 10_000)
        #expect(app.auditLog.dropped == 0)
    }
}
