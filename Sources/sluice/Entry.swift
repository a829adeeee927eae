import ArgumentParser
import SluiceRuntime

@main
enum Entry {
    static func main() async {
        // Run Swift concurrency on NIO's event loops instead of a separate cooperative pool, so
        // a request does not hop between the loop that reads it and a pool thread that handles
        // it (docs/performance.md). Done first, before any task is enqueued. Where the hook cannot
        // be installed (a compiler it was not written for) the runtime's own pool stays: NIO's
        // takeover would run jobs as a loop's serial executor, which can deadlock a loop (see
        // `ConcurrencyOnEventLoops`).
        ConcurrencyOnEventLoops.install()
        await Sluice.main()
    }
}
