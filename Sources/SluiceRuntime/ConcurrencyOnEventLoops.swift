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
/// loop's task queue as a job of its own: about 115 per proxied request. Here every job runs as
/// the generic executor, which is what a globally enqueued job is: those calls continue in place,
/// and a task is enqueued only when it really suspends.
///
/// Running a job as anything else is not only slower, it can deadlock a loop. Code that takes a
/// lock and releases it inside a `withUnsafeContinuation` closure, counting on the closure to run
/// at once (swift-async-algorithms' `merge`, under swift-otel's batch span processor and
/// swift-service-lifecycle's `cancelOnGracefulShutdown`), hops back through the loop's queue with
/// the lock held when the job runs as a serial executor; a job queued before it then blocks the
/// loop's thread on that lock. A traced Sluice hung so on shutdown while jobs ran as the loop's
/// executor under load (`ConcurrencyOnEventLoopsTests` reproduces it). The loop is the one NIO's
/// sticky `any()` picks: the current loop when the job is enqueued from one.
/// docs/performance.md has the measurements.
public enum ConcurrencyOnEventLoops {
    /// The runtime's `swift_task_enqueueGlobal_hook` type: Swift's calling convention, no context.
    typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

    private static let installed = Atomic<Bool>(false)

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
                MultiThreadedEventLoopGroup.singleton.any().execute { job.runSynchronously(on: ConcurrencyOnEventLoops.generic) }
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
