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
