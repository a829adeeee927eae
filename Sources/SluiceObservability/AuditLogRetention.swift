import Foundation
import Logging
import ServiceLifecycle
import SluiceCore
import SluiceStore

/// Deletes audit-log rows older than `retention_days` and clears bodies older than
/// `body_retention_days` — conversation messages are bodies too — every `purge_interval_s` (and
/// once at start-up).
package struct AuditLogRetention: Service {
    package let store: any AuditLogStore
    package let config: AuditLogConfig
    package let logger: Logger
    package let conversations: (any ConversationStore)?
    package let responses: (any ResponseStore)?

    package init(
        store: any AuditLogStore, config: AuditLogConfig, logger: Logger, conversations: (any ConversationStore)? = nil,
        responses: (any ResponseStore)? = nil
    ) {
        self.conversations = conversations
        self.responses = responses
        self.store = store
        self.config = config
        self.logger = logger
    }

    /// The cut-offs for a purge at `now` (Unix seconds).
    package static func cutoffs(_ config: AuditLogConfig, now: Double) -> (rows: Double?, bodies: Double?) {
        let rows = config.retentionDays.map { now - $0 * 86_400 }
        let bodies = (config.bodyRetentionDays ?? config.retentionDays).map { now - $0 * 86_400 }
        return (rows, bodies)
    }

    /// One purge; answers what went.
    @discardableResult
    package func purge(now: Double = Date().timeIntervalSince1970) async throws -> (rows: Int, bodies: Int) {
        let (rows, bodies) = Self.cutoffs(config, now: now)
        guard rows != nil || bodies != nil else { return (0, 0) }
        let done = try await store.purge(rowsBefore: rows, bodiesBefore: bodies)
        if done.rows > 0 || done.bodies > 0 {
            logger.info("audit log purged", metadata: ["rows": "\(done.rows)", "bodies": "\(done.bodies)"])
        }
        if let conversations, let bodies {
            let items = try await conversations.purge(itemsBefore: bodies)
            if items > 0 { logger.info("conversation messages purged", metadata: ["items": "\(items)"]) }
        }
        if let responses, let bodies {
            let gone = try await responses.purge(createdBefore: bodies)
            if gone > 0 { logger.info("stored responses purged", metadata: ["responses": "\(gone)"]) }
        }
        return done
    }

    package func run() async throws {
        // Nothing to purge, but a service that returns early stops the group.
        guard config.retentionDays != nil || config.bodyRetentionDays != nil else { return try await gracefulShutdown() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await purge()
            } catch is CancellationError {
                return  // The server is stopping (a purge runs at start, so a quick stop cancels one).
            } catch {
                logger.error("audit log purge failed", metadata: ["error": "\(error)"])
            }
            do { try await gracefulShutdownSleep(for: .milliseconds(Int64(config.purgeIntervalS * 1000))) } catch { return }
        }
    }
}
