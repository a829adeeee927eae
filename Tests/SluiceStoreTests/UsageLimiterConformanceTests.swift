import Foundation
import Logging
import SluiceCore
import Testing
@testable import SluiceStore

/// The `UsageLimiter` contract, on the in-memory limiter and on PostgreSQL (when the test cluster
/// is up): concurrent admissions never pass a limit together, refusals reserve nothing, and
/// settling turns reservations into real usage.
@Suite struct UsageLimiterConformanceTests {
    /// Each limiter with a settle that has finished when it returns.
    func limiters() async throws -> [(String, any UsageLimiter, @Sendable (any UsageLimiter, AdmissionGrant, Int, Double) async throws -> Void)] {
        var out: [(String, any UsageLimiter, @Sendable (any UsageLimiter, AdmissionGrant, Int, Double) async throws -> Void)] = [
            ("local", LocalUsageLimiter(ledger: nil), { l, g, t, c in l.settle(g, tokens: t, costUSD: c) })
        ]
        if let url = try await PostgresTestDatabase.fresh() {
            let db = try await PostgresDatabase(url: url, logger: Logger(label: "test"))
            out.append(("postgres", PostgresUsageLimiter(database: db), { l, g, t, c in try await (l as! PostgresUsageLimiter).settleNow(g, tokens: t, costUSD: c) }))
        }
        return out
    }

    func ask(_ scope: String, _ limits: Limits, tokens: Int = 10, cost: Double = 0) -> AdmissionRequest {
        AdmissionRequest(scopes: [.init(id: scope, limits: limits)], tokens: tokens, costUSD: cost)
    }

    @Test func concurrentAdmissionsNeverPassTheRequestLimit() async throws {
        for (name, limiter, _) in try await limiters() {
            let admitted = try await withThrowingTaskGroup(of: Bool.self) { tasks in
                for _ in 0..<200 {
                    tasks.addTask {
                        do {
                            _ = try await limiter.admit(ask("key:burst", Limits(rpm: 50)))
                            return true
                        } catch let error as SluiceError where error.httpStatus == 429 {
                            return false
                        }
                    }
                }
                return try await tasks.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(admitted == 50, "\(name)")
        }
    }

    @Test func tokenReservationsAreReconciled() async throws {
        for (name, limiter, settle) in try await limiters() {
            let limits = Limits(tpm: 100)
            let g = try await limiter.admit(ask("key:tok", limits, tokens: 90))
            await #expect(throws: SluiceError.self, "\(name)") { try await limiter.admit(ask("key:tok", limits, tokens: 20)) }
            try await settle(limiter, g, 30, 0)
            let h = try await limiter.admit(ask("key:tok", limits, tokens: 60))
            #expect(h.headers.first { $0.0 == "x-ratelimit-remaining-tokens" }?.1 == "10", "\(name)")
        }
    }

    @Test func aRefusalReservesNothingInAnyScope() async throws {
        for (name, limiter, settle) in try await limiters() {
            let team = AdmissionRequest.Scope(id: "team:t", limits: Limits(maxConcurrent: 1))
            let a = AdmissionRequest(scopes: [.init(id: "key:a", limits: Limits(rpm: 5)), team], tokens: 1, costUSD: 0)
            let b = AdmissionRequest(scopes: [.init(id: "key:b", limits: Limits(rpm: 1)), team], tokens: 1, costUSD: 0)
            let g = try await limiter.admit(a)
            await #expect(throws: SluiceError.self, "\(name)") { try await limiter.admit(b) }
            try await settle(limiter, g, 1, 0)
            // b's one request per minute was not used by the refusal.
            _ = try await limiter.admit(b)
        }
    }

    @Test func budgetsReserveTheMostACallCanCost() async throws {
        for (name, limiter, settle) in try await limiters() {
            let limits = Limits(budgetUSDDay: 0.10)
            let g1 = try await limiter.admit(ask("key:money", limits, cost: 0.04))
            _ = try await limiter.admit(ask("key:money", limits, cost: 0.04))
            let refused = await #expect(throws: SluiceError.self, "\(name)") { try await limiter.admit(ask("key:money", limits, cost: 0.04)) }
            #expect(refused?.code == .insufficientQuota, "\(name)")
            #expect((refused?.retryAfter ?? 0) > 0, "\(name)")
            // The first call cost less than reserved: the difference is free again.
            try await settle(limiter, g1, 1, 0.01)
            _ = try await limiter.admit(ask("key:money", limits, cost: 0.04))
        }
    }
}
