import Foundation
import Synchronization
import Testing
@testable import SluiceCore

/// `LocalUsageLimiter` with a clock the tests move.
@Suite struct UsageLimiterTests {
    final class TestClock: Sendable {
        let now = Mutex<Double>(1_795_000_000)  // 2026-11-18
        func advance(_ s: Double) { now.withLock { $0 += s } }
        var read: @Sendable () -> Double { { self.now.withLock { $0 } } }
    }

    struct Ledger: SpendLedger {
        let spent: Double
        func spend(keyID: String?, teamID: String?, since: Double) async throws -> Double { spent }
    }

    func ask(_ limits: Limits, tokens: Int = 10, cost: Double = 0) -> AdmissionRequest {
        AdmissionRequest(scopes: [.init(id: "key:k", limits: limits)], tokens: tokens, costUSD: cost)
    }

    @Test func requestsPerMinuteSlideWithTime() async throws {
        let clock = TestClock()
        let limiter = LocalUsageLimiter(ledger: nil, clock: clock.read)
        for _ in 0..<3 {
            let g = try await limiter.admit(ask(Limits(rpm: 3)))
            limiter.settle(g, tokens: 10, costUSD: 0)
            clock.advance(10)
        }
        let refused = await #expect(throws: SluiceError.self) { try await limiter.admit(ask(Limits(rpm: 3))) }
        #expect(refused?.httpStatus == 429)
        #expect(refused?.retryAfter == 30)  // the first request leaves the window 60 s after it came
        #expect(refused?.headers["x-ratelimit-remaining-requests"] == "0")
        clock.advance(30)
        _ = try await limiter.admit(ask(Limits(rpm: 3)))
    }

    @Test func tokenReservationsBecomeTheRealCount() async throws {
        let clock = TestClock()
        let limiter = LocalUsageLimiter(ledger: nil, clock: clock.read)
        let limits = Limits(tpm: 100)
        let g = try await limiter.admit(ask(limits, tokens: 90))
        await #expect(throws: SluiceError.self) { try await limiter.admit(ask(limits, tokens: 20)) }
        limiter.settle(g, tokens: 30, costUSD: 0)
        let h = try await limiter.admit(ask(limits, tokens: 60))
        #expect(h.headers.first { $0.0 == "x-ratelimit-remaining-tokens" }?.1 == "10")
        // One request larger than the whole minute's allowance can never pass: a 400, not a 429.
        let tooBig = await #expect(throws: SluiceError.self) { try await limiter.admit(ask(limits, tokens: 101)) }
        #expect(tooBig?.httpStatus == 400)
    }

    @Test func concurrencySlotsAndTeamLimitsApplyTogether() async throws {
        let limiter = LocalUsageLimiter(ledger: nil)
        let team = AdmissionRequest.Scope(id: "team:t", limits: Limits(maxConcurrent: 1))
        let a = AdmissionRequest(scopes: [.init(id: "key:a", limits: Limits(maxConcurrent: 5)), team], tokens: 1, costUSD: 0)
        let b = AdmissionRequest(scopes: [.init(id: "key:b", limits: Limits()), team], tokens: 1, costUSD: 0)
        let g = try await limiter.admit(a)
        await #expect(throws: SluiceError.self) { try await limiter.admit(b) }
        // The refusal reserved nothing for key b.
        #expect(limiter.inFlight("key:b") == 0)
        limiter.settle(g, tokens: 1, costUSD: 0)
        _ = try await limiter.admit(b)
        #expect(limiter.inFlight("team:t") == 1)
    }

    @Test func budgetsStartFromRecordedSpendAndRenewAtMidnightUTC() async throws {
        let clock = TestClock()
        let limiter = LocalUsageLimiter(ledger: Ledger(spent: 0.95), clock: clock.read)
        let limits = Limits(budgetUSDDay: 1.0)
        let g = try await limiter.admit(ask(limits, cost: 0.04))
        let refused = await #expect(throws: SluiceError.self) { try await limiter.admit(ask(limits, cost: 0.04)) }
        #expect(refused?.code == .insufficientQuota)
        limiter.settle(g, tokens: 1, costUSD: 0.01)
        _ = try await limiter.admit(ask(limits, cost: 0.03))
        // The next UTC day: the ledger is read again for the new window.
        clock.advance(86_400)
        _ = try await limiter.admit(ask(limits, cost: 0.04))
    }

    @Test func monthArithmeticMatchesTheCalendar() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        for t in stride(from: 0.0, to: 4_000_000_000, by: 2_345_678.9) {
            let date = Date(timeIntervalSince1970: t)
            let start = calendar.date(from: calendar.dateComponents([.year, .month], from: date))!
            let next = calendar.date(byAdding: .month, value: 1, to: start)!
            #expect(LimitRules.monthStart(t) == start.timeIntervalSince1970)
            #expect(LimitRules.nextMonthStart(t) == next.timeIntervalSince1970)
        }
    }
}
