import Foundation
import Logging
import PostgresNIO
import SluiceCore
import Testing
@testable import SluiceStore

/// The `AccessStore` contract, on SQLite (the PostgreSQL store will run the same checks).
@Suite struct AccessStoreTests {
    /// SQLite in memory and on disk, and PostgreSQL when the test cluster is up (`make test`).
    func stores() async throws -> [any AccessStore] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("access-\(UUID().uuidString).db").path
        var out: [any AccessStore] = [
            SQLiteAccessStore(database: try SQLiteDatabase(path: ":memory:")), SQLiteAccessStore(database: try SQLiteDatabase(path: file)),
        ]
        if let url = try await PostgresTestDatabase.fresh() {
            out.append(PostgresAccessStore(database: try await PostgresDatabase(url: url, logger: Logger(label: "test"))))
        }
        return out
    }

    @Test func keysAndTeamsRoundTripAndBumpTheGeneration() async throws {
        for store in try await stores() {
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

    /// A duplicate team name (two writers past the admin API's check) is a 409, on both stores.
    @Test func aDuplicateTeamNameIsAConflict() async throws {
        for store in try await stores() {
            try await store.insertTeam(TeamRecord(id: "team_a", name: "red", createdAt: 1))
            try await store.insertTeam(TeamRecord(id: "team_b", name: "blue", createdAt: 2))
            let insert = await #expect(throws: SluiceError.self) { try await store.insertTeam(TeamRecord(id: "team_c", name: "red", createdAt: 3)) }
            #expect(insert?.httpStatus == 409)
            let rename = await #expect(throws: SluiceError.self) { try await store.updateTeam(TeamRecord(id: "team_b", name: "red", createdAt: 2)) }
            #expect(rename?.httpStatus == 409)
            #expect(try await store.teams().map(\.name) == ["red", "blue"])
        }
    }

    @Test func spendIsSummedPerKeyAndTeamFromTheAuditLog() async throws {
        var logs: [any Stores.AuditLog] = [SQLiteAuditLogStore(database: try SQLiteDatabase(path: ":memory:"))]
        if let url = try await PostgresTestDatabase.fresh() {
            logs.append(PostgresAuditLogStore(database: try await PostgresDatabase(url: url, logger: Logger(label: "test"))))
        }
        for log in logs { try await checkSpendAndUsage(log) }
    }

    func checkSpendAndUsage(_ log: any Stores.AuditLog) async throws {
        func row(_ id: String, key: String, team: String, time: Double, cost: Double) -> AuditRecord {
            AuditRecord(
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
        #expect(try await log.count() == 4)
        let byKey = try await log.usage(UsageQuery(groupBy: .key))
        #expect(byKey.map(\.group) == ["k1", "k2"])
        #expect(byKey.map(\.requests) == [2, 2])
        #expect(try await log.usage(UsageQuery(from: 100, to: 201, teamID: "t1")).first?.costUSD == 1.75)
        let byDay = try await log.usage(UsageQuery(groupBy: .day))
        #expect(byDay.map(\.group) == ["1970-01-01"])
        // A repeated id replaces the row (the newest wins) instead of failing the batch.
        try await log.append([row("a", key: "k1", team: "t1", time: 300, cost: 0.125)])
        #expect(try await log.count() == 4)
        #expect(try await log.spend(keyID: "k1", teamID: nil, since: 0) == 0.375)
    }
}

/// A fresh database on the test cluster (`SLUICE_TEST_POSTGRES_URL`, set by `make test`), or nil.
enum PostgresTestDatabase {
    static func fresh() async throws -> String? {
        guard let base = ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"] else { return nil }
        let name = "sluice_s_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        return try await PostgresDatabase.createDatabase(name, on: base)
    }
}
