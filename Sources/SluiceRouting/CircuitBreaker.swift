import SluiceCore

/// The state machine of one deployment's circuit breaker, as a value: `closed` lets everything
/// through; too many failures (in a row, or as a share of a window) open it; after the cool-down
/// it is `halfOpen` and lets `half_open_probes` requests through at once; that many successes
/// close it, one failure opens it again. Time is passed in, so tests need no clock.
public struct CircuitBreaker: Sendable {
    /// Where the breaker stands.
    public enum State: String, Sendable, Hashable {
        case closed
        case open
        case halfOpen = "half-open"

        /// The value exported as a metric: 0 closed, 1 half-open, 2 open.
        public var metricValue: Int {
            switch self {
            case .closed: 0
            case .halfOpen: 1
            case .open: 2
            }
        }
    }

    public let config: BreakerConfig
    public private(set) var state: State = .closed
    /// When the breaker last opened (nil while closed).
    public private(set) var openedAt: ContinuousClock.Instant?
    private var consecutiveFailures = 0
    private var probesInFlight = 0
    private var probeSuccesses = 0
    private var window: OutcomeWindow

    public init(config: BreakerConfig) {
        self.config = config
        self.window = OutcomeWindow(seconds: config.windowS)
    }

    /// Whether a request may go to the deployment now; a `true` while half-open takes a probe
    /// slot, which `record` gives back.
    public mutating func allow(now: ContinuousClock.Instant) -> Bool {
        switch state {
        case .closed:
            return true
        case .open:
            guard let openedAt, now - openedAt >= .milliseconds(config.cooldownMs) else { return false }
            state = .halfOpen
            probesInFlight = 0
            probeSuccesses = 0
            fallthrough
        case .halfOpen:
            guard probesInFlight < config.halfOpenProbes else { return false }
            probesInFlight += 1
            return true
        }
    }

    /// Whether `allow` would say yes, without taking a probe slot (for ordering deployments).
    public func isAvailable(now: ContinuousClock.Instant) -> Bool {
        switch state {
        case .closed: true
        case .open: openedAt.map { now - $0 >= .milliseconds(config.cooldownMs) } ?? true
        case .halfOpen: probesInFlight < config.halfOpenProbes
        }
    }

    /// Records how a request that `allow` let through ended.
    public mutating func record(success: Bool, now: ContinuousClock.Instant) {
        window.add(failure: !success, now: now)
        switch state {
        case .closed:
            consecutiveFailures = success ? 0 : consecutiveFailures + 1
            if consecutiveFailures >= config.failures || window.errorRate(now: now, minRequests: config.minRequests) >= config.errorRate {
                open(now: now)
            }
        case .halfOpen:
            probesInFlight = max(0, probesInFlight - 1)
            if success {
                probeSuccesses += 1
                if probeSuccesses >= config.halfOpenProbes { close() }
            } else {
                open(now: now)
            }
        case .open:
            // A request let through before the breaker opened: its success says little.
            break
        }
    }

    /// Gives back a half-open probe slot whose request ended without a verdict (cancelled).
    public mutating func release() {
        if state == .halfOpen { probesInFlight = max(0, probesInFlight - 1) }
    }

    /// Keeps an open breaker open for another cool-down (a failed background health probe).
    public mutating func extendOpen(now: ContinuousClock.Instant) {
        if state == .open { openedAt = now }
    }

    private mutating func open(now: ContinuousClock.Instant) {
        state = .open
        openedAt = now
        consecutiveFailures = 0
        probesInFlight = 0
        probeSuccesses = 0
        window.reset()
    }

    private mutating func close() {
        state = .closed
        openedAt = nil
        consecutiveFailures = 0
        window.reset()
    }
}

/// Successes and failures per second over the last `seconds` seconds, in a ring.
struct OutcomeWindow: Sendable {
    private var seconds: [Int64]
    private var totals: [Int]
    private var failures: [Int]
    private static let origin = ContinuousClock.now

    init(seconds: Int) {
        self.seconds = Array(repeating: -1, count: max(1, seconds))
        self.totals = Array(repeating: 0, count: max(1, seconds))
        self.failures = Array(repeating: 0, count: max(1, seconds))
    }

    private static func second(_ now: ContinuousClock.Instant) -> Int64 {
        let (s, _) = (now - origin).components
        return s
    }

    mutating func add(failure: Bool, now: ContinuousClock.Instant) {
        let s = Self.second(now)
        let i = Int(((s % Int64(seconds.count)) + Int64(seconds.count)) % Int64(seconds.count))
        if seconds[i] != s {
            seconds[i] = s
            totals[i] = 0
            failures[i] = 0
        }
        totals[i] += 1
        if failure { failures[i] += 1 }
    }

    /// The share of failures in the window, or 0 with fewer than `minRequests` requests.
    func errorRate(now: ContinuousClock.Instant, minRequests: Int) -> Double {
        let s = Self.second(now)
        var total = 0
        var failed = 0
        for i in seconds.indices where seconds[i] > s - Int64(seconds.count) && seconds[i] <= s {
            total += totals[i]
            failed += failures[i]
        }
        guard total >= minRequests, total > 0 else { return 0 }
        return Double(failed) / Double(total)
    }

    mutating func reset() {
        for i in seconds.indices {
            seconds[i] = -1
            totals[i] = 0
            failures[i] = 0
        }
    }
}
