import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import SluiceCore

/// A PostgreSQL database shared by several Sluice replicas: a connection pool (postgres-nio) and
/// versioned migrations, applied once under an advisory lock however many replicas start together.
///
/// The pool runs from the moment the database is opened (its `run()` is entered before `init`
/// leases anything: start-up reads keys and cached answers before the service group runs), and
/// stops when the service's graceful shutdown ends or `close()` is called.
public final class PostgresDatabase: Service, Sendable {
    let client: PostgresClient
    let logger: Logger
    private let runner: Task<Void, Never>

    /// Connects to `url` (`postgres://user:password@host:port/database`) and migrates. Gives up
    /// with an error naming the server when no connection is made within `connectTimeout`.
    public init(url: String, logger: Logger, maxConnections: Int = 20, connectTimeout: Duration = .seconds(30)) async throws {
        guard let parts = URLComponents(string: url), ["postgres", "postgresql"].contains(parts.scheme ?? ""), let host = parts.host,
            !host.isEmpty
        else {
            throw ConfigError(path: "store.postgres", "must be a URL like postgres://user:password@127.0.0.1:5432/sluice")
        }
        let database = parts.path.hasPrefix("/") ? String(parts.path.dropFirst()) : parts.path
        let port = parts.port ?? 5432
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: parts.user ?? "postgres", password: parts.password,
            database: database.isEmpty ? nil : database, tls: .disable)
        configuration.options.maximumConnections = maxConnections
        configuration.options.connectTimeout = min(.seconds(10), connectTimeout)
        let connection = PostgresConnection.Configuration(
            host: host, port: port, username: configuration.username, password: configuration.password, database: configuration.database,
            tls: .disable)
        // One deadline for reaching the server and migrating together.
        let deadline = ContinuousClock.now + connectTimeout
        try await withTimeLimit(
            connectTimeout,
            timeoutError: {
                ConfigError(
                    path: "store.postgres",
                    "no answer from PostgreSQL at \(host):\(port) within \(connectTimeout) (store.connect_timeout_s): is the server running and accepting connections?"
                )
            }
        ) { try await Self.waitUntilReachable(connection, server: "\(host):\(port)", deadline: deadline, logger: logger) }
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.logger = logger
        // `Task.immediate` enters `client.run()` before returning, so the pool is running before
        // the migration below leases its first connection (a plain `Task` may start later).
        self.runner = Task.immediate { await client.run() }
        do {
            try await withTimeLimit(
                max(.zero, deadline - .now),
                timeoutError: {
                    ConfigError(
                        path: "store.postgres",
                        "PostgreSQL at \(host):\(port) did not finish the migrations within \(connectTimeout) (store.connect_timeout_s)"
                    )
                }
            ) { [client, logger] in try await Self.migrate(client, logger: logger) }
        } catch {
            runner.cancel()
            await runner.value
            throw error
        }
    }

    /// SQLSTATE 57P03: the server is starting up, shutting down or recovering; worth waiting for.
    static let cannotConnectNow = "57P03"

    /// Returns once the server accepts a session for this user and database. A server that
    /// answers with an error (a wrong password, no such database) fails at once; one that is not
    /// listening yet, or says it is still starting (57P03), is tried again until `deadline`, with
    /// a warning each time.
    static func waitUntilReachable(
        _ configuration: PostgresConnection.Configuration, server: String, deadline: ContinuousClock.Instant, logger: Logger) async throws {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let connection = try await PostgresConnection.connect(configuration: configuration, id: attempt, logger: logger)
                try await connection.close()
                return
            } catch let error as PSQLError where error.code == .server && error.serverInfo?[.sqlState] != Self.cannotConnectNow {
                let message = error.serverInfo?[.message] ?? "refused"
                throw ConfigError(path: "store.postgres", "PostgreSQL at \(server) refused the connection: \(message)")
            } catch {
                let reason = (error as? PSQLError)?.underlying.map { "\($0)" } ?? "\(error)"
                if ContinuousClock.now >= deadline {
                    throw ConfigError(path: "store.postgres", "cannot connect to PostgreSQL at \(server): \(reason)")
                }
                logger.warning("waiting for PostgreSQL", metadata: ["server": "\(server)", "attempt": "\(attempt)", "error": "\(reason)"])
                try await Task.sleep(for: .milliseconds(min(100 * attempt, 1_000)))
            }
        }
    }

    /// Runs until graceful shutdown, then closes the pool (place it first in the service group:
    /// it stops last, after the audit log has flushed).
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }

    /// Closes the pool and waits until its connections are closed.
    public func close() async {
        runner.cancel()
        await runner.value
    }

    /// Creates an empty database `name` on the server `url` points at (connecting to its
    /// `postgres` database) and returns the new database's URL. For setup tools and tests.
    public static func createDatabase(_ name: String, on url: String) async throws -> String {
        guard var parts = URLComponents(string: url), let host = parts.host,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
        else {
            throw ConfigError(path: "store.postgres", "cannot create database '\(name)' on \(url)")
        }
        let client = PostgresClient(
            configuration: .init(
                host: host, port: parts.port ?? 5432, username: parts.user ?? "postgres", password: parts.password, database: "postgres",
                tls: .disable),
            backgroundLogger: Logger(label: "sluice-postgres-setup"))
        let runner = Task.immediate { await client.run() }
        defer { runner.cancel() }
        try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        parts.path = "/" + name
        return parts.string ?? url
    }

    private static func migrate(_ client: PostgresClient, logger: Logger) async throws {
        try await client.withTransaction(logger: logger) { conn in
            // One replica migrates at a time; the others wait, then find nothing to do.
            try await conn.query("SELECT pg_advisory_xact_lock(7243001)", logger: logger)
            try await conn.query("CREATE TABLE IF NOT EXISTS sluice_migrations (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)", logger: logger)
            var applied: Set<String> = []
            for try await name in try await conn.query("SELECT name FROM sluice_migrations", logger: logger).decode(String.self) {
                applied.insert(name)
            }
            for (name, statements) in Self.migrations where !applied.contains(name) {
                for statement in statements { try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                let now = Date().timeIntervalSince1970
                try await conn.query("INSERT INTO sluice_migrations (name, applied_at) VALUES (\(name), \(now))", logger: logger)
            }
        }
    }

    static let migrations: [(String, [String])] = [
        (
            "v1",
            [
                """
                CREATE TABLE requests (
                    id TEXT PRIMARY KEY, time DOUBLE PRECISION NOT NULL, endpoint TEXT NOT NULL, key_id TEXT NOT NULL DEFAULT '',
                    team_id TEXT NOT NULL DEFAULT '', model_requested TEXT NOT NULL, deployment TEXT, status INTEGER NOT NULL,
                    error_code TEXT, latency_ms DOUBLE PRECISION NOT NULL, ttft_ms DOUBLE PRECISION, tokens_in BIGINT NOT NULL,
                    tokens_out BIGINT NOT NULL, cost_usd DOUBLE PRECISION NOT NULL, cache_status TEXT NOT NULL, stream BOOLEAN NOT NULL,
                    attempts INTEGER NOT NULL)
                """,
                "CREATE INDEX requests_time ON requests(time)",
                "CREATE INDEX requests_key_time ON requests(key_id, time)",
                "CREATE INDEX requests_team_time ON requests(team_id, time) WHERE team_id <> ''",
                """
                CREATE TABLE teams (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, limits TEXT NOT NULL, metadata TEXT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL)
                """,
                """
                CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, team_id TEXT REFERENCES teams(id), role TEXT NOT NULL,
                    prefix TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION,
                    revoked_at DOUBLE PRECISION, models TEXT, limits TEXT NOT NULL, priority TEXT NOT NULL, metadata TEXT NOT NULL)
                """,
                "CREATE TABLE access_generation (id INTEGER PRIMARY KEY CHECK (id = 1), value BIGINT NOT NULL)",
                "INSERT INTO access_generation VALUES (1, 0)",
                // Limits shared by replicas: the requests and tokens of the last minute, the
                // concurrency slots held (leases that lapse if a replica dies holding them), and
                // the budget windows.
                "CREATE TABLE limit_events (scope TEXT NOT NULL, grant_id BIGINT NOT NULL, at DOUBLE PRECISION NOT NULL, tokens BIGINT NOT NULL)",
                "CREATE INDEX limit_events_scope_at ON limit_events(scope, at)",
                "CREATE TABLE limit_slots (scope TEXT NOT NULL, grant_id BIGINT NOT NULL, expires_at DOUBLE PRECISION NOT NULL)",
                "CREATE INDEX limit_slots_scope ON limit_slots(scope, grant_id)",
                """
                CREATE TABLE limit_budgets (scope TEXT NOT NULL, period TEXT NOT NULL, window_start DOUBLE PRECISION NOT NULL,
                    spent DOUBLE PRECISION NOT NULL, reserved DOUBLE PRECISION NOT NULL, PRIMARY KEY (scope, period))
                """,
                "CREATE SEQUENCE limit_grants",
            ]
        ),
        ("v2_request_details", ["ALTER TABLE requests ADD COLUMN details TEXT NOT NULL DEFAULT '{}'"]),
        (
            "v3_response_cache",
            [
                """
                CREATE TABLE response_cache (key TEXT PRIMARY KEY, partition TEXT, embedding BYTEA, kind TEXT NOT NULL, answer TEXT NOT NULL,
                    prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                    expires_at DOUBLE PRECISION NOT NULL)
                """,
                "CREATE INDEX response_cache_created ON response_cache(created_at)",
                "CREATE INDEX response_cache_expires ON response_cache(expires_at)",
            ]
        ),
        ("v4_request_bodies", ["ALTER TABLE requests ADD COLUMN request_body TEXT", "ALTER TABLE requests ADD COLUMN response_body TEXT"]),
        (
            "v5_flows",
            [
                "ALTER TABLE requests ADD COLUMN flow TEXT", "ALTER TABLE requests ADD COLUMN flow_version INTEGER",
                "CREATE INDEX requests_flow_time ON requests(flow, time) WHERE flow IS NOT NULL",
            ]
        ),
        (
            "v6_flow_versions",
            [
                """
                CREATE TABLE flow_versions (flow TEXT NOT NULL, version INTEGER NOT NULL, definition TEXT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (flow, version))
                """,
                "CREATE TABLE flow_active (flow TEXT PRIMARY KEY, version INTEGER NOT NULL)",
                "CREATE TABLE flow_generation (id INTEGER PRIMARY KEY CHECK (id = 1), value BIGINT NOT NULL)",
                "INSERT INTO flow_generation VALUES (1, 0)",
            ]
        ),
        (
            "v7_conversations",
            [
                "CREATE TABLE conversations (id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, metadata TEXT NOT NULL)",
                """
                CREATE TABLE conversation_items (conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE, sequence INTEGER NOT NULL,
                    id TEXT NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (conversation_id, sequence))
                """,
                "CREATE UNIQUE INDEX conversation_items_id ON conversation_items(conversation_id, id)",
            ]
        ),
        (
            "v8_conversation_summaries",
            [
                "ALTER TABLE conversations ADD COLUMN summary TEXT",
                "ALTER TABLE conversations ADD COLUMN summarized_through INTEGER NOT NULL DEFAULT 0",
            ]
        ),
        (
            "v9_request_conversations",
            [
                "ALTER TABLE requests ADD COLUMN conversation_id TEXT",
                "CREATE INDEX requests_conversation_time ON requests(conversation_id, time) WHERE conversation_id IS NOT NULL",
            ]
        ),
        ("v10_retrieval", PostgresRetrievalStore.migration),
        ("v11_quality", QualitySQL.migration),
        ("v12_batches", BatchSQL.migration),
        ("v13_batch_lines_due", BatchSQL.dueIndex),
        ("v14_stored_responses", PostgresResponseStore.migration),
        ("v15_cache_questions", ["ALTER TABLE response_cache ADD COLUMN question TEXT"]),
    ]
}
