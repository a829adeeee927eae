import Foundation
import SluiceCore
import Synchronization

/// Whether live requests are being served: the batch runner gives way to them. Counted by
/// `LiveTrafficStage`; a request that ended in the last `window` still counts, so a client
/// sending one request after another is seen as the steady load it is.
public final class LiveTraffic: Sendable {
    let inFlight = Atomic<Int>(0)
    /// Uptime (ns) of the latest start or end of a live request.
    let lastSeen = Atomic<UInt64>(0)
    let window: UInt64

    public init(window: Duration = .milliseconds(100)) {
        self.window = UInt64(window.components.seconds) * 1_000_000_000 + UInt64(window.components.attoseconds / 1_000_000_000)
    }

    static var uptime: UInt64 { DispatchTime.now().uptimeNanoseconds }

    func started() {
        inFlight.add(1, ordering: .relaxed)
        lastSeen.store(Self.uptime, ordering: .relaxed)
    }

    func ended() {
        inFlight.subtract(1, ordering: .relaxed)
        lastSeen.store(Self.uptime, ordering: .relaxed)
    }

    public var isActive: Bool {
        inFlight.load(ordering: .relaxed) > 0 || Self.uptime &- lastSeen.load(ordering: .relaxed) < window
    }
}

/// Counts live requests for `LiveTraffic`: every endpoint but batches' own lines and server-run
/// evaluations (both background work).
public struct LiveTrafficStage: InferenceStage {
    let traffic: LiveTraffic
    static let background: Set<String> = ["batch", "evals.run"]

    public init(traffic: LiveTraffic) { self.traffic = traffic }

    public func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        guard !Self.background.contains(context.endpoint) else { return try await next(request, context) }
        traffic.started()
        defer { traffic.ended() }
        return try await next(request, context)
    }
}

/// How many lines the runner may start now: unlimited without live traffic; beside it, a token
/// bucket of `rate` lines per second holding at most 50 ms of them (so a pause does not turn
/// into a burst).
struct LinePacer: Sendable {
    let rate: Double
    var tokens: Double
    var last: Double

    init(rate: Double, now: Double) {
        self.rate = rate
        self.tokens = Self.burst(rate)
        self.last = now
    }

    static func burst(_ rate: Double) -> Double { max(1, rate / 20) }

    /// Lines that may start at `now` (`Int.max` without live traffic).
    mutating func allowance(now: Double, live: Bool) -> Int {
        tokens = min(Self.burst(rate), tokens + max(0, now - last) * rate)
        last = now
        return live ? Int(tokens) : .max
    }

    /// `n` lines started.
    mutating func spend(_ n: Int) { tokens = max(0, tokens - Double(n)) }
}
