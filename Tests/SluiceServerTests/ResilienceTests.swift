import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import SluiceProviders
@testable import SluiceRouting
import Testing
@testable import SluiceObservability
@testable import SluiceServer

/// Fallbacks, retries, timeouts and circuit breakers, with faults the simulated provider injects.
@Suite struct ResilienceTests {
    /// Three entries on one simulated provider, told apart by upstream model; `chat` tries
    /// `primary`, then `backup`.
    static func yaml(breaker: String = "{ failures: 1000, error_rate: 1.0 }", extra: String = "") -> String {
        """
        server: { host: 127.0.0.1, port: 0, request_timeout_s: 10 }
        store: { sqlite: ":memory:" }
        providers:
          sim: { kind: simulated, reply: "Hello from the simulator", timeouts: { first_token_ms: 2000 } }
        models:
          - { name: primary, provider: sim, upstream_model: primary, price: { input_per_mtok: 1.0, output_per_mtok: 2.0 }, context_window: 4096, timeouts: { first_token_ms: 150 } }
          - { name: backup, provider: sim, upstream_model: backup, price: { input_per_mtok: 3.0, output_per_mtok: 6.0 }, context_window: 4096 }
          - { name: big, provider: sim, upstream_model: big, price: { input_per_mtok: 5.0, output_per_mtok: 10.0 }, context_window: 32768 }
        aliases:
          chat: { deployments: [primary], strategy: ordered, fallbacks: [backup] }
          long: { deployments: [primary, backup, big], strategy: ordered }
        routing: { retries: 2, backoff_ms: 20, probe_interval_ms: 600000, breaker: \(breaker) }
        logging: { level: error }
        auth: { enabled: false }
        \(extra)
        """
    }

    static func body(_ model: String = "chat", stream: Bool = false) -> ByteBuffer {
        ByteBuffer(string: #"{"model":"\#(model)","messages":[{"role":"user","content":"Hi"}]\#(stream ? #","stream":true"# : "")}"#)
    }

    static func headers(_ pairs: [String: String]) -> HTTPFields {
        var fields = HTTPFields()
        for (k, v) in pairs { fields[HTTPField.Name(k)!] = v }
        return fields
    }

    @Test func halfThePrimaryFailingIsInvisibleToClients() async throws {
        let probe = SimulationProbe()
        let app = try await TestApp.build(yaml: Self.yaml(), probe: probe)
        let fault = Self.headers(["x-sim-fault": "500", "x-sim-fault-model": "primary", "x-sim-fault-rate": "0.5"])
        let total = 10_000
        let (ok, byBackup) = try await app.http.test(.router) { client in
            try await withThrowingTaskGroup(of: (Bool, Bool).self) { tasks in
                var ok = 0
                var byBackup = 0
                var sent = 0
                // 16 at a time.
                for _ in 0..<16 {
                    sent += 1
                    tasks.addTask { try await Self.send(client, fault) }
                }
                while let (success, backup) = try await tasks.next() {
                    if success { ok += 1 }
                    if backup { byBackup += 1 }
                    if sent < total {
                        sent += 1
                        tasks.addTask { try await Self.send(client, fault) }
                    }
                }
                return (ok, byBackup)
            }
        }
        #expect(Double(ok) / Double(total) >= 0.999, "\(ok) of \(total) succeeded")
        // About half failed over; every call reached the primary first.
        #expect(byBackup > total * 4 / 10 && byBackup < total * 6 / 10, "\(byBackup) answered by the backup")
        #expect(probe.started(model: "primary") == total)
        #expect(probe.started(model: "backup") == byBackup)
    }

    static func send(_ client: some TestClientProtocol, _ headers: HTTPFields) async throws -> (Bool, Bool) {
        try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: body()) { response in
            let backup = response.headers[HTTPField.Name("x-sluice-model")!] == "backup"
            if backup { #expect(response.headers[HTTPField.Name("x-sluice-attempts")!] == "2") }
            return (response.status == .ok, backup)
        }
    }

    @Test func aHangingPrimaryIsLeftAtItsFirstTokenTimeout() async throws {
        let probe = SimulationProbe()
        let app = try await TestApp.build(yaml: Self.yaml(), probe: probe)
        let hang = Self.headers(["x-sim-fault": "hang", "x-sim-fault-model": "primary"])
        for stream in [false, true] {
            try await app.http.test(.router) { client in
                let started = ContinuousClock.now
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: hang, body: Self.body(stream: stream)) { response in
                    let elapsed = ContinuousClock.now - started
                    #expect(response.status == .ok)
                    #expect(response.headers[HTTPField.Name("x-sluice-model")!] == "backup")
                    #expect(response.headers[HTTPField.Name("x-sluice-attempts")!] == "2")
                    #expect(String(buffer: response.body).contains("simulator"))
                    // The model entry's 150 ms, not the provider's 2 s.
                    #expect(elapsed >= .milliseconds(150) && elapsed < .milliseconds(1500), "\(elapsed)")
                }
            }
        }
        await app.auditLog.drain()
        let rows = try await app.store.recent(limit: 10)
        #expect(rows.count == 2)
        for row in rows {
            #expect(row.status == 200 && row.attempts == 2 && row.deployment == "backup")
        }
    }

    @Test func aRetryAfterIsWaitedOut() async throws {
        let probe = SimulationProbe()
        let app = try await TestApp.build(yaml: Self.yaml(), probe: probe)
        // Only the first attempt is refused: the retry of the same deployment succeeds.
        let limited = Self.headers(["x-sim-fault": "429", "x-sim-retry-after": "1", "x-sim-fault-attempts": "1"])
        try await app.http.test(.router) { client in
            let started = ContinuousClock.now
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: limited, body: Self.body("backup")) { response in
                let elapsed = ContinuousClock.now - started
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("x-sluice-attempts")!] == "2")
                #expect(elapsed >= .seconds(1) && elapsed < .seconds(3), "\(elapsed)")
            }
            // Too long a Retry-After for the request is the client's 429, not a wait.
            let tooLong = Self.headers(["x-sim-fault": "429", "x-sim-retry-after": "120"])
            let again = ContinuousClock.now
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: tooLong, body: Self.body("backup")) { response in
                #expect(response.status == .tooManyRequests)
                #expect(response.headers[HTTPField.Name("retry-after")!] == "120")
                #expect(response.body.json?["error"]?["code"] == "rate_limit_exceeded")
                #expect(ContinuousClock.now - again < .seconds(1))
            }
        }
        #expect(probe.started(model: "backup") == 3)
    }

    @Test func theBreakerOpensRestsHalfOpensAndCloses() async throws {
        let probe = SimulationProbe()
        // A cool-down long enough that the eight requests before it ends fit in it on a loaded
        // machine (at 400 ms, a parallel test run once let it half-open too early).
        let yaml = Self.yaml(breaker: "{ failures: 3, cooldown_ms: 1500, half_open_probes: 1 }")
        let app = try await TestApp.build(yaml: yaml, probe: probe)
        let failing = Self.headers(["x-sim-fault": "500", "x-sim-fault-model": "primary"])
        try await app.http.test(.router) { client in
            for _ in 0..<3 {
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: failing, body: Self.body()) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[HTTPField.Name("x-sluice-model")!] == "backup")
                }
            }
            #expect(app.board["primary"]?.breakerState == .open)
            #expect(probe.started(model: "primary") == 3)
            // While open: straight to the backup, the primary sees nothing even though it is well now.
            for _ in 0..<5 {
                try await client.execute(uri: "/v1/chat/completions", method: .post, body: Self.body()) { response in
                    #expect(response.headers[HTTPField.Name("x-sluice-model")!] == "backup")
                    #expect(response.headers[HTTPField.Name("x-sluice-attempts")!] == "1")
                }
            }
            #expect(probe.started(model: "primary") == 3)
            // A healthy probe does not close it early.
            await app.prober.probeOpenBreakers()
            #expect(app.board["primary"]?.breakerState == .open)
            try await Task.sleep(for: .milliseconds(1600))
            // The cool-down is over: one request probes the primary, and its success closes the breaker.
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: Self.body()) { response in
                #expect(response.headers[HTTPField.Name("x-sluice-model")!] == "primary")
            }
            #expect(app.board["primary"]?.breakerState == .closed)
            #expect(probe.started(model: "primary") == 4)
        }
    }

    @Test func whenEveryBreakerIsOpenTheAnswerIsA503() async throws {
        let yaml = Self.yaml(breaker: "{ failures: 1, cooldown_ms: 60000 }")
        let app = try await TestApp.build(yaml: yaml)
        let failing = Self.headers(["x-sim-fault": "500"])
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: failing, body: Self.body()) { response in
                #expect(response.status == .badGateway)
            }
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: Self.body()) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[HTTPField.Name("retry-after")!] != nil)
                let message = response.body.json?["error"]?["message"]?.stringValue ?? ""
                #expect(message.contains("circuit breaker open"), "\(message)")
            }
        }
    }

    @Test func aStreamFallsBackOnlyBeforeItsFirstByte() async throws {
        let probe = SimulationProbe()
        let app = try await TestApp.build(yaml: Self.yaml(), probe: probe)
        try await app.http.test(.router) { client in
            // Fails before the first chunk: the backup answers the whole stream.
            let before = Self.headers(["x-sim-fault": "503", "x-sim-fault-model": "primary"])
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: before, body: Self.body(stream: true)) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("x-sluice-model")!] == "backup")
                let text = String(buffer: response.body)
                #expect(text.hasSuffix("data: [DONE]\n\n"))
                #expect(text.contains(#""model":"backup""#))
            }
            #expect(probe.started(model: "backup") == 1)
            // Fails midway: what was sent stays sent, and the stream ends with an error event.
            let midway = Self.headers(["x-sim-fault": "cut", "x-sim-fault-model": "primary"])
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: midway, body: Self.body(stream: true)) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("x-sluice-model")!] == "primary")
                let events = String(buffer: response.body).components(separatedBy: "\n\n").filter { !$0.isEmpty }
                #expect(events.first?.contains(#""model":"primary""#) == true)
                #expect(events.last?.contains(#""error""#) == true)
                #expect(!events.contains("data: [DONE]"))
            }
            #expect(probe.started(model: "backup") == 1, "no second answer was started after bytes had gone out")
        }
    }

    @Test func aContextLengthErrorMovesToALargerWindowOnly() async throws {
        let probe = SimulationProbe()
        let app = try await TestApp.build(yaml: Self.yaml(), probe: probe)
        let tooLong = Self.headers(["x-sim-fault": "context", "x-sim-fault-model": "primary"])
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: tooLong, body: Self.body("long")) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("x-sluice-model")!] == "big")
                #expect(response.headers[HTTPField.Name("x-sluice-attempts")!] == "2")
            }
            // backup's window is no larger than primary's: it was skipped.
            #expect(probe.started(model: "backup") == 0)
            // On a single entry there is nowhere larger to go: the client sees the 400.
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: tooLong, body: Self.body("primary")) { response in
                #expect(response.status == .badRequest)
                #expect(response.body.json?["error"]?["code"] == "context_length_exceeded")
            }
            #expect(probe.started(model: "primary") == 2, "a context error is not retried on the same window")
        }
        // A prompt that surely cannot fit is refused before any call, and big takes it directly.
        let huge = String(repeating: "word ", count: 8000)
        try await app.http.test(.router) { client in
            let body = ByteBuffer(string: #"{"model":"long","messages":[{"role":"user","content":"\#(huge)"}]}"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: body) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("x-sluice-model")!] == "big")
                #expect(response.headers[HTTPField.Name("x-sluice-attempts")!] == "1")
            }
            let body2 = ByteBuffer(string: #"{"model":"primary","messages":[{"role":"user","content":"\#(huge)"}]}"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: body2) { response in
                #expect(response.status == .badRequest)
                #expect(response.body.json?["error"]?["code"] == "context_length_exceeded")
            }
        }
    }

    /// One vendor's content filter is not another's: the next deployment is tried, and a single
    /// entry's refusal reaches the client as a 400 `content_filter`.
    @Test func aContentFilterRefusalMovesToTheNextDeployment() async throws {
        let probe = SimulationProbe()
        let app = try await TestApp.build(yaml: Self.yaml(), probe: probe)
        let filtered = Self.headers(["x-sim-fault": "content_filter", "x-sim-fault-model": "primary"])
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: filtered, body: Self.body("long")) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("x-sluice-model")!] == "backup")
                #expect(response.headers[HTTPField.Name("x-sluice-attempts")!] == "2")
            }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: filtered, body: Self.body("primary")) { response in
                #expect(response.status == .badRequest)
                #expect(response.body.json?["error"]?["code"] == "content_filter")
            }
            #expect(probe.started(model: "primary") == 2, "a refusal is not retried on the same deployment")
        }
    }

    @Test func complexityRoutingSendsHardRequestsToTheStrongEntryAndLogsTheScore() async throws {
        let yaml = Self.yaml(extra: "").replacingOccurrences(
            of: "  long: { deployments: [primary, backup, big], strategy: ordered }",
            with: "  long: { deployments: [primary, backup, big], strategy: ordered }\n  smart: { strategy: complexity, complexity: { cheap: primary, strong: big, threshold: 0.5 } }")
        let app = try await TestApp.build(yaml: yaml)
        let hard = "Implement a thread-safe LRU cache in Swift, explain the concurrency trade-offs, and write unit tests for every edge case."
        try await app.http.test(.router) { client in
            for (id, text, expected) in [("easy-1", "Hi there!", "primary"), ("hard-1", hard, "big")] {
                let body = ByteBuffer(string: #"{"model":"smart","messages":[{"role":"user","content":"\#(text)"}]}"#)
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.headers(["x-request-id": id]), body: body) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[HTTPField.Name("x-sluice-model")!] == expected)
                }
            }
        }
        await app.auditLog.drain()
        let rows = try await app.store.recent(limit: 10)
        let easy = try #require(rows.first { $0.id == "easy-1" }?.details.routingScore)
        let strong = try #require(rows.first { $0.id == "hard-1" }?.details.routingScore)
        #expect(easy < 0.5 && strong >= 0.5)
    }

    @Test func everyAttemptIsInTheAuditLog() async throws {
        let app = try await TestApp.build(yaml: Self.yaml())
        let failing = Self.headers(["x-sim-fault": "500", "x-sim-fault-model": "primary", "x-request-id": "audit-attempts"])
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: failing, body: Self.body()) { response in
                #expect(response.status == .ok)
            }
        }
        await app.auditLog.drain()
        let row = try #require(try await app.store.recent(limit: 1).first)
        #expect(row.attempts == 2)
        #expect(row.deployment == "backup")
        let detail = row.details.attempts
        #expect(detail.map(\.deployment) == ["primary", "backup"])
        #expect(detail.map(\.status) == [500, 200])
        #expect(detail[0].errorCode == "upstream_error")
        #expect(detail[1].errorCode == nil)
    }
}
