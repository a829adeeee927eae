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
///
/// An executor made with `idle: true` goes further where the process may undo it: its thread
/// runs under `SCHED_IDLE`, on CPU time no other thread wants, so a request never waits for it
/// at all. When it is starved — over the last 100 ms or more of having work it ran for less than
/// an eighth of the time, as on a machine that requests keep fully busy (under a lighter load it
/// still gets most of a core's spare time) — it returns to `niceness` until
/// it has caught up (and for at least a second), so that its queue cannot grow without bound
/// and it never holds SQLite's writer for long while it cannot run. Leaving `SCHED_IDLE` needs
/// `CAP_SYS_NICE` or an `RLIMIT_NICE` that allows `niceness`; without either (a container's
/// default), the thread stays at `niceness` throughout.
public final class BackgroundThreadExecutor: TaskExecutor, @unchecked Sendable {
    /// The audit-log writer's thread.
    public static let auditLog = BackgroundThreadExecutor(name: "sluice-audit", niceness: 5, idle: true)
    /// The response cache's writes to SQLite.
    public static let responseCache = BackgroundThreadExecutor(name: "sluice-cache", niceness: 5, idle: true)

    /// The thread's name, as the OS knows it (at most 15 bytes on Linux).
    public let name: String

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs: [UnownedJob] = []
    private var started = false
    /// When the queue last went from empty to not: the start of a wait that starvation lengthens.
    private var readySince: UInt64 = 0
    private let niceness: Int32
    private let idle: Bool

    // Only the executor's thread touches these.
    private var idleNow = false
    private var promotedAt: UInt64 = 0
    private var windowWall: UInt64 = 0
    private var windowCPU: UInt64 = 0

    public init(name: String, niceness: Int32, idle: Bool = false) {
        self.name = name
        self.niceness = niceness
        self.idle = idle
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        if jobs.isEmpty { readySince = Self.monotonicNanos() }
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
    /// loop woken by a request otherwise waits for the scheduler's slice to end. On an idle
    /// executor's thread it is also where starvation is noticed.
    public static func yieldProcessor() {
        sched_yield()
        #if os(Linux)
        if let raw = pthread_getspecific(currentKey) {
            Unmanaged<BackgroundThreadExecutor>.fromOpaque(raw).takeUnretainedValue().noticeStarvation()
        }
        #endif
    }

    /// Whether the calling thread runs under `SCHED_IDLE` now (for tests and diagnostics).
    public static var callingThreadIsIdle: Bool {
        #if os(Linux)
        return sched_getscheduler(0) == schedIdle
        #else
        return false
        #endif
    }

    private func run() {
        #if os(Linux)
        // The name `top -H` and perf show (Foundation's `Thread.name` does not set it on Linux).
        try? String(name.prefix(15)).write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
        // Linux keeps a nice value per thread; `who` 0 is the calling thread.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
        pthread_setspecific(Self.currentKey, Unmanaged.passUnretained(self).toOpaque())
        if idle && Self.mayLeaveIdle(for: niceness) { setIdle(true) }
        #endif
        condition.lock()
        windowWall = readySince
        condition.unlock()
        windowCPU = Self.threadCPUNanos()
        var running: [UnownedJob] = []
        while true {
            var caughtUp = false
            condition.lock()
            if jobs.isEmpty {
                condition.unlock()
                let cpu = Self.threadCPUNanos()
                condition.lock()
                while jobs.isEmpty { condition.wait() }
                caughtUp = true
                windowWall = readySince
                windowCPU = cpu
            }
            swap(&running, &jobs)
            condition.unlock()
            // It had caught up: back to idle, unless it left idle less than a second ago (and if
            // this wake-up came late, the check below leaves idle again at once).
            if caughtUp && idle && !idleNow && Self.monotonicNanos() &- promotedAt >= 1_000_000_000 { setIdle(true) }
            noticeStarvation()
            for job in running { job.runSynchronously(on: asUnownedTaskExecutor()) }
            running.removeAll(keepingCapacity: true)
        }
    }

    /// Leaves `SCHED_IDLE` when, over at least the last 100 ms of having work, the thread ran
    /// for less than an eighth of the time.
    private func noticeStarvation() {
        guard idleNow else { return }
        let wall = Self.monotonicNanos()
        let elapsed = wall &- windowWall
        guard elapsed >= 100_000_000 else { return }
        let cpu = Self.threadCPUNanos()
        if (cpu &- windowCPU) &* 8 < elapsed {
            setIdle(false)
            promotedAt = wall
        }
        windowWall = wall
        windowCPU = cpu
    }

    private func setIdle(_ on: Bool) {
        #if os(Linux)
        var parameters = sched_param()
        parameters.sched_priority = 0
        guard sched_setscheduler(0, on ? Self.schedIdle : SCHED_OTHER, &parameters) == 0 else { return }
        if !on { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness) }
        idleNow = on
        #endif
    }

    #if os(Linux)
    /// Linux's SCHED_IDLE (sched.h defines it only under _GNU_SOURCE, which Swift's Glibc lacks).
    static let schedIdle: Int32 = 5

    private static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Whether a thread of this process may go from `SCHED_IDLE` back to `niceness`: the kernel
    /// allows it with CAP_SYS_NICE, or when RLIMIT_NICE reaches 20 − niceness.
    static func mayLeaveIdle(for niceness: Int32) -> Bool {
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(__RLIMIT_NICE.rawValue), &limit) == 0, limit.rlim_cur >= rlim_t(20 - niceness) { return true }
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
            let mask = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return false }
        return mask & (1 << 23) != 0  // CAP_SYS_NICE
    }
    #endif

    private static func monotonicNanos() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }

    private static func threadCPUNanos() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }
}
