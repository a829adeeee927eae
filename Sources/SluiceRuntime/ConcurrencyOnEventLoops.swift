import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs Swift concurrency's global executor on NIO's singleton event loops, so that a request
/// is handled on the loop that reads it rather than hopping to a separate cooperative pool.
///
/// `NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()`
/// does the same, but runs each job *as its loop's serial executor*. The runtime cannot move a
/// task from a custom serial executor to the generic one on the same thread, so every entry into
/// a nonisolated async function (each stage, middleware and transport call) goes back through the
/// loop's task queue as a job of its own: about 115 per proxied request. Run as the generic
/// executor (which is what a globally enqueued job is), those calls continue in place and a task is
/// enqueued only when it really suspends, which cuts a lone request's latency.
///
/// Under load the hops were not all cost: with many requests waiting, a loop ran the same stage
/// for many of them back to back, and saturated throughput was measurably higher that way. So a job
/// runs as the generic executor while few jobs wait, and as its loop's serial executor (NIO's way)
/// once `busy` or more are queued. The loop is the one NIO's sticky `any()` picks: the current loop
/// when the job is enqueued from one. docs/performance.md has the measurements.
public enum ConcurrencyOnEventLoops {
    /// The runtime's `swift_task_enqueueGlobal_hook` type: Swift's calling convention, no context.
    typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

    private static let installed = Atomic<Bool>(false)
    /// Jobs enqueued through the hook and not yet started, over all loops.
    static let waiting = Atomic<Int>(0)
    /// From this many waiting jobs on, a job runs as its loop's serial executor. Chosen as "more
    /// than a handful of requests ready at once", not fitted to a benchmark.
    static let busy = 4

    /// The generic executor (`SerialExecutorRef::generic()`: identity and implementation both 0),
    /// which has no public spelling.
    static let generic: UnownedSerialExecutor = {
        precondition(MemoryLayout<UnownedSerialExecutor>.size == 2 * MemoryLayout<UInt>.size, "UnownedSerialExecutor is two words")
        return unsafeBitCast((UInt(0), UInt(0)), to: UnownedSerialExecutor.self)
    }()

    /// Installs the hook; answers false when the runtime has none or it is installed already.
    /// Call it once, first thing in `main`, before any task is enqueued.
    @discardableResult
    public static func install() -> Bool {
        // The hook's type is the runtime's, not a public API: only for the compilers NIO's own
        // takeover is written for.
        #if compiler(>=6.6)
        return false
        #else
        guard installed.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return false }
        guard let slot = dlsym(dlopen(nil, RTLD_NOW), "swift_task_enqueueGlobal_hook") else { return false }
        _ = generic
        return withUnsafeTemporaryAllocation(of: EnqueueGlobalHook.self, capacity: 1) { hook -> Bool in
            hook.baseAddress!.initialize(to: { job, _ in
                ConcurrencyOnEventLoops.waiting.add(1, ordering: .relaxed)
                let loop = MultiThreadedEventLoopGroup.singleton.any()
                loop.execute {
                    let waiting = ConcurrencyOnEventLoops.waiting.subtract(1, ordering: .relaxed).newValue
                    if waiting >= ConcurrencyOnEventLoops.busy {
                        job.runSynchronously(on: loop.executor.asUnownedSerialExecutor())
                    } else {
                        job.runSynchronously(on: ConcurrencyOnEventLoops.generic)
                    }
                }
            })
            return hook.baseAddress!.withMemoryRebound(to: UnsafeRawPointer.self, capacity: 1) { function in
                let current = slot.assumingMemoryBound(to: UnsafeRawPointer?.self)
                guard current.pointee == nil else { return false }
                current.pointee = function.pointee
                return true
            }
        }
        #endif
    }
}
