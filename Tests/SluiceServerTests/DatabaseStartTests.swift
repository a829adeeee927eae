import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOPosix
import SluiceCore
import SluiceStore
import SluiceTesting
import Testing
@testable import SluiceObservability
@testable import SluiceServer

/// Start-up against a database that is late, slow or absent: the pool runs before anything
/// leases from it, a late server is waited for, an absent one is an error that names it.
@Suite(.serialized, .timeLimit(.minutes(2))) struct DatabaseStartTests {
    /// A loopback port that nothing listens on (bound, read, released).
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        return port
    }

    static func yaml(_ url: String, connectTimeout: Double) -> String {
        PostgresReplicaTests.yaml(url).replacingOccurrences(
            of: "store: { postgres: \"\(url)\" }", with: "store: { postgres: \"\(url)\", connect_timeout_s: \(connectTimeout) }")
    }

    /// PostgreSQL is not listening when Sluice starts, and then answers every new connection
    /// 300 ms late: Sluice waits for it, serves, and never leases from a pool that is not running.
    @Test(.enabled(if: TestPostgres.available, "needs SLUICE_TEST_POSTGRES_URL (make test starts a cluster)"))
    func startsAgainstAPostgresThatIsLateAndSlowToAccept() async throws {
        let url = try await TestPostgres.freshDatabase()
        var parts = try #require(URLComponents(string: url))
        let forwarder = TCPForwarder(to: try SocketAddress(ipAddress: "127.0.0.1", port: try #require(parts.port)), delay: .milliseconds(300))
        let port = try await Self.freePort()
        parts.port = port
        let log = CapturedLog()
        let late = Task {
            try await Task.sleep(for: .seconds(1))
            try await forwarder.listen(port: port)
        }
        defer { late.cancel() }
        let status = try await TestApp.live(
            yaml: Self.yaml(try #require(parts.string), connectTimeout: 20), adminKey: PostgresReplicaTests.adminKey,
            logger: log.logger(level: .info)
        ) { base, _, _ in
            try await withHTTPClient { client in
                let key = try await AccessTests.createKeyLive(client, base, #"{"name":"late"}"#)
                return try await AccessTests.chat(client, base, key).status
            }
        }
        try await late.value
        await forwarder.close()
        #expect(status == .ok)
        #expect(!log.messages(containing: "waiting for PostgreSQL").isEmpty, "the server was expected to be absent at first")
        #expect(log.messages(containing: "hasn't been called yet").isEmpty, "a connection was leased before the pool ran")
    }

    /// Nothing listens: start-up fails within the configured time with an error naming the server.
    @Test func anAbsentPostgresIsAnErrorNamingIt() async throws {
        let port = try await Self.freePort()
        let started = ContinuousClock.now
        let error = await #expect(throws: ConfigError.self) {
            _ = try await TestApp.build(yaml: Self.yaml("postgres://postgres@127.0.0.1:\(port)/sluice", connectTimeout: 1))
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(error?.path == "store.postgres")
        #expect(error?.message.contains("127.0.0.1:\(port)") == true, "\(String(describing: error))")
    }

    /// A server that accepts the connection and never answers is no better than none.
    @Test func aPostgresThatNeverAnswersIsAnErrorNotAHang() async throws {
        let silent = TCPForwarder(to: try SocketAddress(ipAddress: "127.0.0.1", port: 9), delay: .seconds(3600))
        let port = try await silent.listen()
        let started = ContinuousClock.now
        let error = await #expect(throws: ConfigError.self) {
            _ = try await TestApp.build(yaml: Self.yaml("postgres://postgres@127.0.0.1:\(port)/sluice", connectTimeout: 1))
        }
        await silent.close()
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(error?.message.contains("127.0.0.1:\(port)") == true, "\(String(describing: error))")
    }
}
