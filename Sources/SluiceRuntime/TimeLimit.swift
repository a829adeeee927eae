import NIOCore

/// Runs `body` in a child task bounded by `limit`: past it the child is cancelled and
/// `timeoutError()` is thrown. Built on `withDeadline` (one scheduled callback, no sleeping
/// task); unlike it, the caller's own task is not cancelled, so it can go on — to the next
/// deployment after an attempt timed out, say.
public func withTimeLimit<T: Sendable>(
    _ limit: Duration,
    timeoutError: @escaping @Sendable () -> any Error,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let deadline = NIODeadline.now() + .nanoseconds(limit.nanoseconds)
    return try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await withDeadline(deadline, timeoutError: timeoutError, body) }
        guard let value = try await group.next() else { throw CancellationError() }
        return value
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    public var nanoseconds: Int64 {
        let (s, atto) = components
        let (whole, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (s < 0 ? .min : .max) : whole.addingReportingOverflow(atto / 1_000_000_000).partialValue
    }

    /// The duration in milliseconds, fractional.
    public var milliseconds: Double {
        let (s, atto) = components
        return Double(s) * 1000 + Double(atto) / 1e15
    }
}
