import Foundation
import SluiceCore
import Testing
@testable import SluiceStore

/// The `AccessStore` contract, on SQLite (the PostgreSQL store will run the same checks).
@Suite struct AccessStoreTests {
    func stores() throws -> [any AccessStore] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("access-\(UUID().uuidString).db").path
        return [SQLiteAccessStore(database: try SQLiteDatabase(path: ":memory:")), SQLiteAccessStore(database: try SQLiteDatabase(path: file))]
    }

    @Test func keysAndTeamsRoundTripAndBumpTheGeneration() async throws {
        for store in try stores() {
            let g0 = try await store.generation()
            let team = TeamRecord(id: "team_1", name: "search", limits: Limits(rpm: 10, budgetUSDMonth: 5), metadata: ["cc": "42"], createdAt: 1)
            try await store.insertTeam(team)
            var key = APIKeyRecord(
                id: "key_1", name: "svc", teamID: "team_1", role: .app, prefix: "sk-sluice-AbCd…", hash: "ab12", createdAt: 2,
                expiresAt: 99, models: ["m1", "m2"], limits: Limits(tpm: 1000, maxConcurrent: 3), priority: .high, metadata: ["owner": "me"])
            try await store.insertKey(key)
            #expect(try await store.key(hash: "ab12") == key)
            #expect(try await store.team(name: "search") == team)
            key.revokedAt = 50
            key.limits.rpm = 7
            key.models = nil
            try await store.updateKey(key)
            #expect(try await store.key(id: "key_1") == key)
            #expect(try await store.keys() == [key])
            #expect(try await store.teams() == [team])
            #expect(try await store.generation() == g0 + 3)
            #expect(try await store.key(hash: "nope") == nil)
        }
    }

    @Test func spendIsSummedPerKeyAndTeamFromTheAuditLog() async throws {
        let database = try SQLiteDatabase(path: ":memory:")
        let log = SQLiteRequestLogStore(database: database)
        func row(_ id: String, key: String, team: String, time: Double, cost: Double) -> RequestRecord {
            RequestRecord(
                id: id, time: time, endpoint: "chat.completions", keyID: key, modelRequested: "m", deployment: "m", status: 200, errorCode: nil,
                latencyMs: 1, ttftMs: nil, tokensIn: 1, tokensOut: 1, costUSD: cost, cacheStatus: "none", stream: false, attempts: 1, teamID: team)
        }
        try await log.append([
            row("a", key: "k1", team: "t1", time: 100, cost: 0.5), row("b", key: "k1", team: "t1", time: 200, cost: 0.25),
            row("c", key: "k2", team: "t1", time: 200, cost: 1), row("d", key: "k2", team: "", time: 50, cost: 9),
        ])
        #expect(try await log.spend(keyID: "k1", teamID: nil, since: 0) == 0.75)
        #expect(try await log.spend(keyID: "k1", teamID: nil, since: 150) == 0.25)
        #expect(try await log.spend(keyID: nil, teamID: "t1", since: 0) == 1.75)
        #expect(try await log.recent(limit: 10).first { $0.id == "c" }?.teamID == "t1")
    }
}
