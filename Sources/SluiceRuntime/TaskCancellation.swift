import NIOCore
import Synchronization

/// Holds the current task while it may be cancelled from an event-loop callback (a deadline, a
/// closed connection). Cheaper than a task group racing a sleep: one scheduled callback, no
/// child tasks, no timer thread.
public final class CurrentTaskCanceller: @unchecked Sendable {
    // `UnsafeCurrentTask` is only touched under the lock and only between `attach` and `detach`,
    // which the owner calls from inside the task, so the task is alive whenever it is touched.
    private struct State {
        var task: UnsafeCurrentTask?
        var fired = false
    }

    private let lock = Mutex<Void>(())
    private var state = State()

    public init() {}

    /// Remembers the calling task.
    public func attach() {
        withUnsafeCurrentTask { task in lock.withLock { _ in state.task = task } }
    }

    /// Forgets the task; after this, `cancel()` does nothing.
    public func detach() { lock.withLock { _ in state.task = nil } }

    /// Cancels the attached task, if it is still attached.
    public func cancel() {
        lock.withLock { _ in
            guard let task = state.task else { return }
            state.fired = true
            task.cancel()
        }
    }

    /// Whether `cancel()` reached the task.
    public var fired: Bool { lock.withLock { _ in state.fired } }
}

/// Runs `body`; if it is still running at `deadline` (give or take `DeadlineTimer`'s resolution),
/// the task is cancelled and `timeoutError()` is thrown in place of whatever the cancellation
/// caused.
public func withDeadline<T>(
    _ deadline: NIODeadline,
    timeoutError: () -> any Error,
    _ body: () async throws -> T
) async throws -> T {
    let canceller = CurrentTaskCanceller()
    canceller.attach()
    let timer = DeadlineTimer.shared.schedule(at: deadline) { canceller.cancel() }
    defer {
        DeadlineTimer.shared.cancel(timer)
        canceller.detach()
    }
    do {
        return try await body()
    } catch {
        if canceller.fired { throw timeoutError() }
        throw error
    }
}
