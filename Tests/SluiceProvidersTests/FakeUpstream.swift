import Hummingbird
import Logging
import NIOCore
import Synchronization


/// A real HTTP server on a free loopback port, scripted by the test's routes.
enum FakeUpstream {
    static func with<T: Sendable>(
        _ configure: (Router<BasicRequestContext>) -> Void,
        _ body: @Sendable (String) async throws -> T
    ) async throws -> T {
        try await with(context: BasicRequestContext.self, configure, body)
    }

    /// The same with a chosen request context, and optionally a server-side idle timeout that
    /// closes kept-alive connections.
    static func with<Context: RequestContext, T: Sendable>(
        context: Context.Type,
        idleTimeout: TimeAmount? = nil,
        _ configure: (Router<Context>) -> Void,
        _ body: @Sendable (String) async throws -> T
    ) async throws -> T where Context.Source == ApplicationRequestContextSource {
        let router = Router(context: Context.self)
        configure(router)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "fake-upstream")
        logger.logLevel = .error
        let app = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: idleTimeout)),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await app.runService(gracefulShutdownSignals: [])
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            defer { group.cancelAll() }
            return try await body("http://127.0.0.1:\(port)")
        }
    }
}

/// What the fake upstream saw.
final class Captured: Sendable {
    private let state = Mutex<[(headers: [String: String], body: String)]>([])

    func add(_ request: Request, body: ByteBuffer) {
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        state.withLock { $0.append((headers, String(buffer: body))) }
    }

    var last: (headers: [String: String], body: String)? { state.withLock { $0.last } }
    var count: Int { state.withLock { $0.count } }
}

/// A request context that knows its connection, to count the connections a client opened.
struct ConnectionContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}

/// Connections seen by the fake upstream, and how many requests were in flight at most.
final class ConnectionLog: Sendable {
    // Keyed by the client's port: object identities of closed channels can be reused.
    private let state = Mutex<(seen: Set<Int>, inFlight: Int, maxInFlight: Int)>(([], 0, 0))

    func begin(_ channel: any Channel) {
        let port = channel.remoteAddress?.port ?? -1
        state.withLock {
            $0.seen.insert(port)
            $0.inFlight += 1
            $0.maxInFlight = max($0.maxInFlight, $0.inFlight)
        }
    }

    func end() { state.withLock { $0.inFlight -= 1 } }
    var connections: Int { state.withLock { $0.seen.count } }
    var maxInFlight: Int { state.withLock { $0.maxInFlight } }
}
