import ArgumentParser
import NIOCore
import NIOPosix

@main
enum Entry {
    static func main() async {
        // Run Swift concurrency on NIO's event loops: a request no longer hops between the event
        // loop that reads it and the cooperative pool that handles it (each hop is a thread
        // wake-up; on a small machine they dominated the proxy's latency). Done first, before
        // any task is enqueued, while on the main thread.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await Sluice.main()
    }
}
