import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import SluiceCore

@Suite struct DeadlineTimerTests {
    let loop = MultiThreadedEventLoopGroup.singleton.any()

    @Test func firesAfterItsDeadlineAndNotBefore() async throws {
        let timer = DeadlineTimer(resolution: .milliseconds(10), eventLoop: loop)
        let fired = FiredAt()
        let armed = NIODeadline.now()
        _ = timer.schedule(at: armed + .milliseconds(150)) { fired.mark() }
        // Whenever it fires, it is not before its deadline. (No upper bound tighter than the wait:
        // on a loaded 2-core machine a sleep can overshoot by far more than the resolution.)
        for _ in 0..<300 where fired.at == nil {
            try await Task.sleep(for: .milliseconds(10))
        }
        let at = try #require(fired.at)
        #expect(at - armed >= .milliseconds(150))
        #expect(timer.armedCount == 0)
    }

    @Test func aCancelledTimerNeverFires() async throws {
        let timer = DeadlineTimer(resolution: .milliseconds(10), eventLoop: loop)
        let fired = FiredAt()
        let handles = (0..<100).map { _ in timer.schedule(at: .now() + .milliseconds(50)) { fired.mark() } }
        #expect(timer.armedCount == 100)
        for h in handles { timer.cancel(h) }
        #expect(timer.armedCount == 0)
        try await Task.sleep(for: .milliseconds(150))
        #expect(fired.at == nil)
    }

    @Test func aPastDeadlineFiresAtTheNextTick() async throws {
        let timer = DeadlineTimer(resolution: .milliseconds(10), eventLoop: loop)
        let fired = FiredAt()
        _ = timer.schedule(at: .now() - .seconds(5)) { fired.mark() }
        try await Task.sleep(for: .milliseconds(200))
        #expect(fired.at != nil)
    }

    @Test func withDeadlineCancelsTheBodyAndThrowsTheTimeoutError() async throws {
        struct Late: Error {}
        let outcome = await Task {
            try await withDeadline(.now() + .milliseconds(100), timeoutError: { Late() }) {
                try await Task.sleep(for: .seconds(10))
            }
        }.result
        #expect(throws: Late.self) { try outcome.get() }
    }
}

/// When a timer fired.
final class FiredAt: @unchecked Sendable {
    private let lock = NSLock()
    private var time: NIODeadline?
    func mark() { lock.withLock { if time == nil { time = .now() } } }
    var at: NIODeadline? { lock.withLock { time } }
}
