import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PostgresNIO
import ServiceLifecycle
import SluiceCore
import SluiceStore
import SluiceTesting
import Testing
@testable import SluiceObservability
@testable import SluiceServer

/// A fresh database on the test cluster (`SLUICE_TEST_POSTGRES_URL`, set by `make test`).
enum TestPostgres {
    static let url = ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"]
    static var available: Bool { url != nil }

    /// Creates an empty database and returns its URL.
    static func freshDatabase() async throws -> String {
        let name = "sluice_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        return try await PostgresDatabase.createDatabase(name, on: try #require(url))
    }
}

/// Two Sluice replicas on one PostgreSQL: limits hold across both, revocation reaches both.
@Suite(.serialized, .enabled(if: TestPostgres.available, "needs SLUICE_TEST_POSTGRES_URL (make test starts a cluster)"))
struct PostgresReplicaTests {
    static let adminKey = AccessTests.adminKey

    static func yaml(_ url: String) -> String {
        AccessTests.yaml.replacingOccurrences(of: #"store: { sqlite: ":memory:" }"#, with: "store: { postgres: \"\(url)\" }")
    }

    /// Runs two replicas on one fresh database and hands their base URLs to `body`.
    static func twoReplicas<T: Sendable>(_ body: @Sendable (String, String, SluiceApplication, SluiceApplication) async throws -> T) async throws -> T {
        let url = try await TestPostgres.freshDatabase()
        return try await TestApp.live(yaml: yaml(url), adminKey: adminKey) { a, appA, _ in
            try await TestApp.live(yaml: yaml(url), adminKey: adminKey) { b, appB, _ in
                try await body(a, b, appA, appB)
            }
        }
    }

    @Test func aHundredPerMinuteHoldsAcrossTwoReplicas() async throws {
        try await Self.twoReplicas { a, b, _, _ in
            try await withHTTPClient(configuration: AccessTests.pooled(64)) { client in
                let key = try await AccessTests.createKeyLive(client, a, #"{"name":"shared","rpm":100}"#)
                // The other replica learns of the key by polling the store (listing models is not rate-limited).
                try await Self.waitUntilAccepted(client, b, key)
                let statuses = try await withThrowingTaskGroup(of: UInt.self) { tasks in
                    for i in 0..<1000 {
                        tasks.addTask { try await AccessTests.chat(client, i % 2 == 0 ? a : b, key).status.code }
                    }
                    return try await tasks.reduce(into: [UInt: Int]()) { $0[$1, default: 0] += 1 }
                }
                try await client.shutdown()
                #expect(statuses == [200: 100, 429: 900])
            }
        }
    }

    @Test func aRevokedKeyIsRefusedOnBothReplicas() async throws {
        try await Self.twoReplicas { a, b, _, _ in
            try await withHTTPClient(configuration: AccessTests.pooled(4)) { client in
                let (id, key) = try await AccessTests.createKeyLive(client, a, #"{"name":"doomed"}"#, withID: true)
                try await Self.waitUntilAccepted(client, b, key)
                var revoke = HTTPClientRequest(url: a + "/admin/keys/\(id)")
                revoke.method = .DELETE
                revoke.headers.add(name: "authorization", value: "Bearer \(Self.adminKey)")
                let revokedAt = ContinuousClock.now
                #expect(try await client.execute(revoke, timeout: .seconds(10)).status == .ok)
                // The replica that revoked it refuses it at once; the other within a second.
                #expect(try await AccessTests.chat(client, a, key).status == .forbidden)
                while try await AccessTests.chat(client, b, key).status != .forbidden {
                    #expect(ContinuousClock.now - revokedAt < .seconds(1), "replica b still accepts the revoked key")
                    if ContinuousClock.now - revokedAt > .seconds(3) { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await client.shutdown()
            }
        }
    }

    @Test func budgetAndSlotsHoldOnPostgres() async throws {
        try await Self.twoReplicas { a, b, appA, _ in
            try await withHTTPClient(configuration: AccessTests.pooled(32)) { client in
                let (id, key) = try await AccessTests.createKeyLive(client, a, #"{"name":"pg","max_concurrent":8,"budget_usd_day":0.002}"#, withID: true)
                try await Self.waitUntilAccepted(client, b, key)
                // 1 + 2 per million tokens: ~0.0001 USD reserved per request at max_tokens 40.
                let statuses = try await withThrowingTaskGroup(of: UInt.self) { tasks in
                    for i in 0..<100 {
                        tasks.addTask { try await AccessTests.chat(client, i % 2 == 0 ? a : b, key, extra: #","max_tokens":40"#).status.code }
                    }
                    return try await tasks.reduce(into: [UInt: Int]()) { $0[$1, default: 0] += 1 }
                }
                try await client.shutdown()
                #expect(statuses[200, default: 0] > 0 && statuses[429, default: 0] > 0)
                let limiter = try #require(appA.limiter as? PostgresUsageLimiter)
                for _ in 0..<100 where try await limiter.inFlight("key:\(id)") > 0 {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(try await limiter.inFlight("key:\(id)") == 0)
                await appA.auditLog.drain()
                let spent = try await appA.auditLogLedger.spend(keyID: id, teamID: nil, since: 0)
                #expect(spent <= 0.002 + 1e-12, "spent \(spent)")
            }
        }
    }

    static func waitUntilAccepted(_ client: HTTPClient, _ base: String, _ key: String) async throws {
        for _ in 0..<100 {
            var request = HTTPClientRequest(url: base + "/v1/models")
            request.headers.add(name: "authorization", value: "Bearer \(key)")
            if try await client.execute(request, timeout: .seconds(5)).status == .ok { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the key never reached replica \(base)")
    }
}

/// Flow versions on two replicas: one pushes and activates, the other serves it within a refresh;
/// a rollback on the second reaches the first.
@Suite(.serialized, .enabled(if: TestPostgres.available, "needs SLUICE_TEST_POSTGRES_URL (make test starts a cluster)"))
struct FlowVersionReplicaTests {
    static func yaml(_ url: String) -> String {
        PostgresReplicaTests.yaml(url) + """

            flows:
              summarize:
                model: sim-small
                messages: [{ role: user, content: "Summarize: {{text}}" }]
                input: { type: object, required: [text], properties: { text: { type: string } } }
            """
    }

    static func call(_ client: HTTPClient, _ base: String, _ method: HTTPMethod, _ path: String, _ body: String?) async throws -> (UInt, String) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "authorization", value: "Bearer \(PostgresReplicaTests.adminKey)")
        request.headers.add(name: "x-sim-mode", value: "echo")
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(10))
        return (response.status.code, String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    /// The output a replica's active version gives, polled until it is `expected` (or 3 s pass).
    static func waitForOutput(_ client: HTTPClient, _ base: String, _ expected: String) async throws -> String {
        var last = ""
        for _ in 0..<150 {
            let (_, body) = try await call(client, base, .POST, "/v1/flows/summarize/run", #"{"input":{"text":"tides"}}"#)
            last = (try? JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: body)))?["output"]?.stringValue ?? body
            if last == expected { return last }
            try await Task.sleep(for: .milliseconds(20))
        }
        return last
    }

    @Test func aVersionActivatedOnOneReplicaIsServedByTheOther() async throws {
        let url = try await TestPostgres.freshDatabase()
        try await TestApp.live(yaml: Self.yaml(url), adminKey: PostgresReplicaTests.adminKey) { a, _, _ in
            try await TestApp.live(yaml: Self.yaml(url), adminKey: PostgresReplicaTests.adminKey) { b, _, _ in
                try await withHTTPClient { client in
                    #expect(try await Self.waitForOutput(client, b, "Summarize: tides") == "Summarize: tides")
                    let (created, body) = try await Self.call(
                        client, a, .POST, "/admin/flows/summarize/versions", #"{"model":"sim-small","messages":[{"role":"user","content":"Digest: {{text}}"}]}"#)
                    #expect(created == 201, "\(body)")
                    #expect(body.contains(#""version":2"#))
                    // Pushed is not active: runs still get version 1 unless they ask.
                    #expect(try await Self.waitForOutput(client, b, "Summarize: tides") == "Summarize: tides")
                    let (activated, _) = try await Self.call(client, a, .POST, "/admin/flows/summarize/activate", #"{"version":2}"#)
                    #expect(activated == 200)
                    #expect(try await Self.waitForOutput(client, b, "Digest: tides") == "Digest: tides")
                    // Rollback is activating the older one, from either replica.
                    let (rolledBack, _) = try await Self.call(client, b, .POST, "/admin/flows/summarize/activate", #"{"version":1}"#)
                    #expect(rolledBack == 200)
                    #expect(try await Self.waitForOutput(client, a, "Summarize: tides") == "Summarize: tides")
                }
            }
        }
    }
}
