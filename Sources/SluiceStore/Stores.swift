import Logging
import ServiceLifecycle
import SluiceCore

/// The stores the configuration names, opened together: SQLite (one process; limits counted in
/// memory) or PostgreSQL (several replicas; limits counted in the database).
public struct Stores: Sendable {
    public typealias AuditLog = AuditLogStore & SpendLedger & UsageReporter & FlowReporter

    public let auditLog: any AuditLog
    public let access: any AccessStore
    public let limiter: any UsageLimiter
    /// Where cached answers persist.
    public let responseCache: any ResponseCacheStore
    /// Flow versions added at run time, and which one each flow runs.
    public let flowVersions: any FlowVersionStore
    /// Conversations and their items.
    public let conversations: any ConversationStore
    /// Files, vector stores and their chunks.
    public let retrieval: any RetrievalStore
    /// Feedback, judgements and experiments' state.
    public let quality: any QualityStore
    /// Batches and their lines (the durable queue).
    public let batches: any BatchStore
    /// Responses API responses kept for `GET` and `previous_response_id`.
    public let responses: any ResponseStore
    /// What runs beside the server, in start order (PostgreSQL only: the pool, then the
    /// limiter's settlements, which stop first).
    public let services: [any Service]
    /// Where a generated admin key may be written (SQLite on disk only).
    public let sqlitePath: String?

    public static func open(_ config: StoreConfig, logger: Logger) async throws -> Stores {
        if let url = config.postgres {
            let db: PostgresDatabase
            do {
                db = try await PostgresDatabase(url: url, logger: logger, connectTimeout: .milliseconds(Int64(config.connectTimeoutSeconds * 1000)))
            } catch let error as ConfigError {
                throw error
            } catch {
                throw ConfigError(path: "store.postgres", "cannot open the database: \(String(reflecting: error))")
            }
            let limiter = PostgresUsageLimiter(database: db)
            return Stores(
                auditLog: PostgresAuditLogStore(database: db), access: PostgresAccessStore(database: db),
                limiter: limiter, responseCache: PostgresResponseCacheStore(database: db), flowVersions: PostgresFlowVersionStore(database: db),
                conversations: PostgresConversationStore(database: db), retrieval: PostgresRetrievalStore(database: db),
                quality: PostgresQualityStore(database: db), batches: PostgresBatchStore(database: db),
                responses: PostgresResponseStore(database: db), services: [db, limiter.settlements],
                sqlitePath: nil)
        }
        let path = config.sqlite ?? ":memory:"
        let db: SQLiteDatabase
        do {
            db = try SQLiteDatabase(path: path)
        } catch {
            throw ConfigError(path: "store.sqlite", "cannot open the database: \(error)")
        }
        let log = SQLiteAuditLogStore(database: db)
        return Stores(
            auditLog: log, access: SQLiteAccessStore(database: db), limiter: LocalUsageLimiter(ledger: log),
            responseCache: SQLiteResponseCacheStore(database: db), flowVersions: SQLiteFlowVersionStore(database: db),
            conversations: SQLiteConversationStore(database: db), retrieval: SQLiteRetrievalStore(database: db),
            quality: SQLiteQualityStore(database: db), batches: SQLiteBatchStore(database: db),
            responses: SQLiteResponseStore(database: db), services: [],
            sqlitePath: path == ":memory:" ? nil : path)
    }

    /// Closes what `open` opened (tools that run no service group).
    public func close() async {
        for case let database as PostgresDatabase in services { await database.close() }
    }
}
