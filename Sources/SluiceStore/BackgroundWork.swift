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

    public init(capacity: Int, concurrency: Int = 1, perform: @escaping @Sendable (Item) async -> Void) {
        (stream, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingOldest(capacity))
        self.perform = perform
        self.concurrency = max(1, concurrency)
    }

    /// Queues `item`; never waits. Dropped (and counted) when the queue is full or has closed.
    public func submit(_ item: Item) {
        switch continuation.yield(item) {
        case .enqueued: waitingItems.add(1, ordering: .relaxed)
        case .dropped, .terminated: droppedItems.add(1, ordering: .relaxed)
        @unknown default: droppedItems.add(1, ordering: .relaxed)
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
