import SluiceCore
import Testing

@testable import SluiceRouting

@Suite struct CircuitBreakerTests {
    static func config(failures: Int = 3, errorRate: Double = 0.5, minRequests: Int = 10, cooldownMs: Int = 1000, probes: Int = 1) -> BreakerConfig {
        var c = BreakerConfig()
        c.failures = failures
        c.errorRate = errorRate
        c.minRequests = minRequests
        c.windowS = 10
        c.cooldownMs = cooldownMs
        c.halfOpenProbes = probes
        return c
    }

    @Test func opensAfterConsecutiveFailuresAndRefusesUntilTheCooldown() {
        var breaker = CircuitBreaker(config: Self.config())
        let t0 = ContinuousClock.now
        for i in 0..<2 {
            do { let allowed = breaker.allow(now: t0); #expect(allowed) }
            breaker.record(success: false, now: t0 + .milliseconds(i))
            #expect(breaker.state == .closed)
        }
        // A success in between resets the count of consecutive failures.
        do { let allowed = breaker.allow(now: t0); #expect(allowed) }
        breaker.record(success: true, now: t0)
        for _ in 0..<2 { breaker.record(success: false, now: t0) }
        #expect(breaker.state == .closed)
        breaker.record(success: false, now: t0)
        #expect(breaker.state == .open)
        do { let allowed = breaker.allow(now: t0 + .milliseconds(999)); #expect(!allowed) }
        #expect(!breaker.isAvailable(now: t0 + .milliseconds(999)))
        #expect(breaker.isAvailable(now: t0 + .milliseconds(1000)))
    }

    @Test func halfOpenLetsOnlyTheProbesThroughAndClosesOnTheirSuccess() {
        var breaker = CircuitBreaker(config: Self.config(failures: 1, cooldownMs: 100, probes: 2))
        let t0 = ContinuousClock.now
        breaker.record(success: false, now: t0)
        #expect(breaker.state == .open)
        let later = t0 + .milliseconds(150)
        do { let allowed = breaker.allow(now: later); #expect(allowed) }
        #expect(breaker.state == .halfOpen)
        do { let allowed = breaker.allow(now: later); #expect(allowed) }
        do { let allowed = breaker.allow(now: later); #expect(!allowed, "only two probes at once") }
        breaker.record(success: true, now: later)
        #expect(breaker.state == .halfOpen, "one success of two is not enough")
        breaker.record(success: true, now: later)
        #expect(breaker.state == .closed)
        do { let allowed = breaker.allow(now: later); #expect(allowed) }
    }

    @Test func aFailedProbeOpensItAgainForAWholeCooldown() {
        var breaker = CircuitBreaker(config: Self.config(failures: 1, cooldownMs: 100))
        let t0 = ContinuousClock.now
        breaker.record(success: false, now: t0)
        let t1 = t0 + .milliseconds(100)
        do { let allowed = breaker.allow(now: t1); #expect(allowed) }
        breaker.record(success: false, now: t1)
        #expect(breaker.state == .open)
        do { let allowed = breaker.allow(now: t1 + .milliseconds(99)); #expect(!allowed) }
        do { let allowed = breaker.allow(now: t1 + .milliseconds(100)); #expect(allowed) }
    }

    @Test func aCancelledProbeGivesItsSlotBack() {
        var breaker = CircuitBreaker(config: Self.config(failures: 1, cooldownMs: 0))
        let t0 = ContinuousClock.now
        breaker.record(success: false, now: t0)
        do { let allowed = breaker.allow(now: t0); #expect(allowed) }
        do { let allowed = breaker.allow(now: t0); #expect(!allowed) }
        breaker.release()
        do { let allowed = breaker.allow(now: t0); #expect(allowed) }
    }

    @Test func opensOnTheErrorRateOnlyPastTheMinimumVolume() {
        var breaker = CircuitBreaker(config: Self.config(failures: 100, errorRate: 0.5, minRequests: 10))
        let t0 = ContinuousClock.now
        // Alternating: never 100 in a row, but half of them fail.
        for i in 0..<9 {
            breaker.record(success: i % 2 == 1, now: t0)
        }
        #expect(breaker.state == .closed, "9 requests are under the minimum")
        breaker.record(success: false, now: t0)
        #expect(breaker.state == .open)
    }

    @Test func oldOutcomesLeaveTheWindow() {
        var window = OutcomeWindow(seconds: 5)
        let t0 = ContinuousClock.now
        for _ in 0..<10 { window.add(failure: true, now: t0) }
        #expect(window.errorRate(now: t0, minRequests: 1) == 1)
        for _ in 0..<10 { window.add(failure: false, now: t0 + .seconds(3)) }
        #expect(window.errorRate(now: t0 + .seconds(3), minRequests: 1) == 0.5)
        #expect(window.errorRate(now: t0 + .seconds(6), minRequests: 1) == 0, "the failures are over 5 s old")
        #expect(window.errorRate(now: t0 + .seconds(20), minRequests: 1) == 0)
    }

    @Test func statusCountsInFlightAndHonoursRetryAfter() {
        let status = DeploymentStatus(name: "d", breaker: Self.config(failures: 2))
        let t0 = ContinuousClock.now
        #expect(status.begin(now: t0) == .granted)
        #expect(status.begin(now: t0) == .granted)
        #expect(status.snapshot().inFlight == 2)
        status.finish(.success(latency: .milliseconds(100), streamed: false), now: t0)
        status.finish(.rateLimited(retryAfter: .seconds(2)), now: t0)
        #expect(status.snapshot().inFlight == 0)
        #expect(status.snapshot().latencyMs == 100)
        #expect(status.begin(now: t0 + .seconds(1)) == .cooling(until: t0 + .seconds(2)))
        #expect(!status.isAvailable(now: t0 + .seconds(1)))
        #expect(status.begin(now: t0 + .seconds(2)) == .granted)
        status.finish(.success(latency: .milliseconds(200), streamed: false), now: t0)
        #expect(abs((status.snapshot().latencyMs ?? 0) - 120) < 1e-9, "moving average: 100 + 0.2 × (200 − 100)")
        // Rate limits are not failures: the breaker stays closed.
        #expect(status.breakerState == .closed)
        for _ in 0..<2 {
            #expect(status.begin(now: t0 + .seconds(3)) == .granted)
            status.finish(.failure, now: t0 + .seconds(3))
        }
        #expect(status.breakerState == .open)
        #expect(status.begin(now: t0 + .seconds(3)) == .breakerOpen)
    }
}

@Suite struct BackoffTests {
    @Test func growsExponentiallyWithEqualJitterUpToTheCap() {
        let b = Backoff(base: .milliseconds(100), cap: .milliseconds(1000))
        #expect(b.delay(round: 0, unit: 0.5) == .zero)
        #expect(b.delay(round: 1, unit: 0) == .milliseconds(50))
        #expect(b.delay(round: 1, unit: 1) == .milliseconds(100))
        #expect(b.delay(round: 2, unit: 0) == .milliseconds(100))
        #expect(b.delay(round: 3, unit: 0.5) == .milliseconds(300))
        #expect(b.delay(round: 10, unit: 1) == .milliseconds(1000))
        #expect(b.delay(round: 1000, unit: 0) == .milliseconds(500), "a huge round neither overflows nor passes the cap")
        for _ in 0..<100 {
            let d = b.delay(round: 2)
            #expect(d >= .milliseconds(100) && d <= .milliseconds(200))
        }
    }
}
