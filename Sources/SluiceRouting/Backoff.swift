/// The wait before another round of attempts: exponential from `base`, capped, with "equal
/// jitter" (half fixed, half random) so that clients failing together do not retry together.
public struct Backoff: Sendable, Hashable {
    public var base: Duration
    public var cap: Duration

    public init(base: Duration, cap: Duration) {
        self.base = base
        self.cap = cap
    }

    /// The wait before round `round` (1 for the first retry), with `unit` a random number in 0..<1.
    public func delay(round: Int, unit: Double) -> Duration {
        guard round > 0 else { return .zero }
        let exponent = min(round - 1, 30)
        let full = min(base * (1 << exponent), cap)
        return full / 2 + full / 2 * min(max(unit, 0), 1)
    }

    /// The wait before round `round`, at random.
    public func delay(round: Int) -> Duration {
        delay(round: round, unit: Double.random(in: 0..<1))
    }
}
