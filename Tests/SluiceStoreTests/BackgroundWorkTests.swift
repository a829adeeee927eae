import Logging
import ServiceLifecycle
import SluiceStore
import SluiceTesting
import Synchronization
import Testing

/// Bounded work off the request path: nothing queued is lost at graceful shutdown, a full queue
/// drops and counts, and no more than `concurrency` items run at once.
@Suite struct BackgroundWorkTests {
    final class Tally: Sendable {
        let state = Mutex<(done: [Int], running: Int, maxRunning: Int)>(([], 0, 0))
        func start() { state.withLock { $0.running += 1; $0.maxRunning = max($0.maxRunning, $0.running) } }
        func end(_ i: Int) { state.withLock { $0.running -= 1; $0.done.append(i) } }
        var done: [Int] { state.withLock { $0.done } }
        var maxRunning: Int { state.withLock { $0.maxRunning } }
    }

    @Test func gracefulShutdownFinishesWhatIsQueued() async throws {
        let tally = Tally()
        let work = BackgroundWork<Int>(name: "test", capacity: 1_000, concurrency: 3) { i in
            tally.start()
            try? await Task.sleep(for: .milliseconds(2))
            tally.end(i)
        }
        let group = ServiceGroup(configuration: .init(services: [work], logger: Logger(label: "t")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for i in 0..<200 { work.submit(i) }
            // Shut down while most of the 200 are still waiting.
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(tally.done.sorted() == Array(0..<200))
        #expect(tally.maxRunning <= 3)
        #expect(tally.maxRunning > 1)
        #expect(work.dropped == 0)
        #expect(work.backlog == 0)
        // After shutdown nothing is accepted, and what is refused is counted.
        work.submit(200)
        #expect(work.dropped == 1)
    }

    @Test func aFullQueueDropsAndCounts() async throws {
        let log = CapturedLog()
        let work = BackgroundWork<Int>(name: "test", capacity: 10, logger: log.logger()) { _ in }
        // Not running: the queue fills at 10.
        for i in 0..<25 { work.submit(i) }
        #expect(work.dropped == 15)
        #expect(work.backlog == 10)
        // The 1st, 2nd, 4th and 8th drops are logged, not every one.
        #expect(log.messages(containing: "background work dropped").count == 4)
    }
}
