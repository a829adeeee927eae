import NIOCore
import NIOPosix
import Synchronization

/// Fires callbacks at deadlines, to within `resolution`, for timeouts that almost never fire.
///
/// Every request arms two or three such timeouts (the request's own, the upstream call's) and
/// cancels them again a millisecond later. As NIO scheduled tasks each cost a heap insertion and
/// a linear-time removal on cancel, and under load the heap holds every in-flight request's
/// timers: about 7% of the CPU of a proxied request went there. Here arming and cancelling are
/// a dictionary insert and remove under a lock, and one repeating task per `resolution` walks the
/// due buckets while anything is armed (none runs when nothing is).
public final class DeadlineTimer: Sendable {
    /// The process-wide timer (10 ms resolution), ticking on NIO's singleton group, which lives
    /// as long as the process (a caller's loop could be shut down and take the ticks with it).
    public static let shared = DeadlineTimer(resolution: .milliseconds(10), eventLoop: MultiThreadedEventLoopGroup.singleton.next())

    /// A timer armed with `schedule`, for `cancel`.
    public struct Handle: Sendable {
        fileprivate let tick: Int64
        fileprivate let id: UInt64
    }

    /// A callback in a struct: stored as a dictionary's value, a bare closure would be converted
    /// to and from the generic representation, allocating a thunk's context each way.
    private struct Callback: Sendable {
        let fire: @Sendable () -> Void
    }

    private struct State {
        var buckets: [Int64: [UInt64: Callback]] = [:]
        var armed = 0
        var nextID: UInt64 = 0
        /// Every tick up to this one has fired.
        var processedTick: Int64
        var ticker: RepeatedTask?
    }

    private let resolutionNanos: Int64
    private let eventLoop: any EventLoop
    private let state: Mutex<State>

    /// A timer whose ticks run on `eventLoop`.
    public init(resolution: TimeAmount, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.resolutionNanos = max(1, resolution.nanoseconds)
        self.state = Mutex(State(processedTick: Int64(NIODeadline.now().uptimeNanoseconds) / max(1, resolution.nanoseconds)))
    }

    private func tick(of deadline: NIODeadline) -> Int64 {
        let nanos = Int64(clamping: deadline.uptimeNanoseconds)
        return nanos / resolutionNanos + (nanos % resolutionNanos == 0 ? 0 : 1)
    }

    /// Calls `fire` once, at or up to `resolution` after `deadline`, unless cancelled first.
    public func schedule(at deadline: NIODeadline, _ fire: @escaping @Sendable () -> Void) -> Handle {
        let wanted = tick(of: deadline)
        return state.withLock { state in
            // A deadline already due fires at the next tick.
            let tick = max(wanted, state.processedTick + 1)
            state.nextID &+= 1
            let id = state.nextID
            // Taken out and put back rather than changed in place (`buckets[tick, default: [:]][id]`):
            // a nested in-place change goes through the outer dictionary's `_modify` accessor,
            // whose coroutine frame is heap-allocated, once per timer armed or disarmed.
            var bucket = state.buckets.removeValue(forKey: tick) ?? [:]
            bucket[id] = Callback(fire: fire)
            state.buckets[tick] = bucket
            state.armed += 1
            if state.ticker == nil {
                let interval = TimeAmount.nanoseconds(resolutionNanos)
                state.ticker = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
                    self?.fireDue()
                }
            }
            return Handle(tick: tick, id: id)
        }
    }

    /// Disarms a timer; does nothing if it has fired already.
    public func cancel(_ handle: Handle) {
        // The callback is released outside the lock.
        let removed = state.withLock { state -> Callback? in
            guard var bucket = state.buckets.removeValue(forKey: handle.tick) else { return nil }
            let fire = bucket.removeValue(forKey: handle.id)
            if !bucket.isEmpty { state.buckets[handle.tick] = bucket }
            if fire != nil { state.armed -= 1 }
            return fire
        }
        _ = removed
    }

    /// How many timers are armed (for tests).
    public var armedCount: Int { state.withLock { $0.armed } }

    private func fireDue() {
        let now = tick(of: .now()) - 1
        let due = state.withLock { state -> [Callback] in
            guard now > state.processedTick else { return [] }
            var due: [Callback] = []
            if now - state.processedTick <= Int64(state.buckets.count) {
                for t in (state.processedTick + 1)...now {
                    if let bucket = state.buckets.removeValue(forKey: t) { due.append(contentsOf: bucket.values) }
                }
            } else {
                // A long stall (or a long sleep between ticks): walk the buckets, not the ticks.
                for t in Array(state.buckets.keys) where t <= now {
                    if let bucket = state.buckets.removeValue(forKey: t) { due.append(contentsOf: bucket.values) }
                }
            }
            state.processedTick = now
            state.armed -= due.count
            if state.armed == 0 {
                state.ticker?.cancel()
                state.ticker = nil
            }
            return due
        }
        for callback in due { callback.fire() }
    }
}
