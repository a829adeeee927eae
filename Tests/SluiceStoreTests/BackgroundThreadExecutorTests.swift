#if canImport(Glibc)
import Glibc
#endif
@testable import SluiceStore
import Testing

/// The background threads' scheduling: an idle executor's thread runs under SCHED_IDLE where the
/// process may leave it again, leaves it when it cannot get the CPU it needs, and returns once
/// it has caught up.
@Suite struct BackgroundThreadExecutorTests {
    @Test func jobsRunOnTheExecutorsOwnNamedThread() async throws {
        let executor = BackgroundThreadExecutor(name: "bte-name", niceness: 0)
        let name = await withTaskExecutorPreference(executor) {
            (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?"
        }
        #expect(name == "bte-name\n")
    }

    #if os(Linux)
    @Test func aPlainExecutorNeverRunsIdle() async throws {
        let executor = BackgroundThreadExecutor(name: "bte-plain", niceness: 5)
        let (idle, nice) = await withTaskExecutorPreference(executor) {
            (BackgroundThreadExecutor.callingThreadIsIdle, getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0))
        }
        #expect(!idle)
        #expect(nice == 5)
    }

    @Test func anIdleExecutorRunsUnderSchedIdleWhereItMayLeaveItAgain() async throws {
        let executor = BackgroundThreadExecutor(name: "bte-idle", niceness: 5, idle: true)
        let idle = await withTaskExecutorPreference(executor) { BackgroundThreadExecutor.callingThreadIsIdle }
        // Where the process could not return to nice 5, it must not have gone idle at all.
        #expect(idle == BackgroundThreadExecutor.mayLeaveIdle(for: 5))
    }

    @Test func aStarvedIdleThreadLeavesIdleAndReturnsOnceCaughtUp() async throws {
        guard BackgroundThreadExecutor.mayLeaveIdle(for: 5) else { return }
        let executor = BackgroundThreadExecutor(name: "bte-starved", niceness: 5, idle: true)
        let (before, after, nice) = await withTaskExecutorPreference(executor) {
            let before = BackgroundThreadExecutor.callingThreadIsIdle
            // 150 ms of wall time with almost no CPU: what a thread kept off the CPU sees.
            usleep(150_000)
            BackgroundThreadExecutor.yieldProcessor()
            return (before, BackgroundThreadExecutor.callingThreadIsIdle, getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0))
        }
        #expect(before)
        #expect(!after)
        #expect(nice == 5)
        // Work that keeps up does not move it: a job that only computes for 120 ms.
        try await Task.sleep(for: .milliseconds(1_100))
        let (again, busy, share) = await withTaskExecutorPreference(executor) {
            let again = BackgroundThreadExecutor.callingThreadIsIdle
            var start = timespec(), now = timespec(), wallStart = timespec(), wallEnd = timespec()
            clock_gettime(CLOCK_MONOTONIC, &wallStart)
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start)
            repeat { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now) } while Self.nanoseconds(from: start, to: now) < 120_000_000
            clock_gettime(CLOCK_MONOTONIC, &wallEnd)
            BackgroundThreadExecutor.yieldProcessor()
            return (again, BackgroundThreadExecutor.callingThreadIsIdle, 120_000_000 / Double(Self.nanoseconds(from: wallStart, to: wallEnd)))
        }
        // A second after it left idle, with its queue empty, it went back.
        #expect(again)
        // Where the host's other work kept this idle thread to under 1/8 of a CPU, leaving idle
        // was the right call; with a fair share (a quarter, well clear of that line) it must stay.
        if share >= 0.25 {
            #expect(busy, "the thread had \(share) of a CPU")
        }
    }

    static func nanoseconds(from start: timespec, to end: timespec) -> Int {
        (end.tv_sec - start.tv_sec) * 1_000_000_000 + (end.tv_nsec - start.tv_nsec)
    }
    #endif
}
