import Metrics
import NIOCore
import Synchronization

/// A deployment's concurrency cap (`max_concurrent`): up to that many requests run at once; the
/// rest wait, highest priority class first and first-come first-served within a class, until a
/// slot frees or their class's queue timeout passes (then 503 with `Retry-After`). A freed slot
/// is handed straight to the next waiter, so a newcomer cannot overtake the queue.
public final class DeploymentQueue: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, any Error>
        var timer: DeadlineTimer.Handle?
    }

    private struct State {
        var inFlight = 0
        var waiting: [[Waiter]] = [[], [], []]  // by class: high, normal, low
        var nextID: UInt64 = 0
    }

    public let deployment: String
    public let capacity: Int
    private let state = Mutex(State())
    private let depthGauges: [Gauge]

    public init(deployment: String, capacity: Int) {
        self.deployment = deployment
        self.capacity = capacity
        self.depthGauges = PriorityClass.allCases.map {
            Gauge(label: "sluice_queue_depth", dimensions: [("deployment", deployment), ("priority", $0.rawValue)])
        }
    }

    private static func index(_ p: PriorityClass) -> Int {
        switch p {
        case .high: 0
        case .normal: 1
        case .low: 2
        }
    }

    /// Waits for a slot. Throws 503 after `timeoutMs`, or `CancellationError` if the task is
    /// cancelled while waiting; either way no slot is held.
    public func acquire(priority: PriorityClass, timeoutMs: Int) async throws {
        let queued = state.withLock { s -> UInt64? in
            if s.inFlight < capacity && s.waiting.allSatisfy(\.isEmpty) {
                s.inFlight += 1
                return nil
            }
            s.nextID += 1
            return s.nextID
        }
        guard let id = queued else { return }
        let klass = Self.index(priority)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Queued first, timer second: a timer that fires at once still finds the waiter.
                let cancelled = state.withLock { s -> Bool in
                    if Task.isCancelled { return true }
                    s.waiting[klass].append(Waiter(id: id, continuation: continuation, timer: nil))
                    depthGauges[klass].record(s.waiting[klass].count)
                    return false
                }
                if cancelled {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                let timer = DeadlineTimer.shared.schedule(at: .now() + .milliseconds(Int64(timeoutMs))) { [self] in
                    let waiter = remove(id, klass)
                    waiter?.continuation.resume(
                        throwing: SluiceError(
                            .upstreamUnavailable,
                            "The model '\(deployment)' is at its concurrency limit and this \(priority.rawValue)-priority request waited \(timeoutMs) ms; retry shortly.",
                            retryAfter: 1))
                }
                let stillWaiting = state.withLock { s -> Bool in
                    guard let i = s.waiting[klass].firstIndex(where: { $0.id == id }) else { return false }
                    s.waiting[klass][i].timer = timer
                    return true
                }
                if !stillWaiting { DeadlineTimer.shared.cancel(timer) }
            }
        } onCancel: {
            if let waiter = remove(id, klass) {
                if let timer = waiter.timer { DeadlineTimer.shared.cancel(timer) }
                waiter.continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// Gives a slot back: to the next waiter if there is one.
    public func release() {
        let next = state.withLock { s -> Waiter? in
            for klass in 0..<3 where !s.waiting[klass].isEmpty {
                let waiter = s.waiting[klass].removeFirst()
                depthGauges[klass].record(s.waiting[klass].count)
                return waiter  // the slot passes to it: in-flight stays the same
            }
            s.inFlight = max(0, s.inFlight - 1)
            return nil
        }
        if let next {
            if let timer = next.timer { DeadlineTimer.shared.cancel(timer) }
            next.continuation.resume()
        }
    }

    private func remove(_ id: UInt64, _ klass: Int) -> Waiter? {
        state.withLock { s in
            guard let i = s.waiting[klass].firstIndex(where: { $0.id == id }) else { return nil }
            let waiter = s.waiting[klass].remove(at: i)
            depthGauges[klass].record(s.waiting[klass].count)
            return waiter
        }
    }

    /// Requests waiting in a class.
    public func depth(_ priority: PriorityClass) -> Int { state.withLock { $0.waiting[Self.index(priority)].count } }

    /// Requests holding a slot.
    public var inFlight: Int { state.withLock { $0.inFlight } }
}
