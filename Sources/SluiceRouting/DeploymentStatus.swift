import Metrics
import SluiceCore
import Synchronization

/// What this replica knows of one deployment right now: its circuit breaker, requests in
/// flight, moving averages of latency and time to first token, and a `Retry-After` it was told
/// to respect. Shared by every request; each method takes the lock once.
public final class DeploymentStatus: Sendable {
    /// A copy of the figures, for ordering and for the admin API.
    public struct Snapshot: Sendable, Hashable {
        public var breaker: CircuitBreaker.State
        public var inFlight: Int
        /// Exponential moving average of whole-answer latency, in ms (nil until measured).
        public var latencyMs: Double?
        /// Exponential moving average of time to first token of streams, in ms.
        public var ttftMs: Double?
        /// Until when the upstream asked to be left alone (`Retry-After`).
        public var coolingUntil: ContinuousClock.Instant?
    }

    private struct State {
        var breaker: CircuitBreaker
        var inFlight = 0
        var latencyMs: Double?
        var ttftMs: Double?
        var coolingUntil: ContinuousClock.Instant?
    }

    public let name: String
    private let state: Mutex<State>
    private let breakerGauge: Gauge
    /// Weight of the newest sample in the moving averages.
    static let smoothing = 0.2

    public init(name: String, breaker: BreakerConfig) {
        self.name = name
        self.state = Mutex(State(breaker: CircuitBreaker(config: breaker)))
        self.breakerGauge = Gauge(label: "sluice_circuit_breaker_state", dimensions: [("deployment", name)])
        breakerGauge.record(0)
    }

    /// The figures as they are now.
    public func snapshot() -> Snapshot {
        state.withLock { Snapshot(breaker: $0.breaker.state, inFlight: $0.inFlight, latencyMs: $0.latencyMs, ttftMs: $0.ttftMs, coolingUntil: $0.coolingUntil) }
    }

    /// Whether a request could be sent now (breaker not open, no `Retry-After` pending), without
    /// reserving anything.
    public func isAvailable(now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { s in
            if let until = s.coolingUntil, until > now { return false }
            return s.breaker.isAvailable(now: now)
        }
    }

    /// What `begin` decided.
    public enum Gate: Sendable, Hashable {
        /// Go ahead; `finish` must follow exactly once.
        case granted
        /// The breaker is open (or half-open with every probe slot taken).
        case breakerOpen
        /// The upstream asked, by `Retry-After`, to be left alone until then.
        case cooling(until: ContinuousClock.Instant)
    }

    /// Asks the breaker for a request slot and, when granted, counts the request in flight.
    /// Every `.granted` must be followed by exactly one `finish`.
    public func begin(now: ContinuousClock.Instant = .now) -> Gate {
        let (gate, changed) = state.withLock { s -> (Gate, CircuitBreaker.State?) in
            if let until = s.coolingUntil, until > now { return (.cooling(until: until), nil) }
            let before = s.breaker.state
            guard s.breaker.allow(now: now) else { return (.breakerOpen, nil) }
            s.inFlight += 1
            return (.granted, s.breaker.state != before ? s.breaker.state : nil)
        }
        if let changed { breakerGauge.record(changed.metricValue) }
        return gate
    }

    /// How a request that `begin` let through ended.
    public enum Outcome: Sendable {
        /// Answered; `latency` is the whole answer's, or the first token's for a stream.
        case success(latency: Duration, streamed: Bool)
        /// Failed in a way that says the deployment is unwell (5xx, timeout, connection).
        case failure
        /// Rate limited: not unwell, but to be left alone until `retryAfter` has passed.
        case rateLimited(retryAfter: Duration?)
        /// Ended without a verdict on the deployment (the client left, the request was at fault).
        case neutral
    }

    /// Ends a request that `begin` let through.
    public func finish(_ outcome: Outcome, now: ContinuousClock.Instant = .now) {
        let changed = state.withLock { s -> CircuitBreaker.State? in
            s.inFlight = max(0, s.inFlight - 1)
            let before = s.breaker.state
            switch outcome {
            case .success(let latency, let streamed):
                let ms = Double(latency.components.seconds) * 1000 + Double(latency.components.attoseconds) / 1e15
                if streamed {
                    s.ttftMs = s.ttftMs.map { $0 + Self.smoothing * (ms - $0) } ?? ms
                } else {
                    s.latencyMs = s.latencyMs.map { $0 + Self.smoothing * (ms - $0) } ?? ms
                }
                s.breaker.record(success: true, now: now)
            case .failure:
                s.breaker.record(success: false, now: now)
            case .rateLimited(let retryAfter):
                if let retryAfter { s.coolingUntil = max(s.coolingUntil ?? now, now + retryAfter) }
                s.breaker.release()
            case .neutral:
                s.breaker.release()
            }
            return s.breaker.state != before ? s.breaker.state : nil
        }
        if let changed { breakerGauge.record(changed.metricValue) }
    }

    /// A failed background health probe: an open breaker stays open another cool-down.
    public func probeFailed(now: ContinuousClock.Instant = .now) {
        state.withLock { $0.breaker.extendOpen(now: now) }
    }

    /// The breaker's state.
    public var breakerState: CircuitBreaker.State { state.withLock { $0.breaker.state } }
}

/// Every chat deployment's status, by name, made once at start-up.
public struct DeploymentBoard: Sendable {
    public let statuses: [String: DeploymentStatus]

    public init(names: [String], breaker: BreakerConfig) {
        var statuses: [String: DeploymentStatus] = [:]
        for name in names { statuses[name] = DeploymentStatus(name: name, breaker: breaker) }
        self.statuses = statuses
    }

    public subscript(name: String) -> DeploymentStatus? { statuses[name] }
}
