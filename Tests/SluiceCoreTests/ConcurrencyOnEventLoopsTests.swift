import Foundation
import NIOConcurrencyHelpers
import Testing
@testable import SluiceRuntime

/// Swift concurrency on NIO's event loops must run each job as what it is, the generic executor.
///
/// Code such as swift-async-algorithms' `merge` (under swift-otel's batch span processor and
/// swift-service-lifecycle's `cancelOnGracefulShutdown`) takes a lock and releases it inside a
/// `withUnsafeContinuation` closure, counting on that closure to run at once. A job run as a loop's
/// serial executor breaks that: the nonisolated call first hops back through the loop's queue with
/// the lock held, a job queued before it blocks the loop's thread on the same lock, and the loop
/// never gets to the job that would release it. A traced Sluice hung that way on shutdown.
///
/// The hook can only be installed once per process, before most tasks exist, so the check runs in
/// a child process: this test binary again, filtered to this test, with `SLUICE_EXECUTOR_CHILD`
/// set. The parent gives it a minute and fails if it has not finished.
@Suite struct ConcurrencyOnEventLoopsTests {
    static let childVariable = "SLUICE_EXECUTOR_CHILD"

    @Test func aLockHeldAcrossAContinuationThatResumesAtOnceNeverDeadlocksTheLoops() async throws {
        if ProcessInfo.processInfo.environment[Self.childVariable] == "1" {
            try await Self.childWork()
            return
        }
        #if os(Linux)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0])
        child.arguments = ["--testing-library", "swift-testing", "--filter", "ConcurrencyOnEventLoopsTests"]
        var environment = ProcessInfo.processInfo.environment
        environment[Self.childVariable] = "1"
        child.environment = environment
        let output = Pipe()
        child.standardOutput = output
        child.standardError = output
        try child.run()
        let deadline = ContinuousClock.now + .seconds(60)
        while child.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let hung = child.isRunning
        if hung {
            child.interrupt()
            kill(child.processIdentifier, SIGKILL)
        }
        child.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(!hung, "the event loops deadlocked")
        #expect(child.terminationStatus == 0, "\(text.suffix(2000))")
        #endif
    }

    /// In the child: many tasks take one lock, each releasing it only inside a continuation's
    /// closure, as `MergeStorage.next()` does, while both loops have plenty of jobs waiting.
    static func childWork() async throws {
        #expect(ConcurrencyOnEventLoops.install())
        let lock = NIOLock()
        let finished = NIOLockedValueBox(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    for _ in 0..<300 {
                        lock.lock()
                        await releaseInContinuation(lock)
                    }
                    finished.withLockedValue { $0 += 1 }
                }
            }
            try await group.waitForAll()
        }
        #expect(finished.withLockedValue { $0 } == 64)
    }
}

/// Releases `lock` inside a continuation's closure: a nonisolated async function, entered with
/// the lock held.
private func releaseInContinuation(_ lock: NIOLock) async {
    await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
        lock.unlock()
        continuation.resume()
    }
}
