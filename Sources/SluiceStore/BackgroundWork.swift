import Logging
import ServiceLifecycle
import Synchronization

/// Work taken off the request path, bounded: at most `capacity` items wait (past that new ones
/// are dropped and counted), at most `concurrency` run at once, and what is waiting when graceful
/// shutdown begins is done before `run()` returns. Run it as a service that stops before the
/// store it writes to (the database is first in the group, so it stops last).
public final class BackgroundWork<Item: Sendable>: Service, Sendable {
    private let stream: AsyncStream<Item>
    private let continuation: AsyncStream<Item>.Continuation
    private let perform: @Sendable (Item) async -> Void
    private let concurrency: Int
    private let droppedItems = Atomic<Int>(0)
    private let waitingItems = Atomic<Int>(0)
    private let name: String
    private let logger: Logger?

    /// `name` and `logger` say in the log when items start being dropped (the 1st, 2nd, 4th, 8th… drop).
    public init(
        name: String, capacity: Int, concurrency: Int = 1, logger: Logger? = nil, perform: @escaping @Sendable (Item) async -> Void
    ) {
        (stream, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingOldest(capacity))
        self.name = name
        self.logger = logger
        self.perform = perform
        self.concurrency = max(1, concurrency)
    }

    /// Queues `item`; never waits. Dropped (and counted) when the queue is full or has closed.
    public func submit(_ item: Item) {
        let why: String
        switch continuation.yield(item) {
        case .enqueued:
            waitingItems.add(1, ordering: .relaxed)
            return
        case .dropped: why = "the queue is full"
        case .terminated: why = "the queue has closed (shutting down)"
        @unknown default: why = "the queue refused it"
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
        await withTaskGroup(of: Void.self) { group in
            // Graceful shutdown (or cancellation) closes the queue; what is in it is still done.
            group.addTask { [continuation] in
                try? await gracefulShutdown()
                continuation.finish()
            }
            group.addTask { [self] in await drain() }
        }
    }

    /// Until the queue closes: each item, at most `concurrency` at a time.
    private func drain() async {
        await withTaskGroup(of: Void.self) { workers in
            var running = 0
            for await item in stream {
                if running == concurrency {
                    await workers.next()
                    running -= 1
                }
                workers.addTask { [self] in
                    await perform(item)
                    waitingItems.subtract(1, ordering: .relaxed)
                }
                running += 1
            }
        }
    }
}

/// Sleeps for `duration`, or less when graceful shutdown begins (then it throws), so that a
/// service's periodic loop ends promptly.
public func gracefulShutdownSleep(for duration: Duration) async throws {
    try await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
}
