#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A task executor with one thread of its own, for background work that must not run on the
/// event loops (Swift concurrency's global executor in Sluice is NIO's event loops, which also
/// serve requests).
///
/// The audit-log writer runs under it: a batch is taken, prepared (bodies encoded and redacted),
/// written to SQLite and freed on this thread, so that no request on a loop waits behind a
/// thousand rows' worth of work or deallocation. On Linux the thread runs at a lower scheduling
/// priority (`niceness`), so a loop that wakes with a request preempts it; its share of a busy
/// CPU shrinks but never drops to nothing.
public final class BackgroundThreadExecutor: TaskExecutor, @unchecked Sendable {
    /// The audit-log writer's thread.
    public static let auditLog = BackgroundThreadExecutor(name: "sluice-audit", niceness: 5)
    /// The response cache's writes to SQLite.
    public static let responseCache = BackgroundThreadExecutor(name: "sluice-cache", niceness: 5)

    /// The thread's name, as the OS knows it (at most 15 bytes on Linux).
    public let name: String

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs: [UnownedJob] = []
    private var started = false
    private let niceness: Int32

    public init(name: String, niceness: Int32) {
        self.name = name
        self.niceness = niceness
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        if !started {
            started = true
            Thread { [self] in run() }.start()
        }
        condition.signal()
        condition.unlock()
    }

    /// Lets a thread that is waiting for this CPU run now. Long background work calls it every so
    /// often: a batch of a thousand rows is milliseconds of CPU, and on a small machine an event
    /// loop woken by a request otherwise waits for the scheduler's slice to end (p99 at one
    /// connection went from 2.6 ms to 0.6 ms in `make bench`).
    public static func yieldProcessor() {
        sched_yield()
    }

    private func run() {
        #if os(Linux)
        // The name `top -H` and perf show (Foundation's `Thread.name` does not set it on Linux).
        try? String(name.prefix(15)).write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
        #endif
        #if os(Linux)
        // Linux keeps a nice value per thread; `who` 0 is the calling thread.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
        #endif
        var running: [UnownedJob] = []
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            swap(&running, &jobs)
            condition.unlock()
            for job in running { job.runSynchronously(on: asUnownedTaskExecutor()) }
            running.removeAll(keepingCapacity: true)
        }
    }
}
