import DequeModule
import Logging
import ServiceLifecycle
import Synchronization

/// Work taken off the request path, bounded: at most `capacity` items wait (past that new ones
/// are dropped and counted), at most `concurrency` batches run at once, and what is waiting when
/// graceful shutdown begins is done before `run()` returns. Run it as a service that stops before
/// the store it writes to (the database is first in the group, so it stops last).
///
/// Items are taken in batches of what has gathered, up to `batchSize`, so that a store can write
/// many in one transaction; with the per-item initializer each batch is one item.
public final class BackgroundWork<Item: Sendable>: Service, Sendable {
    private struct Queue {
        var items: Deque<Item> = []
        var closed = false
    }

    private enum SubmitOutcome { case queued(first: Bool), full, closed }

    private let queue = Mutex(Queue())
    /// Rung when an item lands in an empty queue; the loop then drains until the queue is empty.
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation
    private let perform: @Sendable ([Item]) async -> Void
    private let capacity: Int
    private let concurrency: Int
    private let batchSize: Int
    private let gather: Duration
    private let droppedItems = Atomic<Int>(0)
    private let waitingItems = Atomic<Int>(0)
    private let name: String
    private let logger: Logger?

    /// Each item on its own, at most `concurrency` at once. `name` and `logger` say in the log
    /// when items start being dropped (the 1st, 2nd, 4th, 8th… drop).
    public convenience init(
        name: String, capacity: Int, concurrency: Int = 1, logger: Logger? = nil, perform: @escaping @Sendable (Item) async -> Void
    ) {
        self.init(name: name, capacity: capacity, concurrency: concurrency, batchSize: 1, gather: .zero, logger: logger) { batch in
            for item in batch { await perform(item) }
        }
    }

    /// Batches of up to `batchSize` items, at most `concurrency` batches at once. After an item
    /// lands in an empty queue, the work waits `gather` for more before it starts, so that a
    /// steady trickle is written a batch at a time rather than woken for every item.
    public init(
        name: String, capacity: Int, concurrency: Int = 1, batchSize: Int, gather: Duration, logger: Logger? = nil,
        performBatch: @escaping @Sendable ([Item]) async -> Void
    ) {
        (doorbell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.name = name
        self.logger = logger
        self.perform = performBatch
        self.capacity = max(1, capacity)
        self.concurrency = max(1, concurrency)
        self.batchSize = max(1, batchSize)
        self.gather = gather
    }

    /// Queues `item`; never waits. Dropped (and counted) when the queue is full or has closed.
    public func submit(_ item: Item) {
        let outcome = queue.withLock { q -> SubmitOutcome in
            if q.closed { return .closed }
            if q.items.count >= capacity { return .full }
            q.items.append(item)
            return .queued(first: q.items.count == 1)
        }
        let why: String
        switch outcome {
        case .queued(let first):
            waitingItems.add(1, ordering: .relaxed)
            if first { ring.yield() }
            return
        case .full: why = "the queue is full"
        case .closed: why = "the queue has closed (shutting down)"
        }
        let n = droppedItems.add(1, ordering: .relaxed).newValue
        if n & (n - 1) == 0 {
            logger?.warning("background work dropped", metadata: ["queue": "\(name)", "reason": "\(why)", "dropped_total": "\(n)"])
        }
    }

    /// Items dropped because the queue was full or closed.
    public var dropped: Int { droppedItems.load(ordering: .relaxed) }
    /// Items queued or running.
    public var backlog: Int { waitingItems.load(ordering: .relaxed) }

    public func run() async {
        // Graceful shutdown (or cancellation) closes the queue; what is in it is still done.
        await withGracefulShutdownHandler {
            for await _ in doorbell {
                if gather > .zero { try? await Task.sleep(for: gather) }
                await drain()
            }
        } onGracefulShutdown: {
            self.queue.withLock { $0.closed = true }
            self.ring.finish()
        }
        queue.withLock { $0.closed = true }
        await drain()
    }

    /// Until the queue is empty: batches, at most `concurrency` at a time. A batch is taken
    /// when a worker is free, so items that arrive while others run still fill every slot.
    private func drain() async {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            while true {
                while running < concurrency, let batch = take() {
                    group.addTask {
                        await self.perform(batch)
                        self.waitingItems.subtract(batch.count, ordering: .relaxed)
                    }
                    running += 1
                }
                guard running > 0 else { return }
                await group.next()
                running -= 1
            }
        }
    }

    private func take() -> [Item]? {
        queue.withLock { q -> [Item]? in
            guard !q.items.isEmpty else { return nil }
            let n = min(batchSize, q.items.count)
            let batch = Array(q.items.prefix(n))
            q.items.removeFirst(n)
            return batch
        }
    }
}

/// Sleeps for `duration`, or less when graceful shutdown begins (then it throws), so that a
/// service's periodic loop ends promptly.
public func gracefulShutdownSleep(for duration: Duration) async throws {
    try await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
}
