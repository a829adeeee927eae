import GRDB
import SluiceCore

/// Batches and their lines in the embedded SQLite database (one process: its writes are
/// serialised, so a claim is one write transaction).
public final class SQLiteBatchStore: BatchStore {
    let writer: any DatabaseWriter

    public init(database: SQLiteDatabase) { self.writer = database.writer }

    static func arguments(_ b: BatchRecord) -> StatementArguments {
        [
            b.id, b.owner, b.keyID, b.endpoint, b.inputFileID, b.completionWindow, b.status.rawValue, b.createdAt, b.expiresAt, b.inProgressAt,
            b.finalizingAt, b.completedAt, b.failedAt, b.expiredAt, b.cancellingAt, b.cancelledAt, b.total, b.completed, b.failed, b.outputFileID,
            b.errorFileID, BatchSQL.errorsJSON(b.errors), BatchSQL.metadataJSON(b.metadata),
        ]
    }

    static func record(_ r: Row) -> BatchRecord {
        var b = BatchRecord(
            id: r[0], owner: r[1], keyID: r[2], endpoint: r[3], inputFileID: r[4], completionWindow: r[5],
            status: BatchRecord.Status(rawValue: r[6]) ?? .failed, createdAt: r[7], expiresAt: r[8], metadata: BatchSQL.metadata(r[22]))
        b.inProgressAt = r[9]
        b.finalizingAt = r[10]
        b.completedAt = r[11]
        b.failedAt = r[12]
        b.expiredAt = r[13]
        b.cancellingAt = r[14]
        b.cancelledAt = r[15]
        b.total = r[16]
        b.completed = r[17]
        b.failed = r[18]
        b.outputFileID = r[19]
        b.errorFileID = r[20]
        b.errors = BatchSQL.errors(r[21])
        return b
    }

    public func createBatch(_ batch: BatchRecord) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT INTO batches (\(BatchSQL.columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: Self.arguments(batch))
        }
    }

    public func start(batchID: String, lines: [BatchLine], at time: Double) async throws {
        try await writer.write { db in
            let insert = try db.cachedStatement(sql: "INSERT INTO batch_lines (batch_id, idx, custom_id, body, state) VALUES (?, ?, ?, ?, 'pending')")
            for line in lines { try insert.execute(arguments: [batchID, line.index, line.customID, line.body]) }
            try db.execute(
                sql: "UPDATE batches SET status = 'in_progress', in_progress_at = ?, total = ? WHERE id = ? AND status = 'validating'",
                arguments: [time, lines.count, batchID])
        }
    }

    public func batch(id: String) async throws -> BatchRecord? {
        try await writer.read { db in try Row.fetchOne(db, sql: "SELECT \(BatchSQL.columns) FROM batches WHERE id = ?", arguments: [id]).map(Self.record) }
    }

    public func batches(owner: String?, page: ListPage) async throws -> [BatchRecord] {
        try await writer.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let owner {
                conditions.append("owner = ?")
                arguments += [owner]
            }
            if let after = page.after,
                let cursor = try Row.fetchOne(db, sql: "SELECT created_at, id FROM batches WHERE id = ?", arguments: [after])
            {
                conditions.append("(created_at < ? OR (created_at = ? AND id < ?))")
                arguments += [cursor[0] as Double, cursor[0] as Double, cursor[1] as String]
            }
            let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
            arguments += [page.limit + 1]
            return try Row.fetchAll(db, sql: "SELECT \(BatchSQL.columns) FROM batches\(filter) ORDER BY created_at DESC, id DESC LIMIT ?", arguments: arguments)
                .map(Self.record)
        }
    }

    public func updateBatch(_ b: BatchRecord) async throws {
        try await writer.write { db in
            try db.execute(
                sql: """
                    UPDATE batches SET status = ?, in_progress_at = ?, finalizing_at = ?, completed_at = ?, failed_at = ?, expired_at = ?,
                        cancelling_at = ?, cancelled_at = ?, output_file_id = ?, error_file_id = ?, errors = ? WHERE id = ?
                    """,
                arguments: [
                    b.status.rawValue, b.inProgressAt, b.finalizingAt, b.completedAt, b.failedAt, b.expiredAt, b.cancellingAt, b.cancelledAt,
                    b.outputFileID, b.errorFileID, BatchSQL.errorsJSON(b.errors), b.id,
                ])
        }
    }

    public func openBatches() async throws -> [BatchRecord] {
        try await writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(BatchSQL.columns) FROM batches WHERE status NOT IN ('failed', 'completed', 'expired', 'cancelled') ORDER BY created_at"
            ).map(Self.record)
        }
    }

    public func claimLines(limit: Int, worker: String, now: Double, leaseUntil: Double) async throws -> [BatchLine] {
        try await writer.write { db in
            var out: [BatchLine] = []
            let claim = try db.cachedStatement(sql: "UPDATE batch_lines SET state = 'claimed', worker = ?, lease_until = ? WHERE batch_id = ? AND idx = ?")
            let due = try db.cachedStatement(sql: BatchSQL.due { "?\($0)" })
            for batchID in try String.fetchAll(db, sql: BatchSQL.claimOrder) where out.count < limit {
                for r in try Row.fetchAll(due, arguments: [batchID, now, limit - out.count]) {
                    try claim.execute(arguments: [worker, leaseUntil, r[0] as String, r[1] as Int])
                    out.append(BatchLine(batchID: r[0], index: r[1], customID: r[2], body: r[3], attempts: r[4]))
                }
            }
            return out
        }
    }

    public func finishLine(batchID: String, index: Int, worker: String, success: Bool, output: String) async throws -> Bool {
        try await writer.write { db in
            // Cached statements: this runs once per line, and compiling costs more than running.
            try db.cachedStatement(
                sql: """
                    UPDATE batch_lines SET state = ?, output = ?, worker = NULL, lease_until = NULL, attempts = attempts + 1
                    WHERE batch_id = ? AND idx = ? AND state = 'claimed' AND worker = ?
                    """
            ).execute(arguments: [success ? "succeeded" : "failed", output, batchID, index, worker])
            guard db.changesCount == 1 else { return false }
            try db.cachedStatement(sql: "UPDATE batches SET \(success ? "completed = completed + 1" : "failed = failed + 1") WHERE id = ?")
                .execute(arguments: [batchID])
            return true
        }
    }

    public func releaseLine(batchID: String, index: Int, worker: String, retryAt: Double, countAttempt: Bool) async throws {
        try await writer.write { db in
            try db.cachedStatement(
                sql: """
                    UPDATE batch_lines SET state = 'pending', worker = NULL, lease_until = NULL, retry_at = ?, attempts = attempts + ?
                    WHERE batch_id = ? AND idx = ? AND state = 'claimed' AND worker = ?
                    """
            ).execute(arguments: [retryAt, countAttempt ? 1 : 0, batchID, index, worker])
        }
    }

    public func closePending(batchID: String, now: Double, answer: @Sendable (BatchLine) -> String) async throws -> Int {
        try await writer.write { db in
            let open = try Row.fetchAll(
                db,
                sql: """
                    SELECT batch_id, idx, custom_id, body, attempts FROM batch_lines
                    WHERE batch_id = ? AND (state = 'pending' OR (state = 'claimed' AND lease_until < ?)) ORDER BY idx
                    """, arguments: [batchID, now])
            let close = try db.cachedStatement(
                sql: "UPDATE batch_lines SET state = 'failed', output = ?, worker = NULL, lease_until = NULL WHERE batch_id = ? AND idx = ?")
            for r in open {
                let line = BatchLine(batchID: r[0], index: r[1], customID: r[2], body: r[3], attempts: r[4])
                try close.execute(arguments: [answer(line), batchID, line.index])
            }
            try db.execute(sql: "UPDATE batches SET failed = failed + ? WHERE id = ?", arguments: [open.count, batchID])
            return open.count
        }
    }

    public func lineCounts(batchID: String) async throws -> BatchLineCounts {
        try await writer.read { db in
            var c = BatchLineCounts()
            for r in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) FROM batch_lines WHERE batch_id = ? GROUP BY state", arguments: [batchID]) {
                let n: Int = r[1]
                switch r[0] as String {
                case "pending": c.pending = n
                case "claimed": c.claimed = n
                case "succeeded": c.completed = n
                default: c.failed = n
                }
            }
            return c
        }
    }

    public func outputs(batchID: String, success: Bool) async throws -> [String] {
        try await writer.read { db in
            try String.fetchAll(
                db, sql: "SELECT output FROM batch_lines WHERE batch_id = ? AND state = ? ORDER BY idx", arguments: [batchID, success ? "succeeded" : "failed"])
        }
    }

    public func transition(batchID: String, from: [BatchRecord.Status], to: BatchRecord.Status, at time: Double) async throws -> Bool {
        try await writer.write { db in
            let stamp = to.timeColumn.map { ", \($0) = ?" } ?? ""
            var arguments: StatementArguments = [to.rawValue]
            if to.timeColumn != nil { arguments += [time] }
            arguments += [batchID]
            for status in from { arguments += [status.rawValue] }
            try db.execute(
                sql: "UPDATE batches SET status = ?\(stamp) WHERE id = ? AND status IN (\(from.map { _ in "?" }.joined(separator: ", ")))",
                arguments: arguments)
            return db.changesCount == 1
        }
    }

    public func renewLeases(worker: String, until: Double) async throws {
        try await writer.write { db in
            try db.execute(sql: "UPDATE batch_lines SET lease_until = ? WHERE worker = ? AND state = 'claimed'", arguments: [until, worker])
        }
    }
}
