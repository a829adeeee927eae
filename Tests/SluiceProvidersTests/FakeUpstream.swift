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
        let router = Router()
        configure(router)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "fake-upstream")
        logger.logLevel = .error
        let app = Application(
            router: router,
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
