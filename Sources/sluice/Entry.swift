import ArgumentParser
import NIOCore
import NIOPosix

@main
enum Entry {
    static func main() async {
        // Run Swift concurrency on NIO's event loops instead of a separate cooperative pool, so
        // a request does not hop between the loop that reads it and a pool thread that handles
        // it. Measured with `make bench`: about 20% less CPU per proxied request. Done first,
        // before any task is enqueued, while on the main thread.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await Sluice.main()
    }
}
