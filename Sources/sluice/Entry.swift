import ArgumentParser
import NIOCore
import NIOPosix
import SluiceRuntime

@main
enum Entry {
    static func main() async {
        // Run Swift concurrency on NIO's event loops instead of a separate cooperative pool, so
        // a request does not hop between the loop that reads it and a pool thread that handles
        // it (docs/performance.md). Done first, before any task is enqueued.
        if !ConcurrencyOnEventLoops.install() {
            NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
        await Sluice.main()
    }
}
