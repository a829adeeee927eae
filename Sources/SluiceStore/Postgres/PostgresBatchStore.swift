import Foundation
import Logging
import PostgresNIO
import SluiceCore

/// Batches and their lines in PostgreSQL: replicas claim lines with `FOR UPDATE SKIP LOCKED`, so
/// they share a batch without taking the same line.
public final class PostgresBatchStore: BatchStore {
    let db: PostgresDatabase
    private var client: PostgresClient { db.client }
    private var logger: Logger { db.logger }

    public init(database: PostgresDatabase) { self.db = database }

    private typealias Row = (
        String, String, String, String, String, String, String, Double, Double, Double?, Double?, Double?, Double?, Double?, Double?, Double?, Int,
        Int, Int, String?, String?, String, String
    )

    private func records(_ query: PostgresQuery) async throws -> [BatchRecord] {
        var out: [BatchRecord] = []
        for try await r in try await client.query(query, logger: logger).decode(Row.self) {
            var b = BatchRecord(
                id: r.0, owner: r.1, keyID: r.2, endpoint: r.3, inputFileID: r.4, completionWindow: r.5,
                status: BatchRecord.Status(rawValue: r.6) ?? .failed, createdAt: r.7, expiresAt: r.8, metadata: BatchSQL.metadata(r.22))
            b.inProgressAt = r.9
            b.finalizingAt = r.10
            b.completedAt = r.11
            b.failedAt = r.12
            b.expiredAt = r.13
            b.cancellingAt = r.14
            b.cancelledAt = r.15
            b.total = r.16
            b.completed = r.17
            b.failed = r.18
            b.outputFileID = r.19
            b.errorFileID = r.20
            b.errors = BatchSQL.errors(r.21)
            out.append(b)
        }
        return out
    }

    public func createBatch(_ b: BatchRecord) async throws {
        let errors = BatchSQL.errorsJSON(b.errors)
        let metadata = BatchSQL.metadataJSON(b.metadata)
        try await client.query(
            """
            INSERT INTO batches (id, owner, key_id, endpoint, input_file_id, completion_window, status, created_at, expires_at, total, completed,
                failed, errors, metadata)
            VALUES (\(b.id), \(b.owner), \(b.keyID), \(b.endpoint), \(b.inputFileID), \(b.completionWindow), \(b.status.rawValue), \(b.createdAt),
                \(b.expiresAt), \(b.total), \(b.completed), \(b.failed), \(errors), \(metadata))
            """, logger: logger)
    }

    public func start(batchID: String, lines: [BatchLine], at time: Double) async throws {
        try await client.withTransaction(logger: logger) { conn in
            var start = 0
            // 1,000 lines (4,000 parameters) per statement.
            while start < lines.count {
                let chunk = lines[start..<min(start + 1000, lines.count)]
                start += chunk.count
                var binds = PostgresBindings(capacity: chunk.count * 4)
                var sql = "INSERT INTO batch_lines (batch_id, idx, custom_id, body, state) VALUES "
                for (i, line) in chunk.enumerated() {
                    if i > 0 { sql += "," }
                    sql += "($\(i * 4 + 1), $\(i * 4 + 2), $\(i * 4 + 3), $\(i * 4 + 4), 'pending')"
                    binds.append(batchID)
                    binds.append(line.index)
                    binds.append(line.customID)
                    binds.append(line.body)
                }
                try await conn.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            }
            try await conn.query(
                "UPDATE batches SET status = 'in_progress', in_progress_at = \(time), total = \(lines.count) WHERE id = \(batchID) AND status = 'validating'",
                logger: logger)
        }
    }

    public func batch(id: String) async throws -> BatchRecord? {
        try await records(PostgresQuery(unsafeSQL: "SELECT \(BatchSQL.columns) FROM batches WHERE id = $1", binds: Self.binds([id]))).first
    }

    static func binds(_ texts: [String]) -> PostgresBindings {
        var b = PostgresBindings()
        for t in texts { b.append(t) }
        return b
    }

    public func batches(owner: String?, page: ListPage) async throws -> [BatchRecord] {
        var binds = PostgresBindings()
        var conditions: [String] = []
        if let owner {
            binds.append(owner)
            conditions.append("owner = $\(binds.count)")
        }
        if let after = page.after {
            binds.append(after)
            conditions.append("(created_at, id) < (SELECT created_at, id FROM batches WHERE id = $\(binds.count))")
        }
        binds.append(page.limit + 1)
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT \(BatchSQL.columns) FROM batches\(filter) ORDER BY created_at DESC, id DESC LIMIT $\(binds.count)"
        return try await records(PostgresQuery(unsafeSQL: sql, binds: binds))
    }

    public func updateBatch(_ b: BatchRecord) async throws {
        let errors = BatchSQL.errorsJSON(b.errors)
        try await client.query(
            """
            UPDATE batches SET status = \(b.status.rawValue), in_progress_at = \(b.inProgressAt), finalizing_at = \(b.finalizingAt),
                completed_at = \(b.completedAt), failed_at = \(b.failedAt), expired_at = \(b.expiredAt), cancelling_at = \(b.cancellingAt),
                cancelled_at = \(b.cancelledAt), output_file_id = \(b.outputFileID), error_file_id = \(b.errorFileID), errors = \(errors)
            WHERE id = \(b.id)
            """, logger: logger)
    }

    public func openBatches() async throws -> [BatchRecord] {
        try await records(
            PostgresQuery(
                unsafeSQL: "SELECT \(BatchSQL.columns) FROM batches WHERE status NOT IN ('failed', 'completed', 'expired', 'cancelled') ORDER BY created_at",
                binds: PostgresBindings()))
    }

    public func claimLines(limit: Int, worker: String, now: Double, leaseUntil: Double) async throws -> [BatchLine] {
        var out: [BatchLine] = []
        var batches: [String] = []
        for try await id in try await client.query(PostgresQuery(unsafeSQL: BatchSQL.claimOrder), logger: logger).decode(String.self) { batches.append(id) }
        for batchID in batches where out.count < limit {
            // Locked lines are another replica's claim in progress: skipped, never waited for.
            var binds = PostgresBindings()
            binds.append(batchID)
            binds.append(now)
            binds.append(limit - out.count)
            binds.append(worker)
            binds.append(leaseUntil)
            let due = BatchSQL.due { "$\($0)" }.replacingOccurrences(of: "ORDER BY idx LIMIT $3)", with: "ORDER BY idx LIMIT $3 FOR UPDATE SKIP LOCKED)")
            let rows = try await client.query(
                PostgresQuery(
                    unsafeSQL: """
                        WITH due AS (\(due))
                        UPDATE batch_lines l SET state = 'claimed', worker = $4, lease_until = $5
                        FROM due WHERE l.batch_id = due.batch_id AND l.idx = due.idx
                        RETURNING l.batch_id, l.idx, l.custom_id, l.body, l.attempts
                        """, binds: binds), logger: logger)
            var claimed: [BatchLine] = []
            for try await (batchID, index, customID, body, attempts) in rows.decode((String, Int, String, String, Int).self) {
                claimed.append(BatchLine(batchID: batchID, index: index, customID: customID, body: body, attempts: attempts))
            }
            out += claimed.sorted { $0.index < $1.index }
        }
        return out
    }

    public func finishLine(batchID: String, index: Int, worker: String, success: Bool, output: String) async throws -> Bool {
        let state = success ? "succeeded" : "failed"
        return try await client.withTransaction(logger: logger) { conn in
            var changed = 0
            for try await n in try await conn.query(
                """
                WITH done AS (
                    UPDATE batch_lines SET state = \(state), output = \(output), worker = NULL, lease_until = NULL, attempts = attempts + 1
                    WHERE batch_id = \(batchID) AND idx = \(index) AND state = 'claimed' AND worker = \(worker) RETURNING 1)
                SELECT COUNT(*)::BIGINT FROM done
                """, logger: logger
            ).decode(Int64.self) { changed = Int(n) }
            guard changed == 1 else { return false }
            if success {
                try await conn.query("UPDATE batches SET completed = completed + 1 WHERE id = \(batchID)", logger: logger)
            } else {
                try await conn.query("UPDATE batches SET failed = failed + 1 WHERE id = \(batchID)", logger: logger)
            }
            return true
        }
    }

    public func releaseLine(batchID: String, index: Int, worker: String, retryAt: Double, countAttempt: Bool) async throws {
        let add = countAttempt ? 1 : 0
        try await client.query(
            """
            UPDATE batch_lines SET state = 'pending', worker = NULL, lease_until = NULL, retry_at = \(retryAt), attempts = attempts + \(add)
            WHERE batch_id = \(batchID) AND idx = \(index) AND state = 'claimed' AND worker = \(worker)
            """, logger: logger)
    }

    public func closePending(batchID: String, now: Double, answer: @Sendable (BatchLine) -> String) async throws -> Int {
        try await client.withTransaction(logger: logger) { conn in
            var open: [BatchLine] = []
            for try await (index, customID, body, attempts) in try await conn.query(
                """
                SELECT idx, custom_id, body, attempts FROM batch_lines
                WHERE batch_id = \(batchID) AND (state = 'pending' OR (state = 'claimed' AND lease_until < \(now))) ORDER BY idx FOR UPDATE
                """, logger: logger
            ).decode((Int, String, String, Int).self) {
                open.append(BatchLine(batchID: batchID, index: index, customID: customID, body: body, attempts: attempts))
            }
            for line in open {
                let output = answer(line)
                try await conn.query(
                    "UPDATE batch_lines SET state = 'failed', output = \(output), worker = NULL, lease_until = NULL WHERE batch_id = \(batchID) AND idx = \(line.index)",
                    logger: logger)
            }
            try await conn.query("UPDATE batches SET failed = failed + \(open.count) WHERE id = \(batchID)", logger: logger)
            return open.count
        }
    }

    public func lineCounts(batchID: String) async throws -> BatchLineCounts {
        var c = BatchLineCounts()
        for try await (state, n) in try await client.query(
            "SELECT state, COUNT(*)::BIGINT FROM batch_lines WHERE batch_id = \(batchID) GROUP BY state", logger: logger
        ).decode((String, Int64).self) {
            switch state {
            case "pending": c.pending = Int(n)
            case "claimed": c.claimed = Int(n)
            case "succeeded": c.completed = Int(n)
            default: c.failed = Int(n)
            }
        }
        return c
    }

    public func outputs(batchID: String, success: Bool) async throws -> [String] {
        let state = success ? "succeeded" : "failed"
        var out: [String] = []
        for try await text in try await client.query(
            "SELECT output FROM batch_lines WHERE batch_id = \(batchID) AND state = \(state) ORDER BY idx", logger: logger
        ).decode(String.self) { out.append(text) }
        return out
    }

    public func transition(batchID: String, from: [BatchRecord.Status], to: BatchRecord.Status, at time: Double) async throws -> Bool {
        var binds = PostgresBindings()
        binds.append(to.rawValue)
        var stamp = ""
        if let column = to.timeColumn {
            binds.append(time)
            stamp = ", \(column) = $2"
        }
        binds.append(batchID)
        let idParam = binds.count
        var placeholders: [String] = []
        for status in from {
            binds.append(status.rawValue)
            placeholders.append("$\(binds.count)")
        }
        let sql = """
            WITH moved AS (UPDATE batches SET status = $1\(stamp) WHERE id = $\(idParam) AND status IN (\(placeholders.joined(separator: ", "))) RETURNING 1)
            SELECT COUNT(*)::BIGINT FROM moved
            """
        for try await n in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger).decode(Int64.self) { return n == 1 }
        return false
    }

    public func renewLeases(worker: String, until: Double) async throws {
        try await client.query("UPDATE batch_lines SET lease_until = \(until) WHERE worker = \(worker) AND state = 'claimed'", logger: logger)
    }
}
