import Foundation
import SluiceCore

/// What both batch stores share: the tables (the same statements on SQLite and PostgreSQL), the
/// columns, and the JSON of a batch's errors and metadata.
enum BatchSQL {
    static let migration: [String] = [
        """
        CREATE TABLE batches (id TEXT PRIMARY KEY, owner TEXT NOT NULL, key_id TEXT NOT NULL, endpoint TEXT NOT NULL,
            input_file_id TEXT NOT NULL, completion_window TEXT NOT NULL, status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL, in_progress_at DOUBLE PRECISION, finalizing_at DOUBLE PRECISION,
            completed_at DOUBLE PRECISION, failed_at DOUBLE PRECISION, expired_at DOUBLE PRECISION, cancelling_at DOUBLE PRECISION,
            cancelled_at DOUBLE PRECISION, total INTEGER NOT NULL DEFAULT 0, completed INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0, output_file_id TEXT, error_file_id TEXT, errors TEXT NOT NULL, metadata TEXT NOT NULL)
        """,
        "CREATE INDEX batches_owner ON batches(owner, created_at)",
        "CREATE INDEX batches_status ON batches(status)",
        """
        CREATE TABLE batch_lines (batch_id TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE, idx INTEGER NOT NULL,
            custom_id TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, worker TEXT,
            lease_until DOUBLE PRECISION, retry_at DOUBLE PRECISION NOT NULL DEFAULT 0, output TEXT, PRIMARY KEY (batch_id, idx))
        """,
        "CREATE INDEX batch_lines_state ON batch_lines(batch_id, state)",
    ]

    static let columns = """
        id, owner, key_id, endpoint, input_file_id, completion_window, status, created_at, expires_at, in_progress_at, finalizing_at, \
        completed_at, failed_at, expired_at, cancelling_at, cancelled_at, total, completed, failed, output_file_id, error_file_id, errors, metadata
        """

    /// A claim reads one batch's lines by state in input order from this index, rather than
    /// every line of the batch sorted for each claim.
    static let dueIndex: [String] = [
        "DROP INDEX batch_lines_state",
        "CREATE INDEX batch_lines_due ON batch_lines(batch_id, state, idx)",
    ]

    /// The lines a worker may claim in one batch, in input order: claimed by a worker whose lease
    /// ran out (few: at most the workers' slots), then pending and due. Parameters: batch id,
    /// now, limit (each query), with `$N` or `?` as the database writes them.
    static func due(_ p: (Int) -> String) -> String {
        """
        SELECT batch_id, idx, custom_id, body, attempts FROM (
            SELECT * FROM (SELECT batch_id, idx, custom_id, body, attempts, 0 AS k FROM batch_lines WHERE batch_id = \(p(1)) AND state = 'claimed' AND lease_until < \(p(2)) ORDER BY idx LIMIT \(p(3))) e
            UNION ALL
            SELECT * FROM (SELECT batch_id, idx, custom_id, body, attempts, 1 AS k FROM batch_lines WHERE batch_id = \(p(1)) AND state = 'pending' AND retry_at <= \(p(2)) ORDER BY idx LIMIT \(p(3))) d
        ) due ORDER BY k, idx LIMIT \(p(3))
        """
    }

    /// In-progress batches, oldest first: the order their lines are claimed in.
    static let claimOrder = "SELECT id FROM batches WHERE status = 'in_progress' ORDER BY created_at, id"

    static func errorsJSON(_ errors: [BatchRecord.LineError]) -> String {
        let value = JSONValue.array(
            errors.map { e in
                .object([
                    "code": .string(e.code), "message": .string(e.message), "param": e.param.map(JSONValue.string) ?? .null,
                    "line": e.line.map(JSONValue.int) ?? .null,
                ])
            })
        return text(value)
    }

    static func errors(_ text: String) -> [BatchRecord.LineError] {
        guard case .array(let items)? = parse(text) else { return [] }
        return items.compactMap { item in
            guard let code = item["code"]?.stringValue, let message = item["message"]?.stringValue else { return nil }
            return BatchRecord.LineError(code: code, message: message, param: item["param"]?.stringValue, line: item["line"]?.intValue)
        }
    }

    static func metadataJSON(_ m: [String: String]) -> String { text(.object(m.mapValues(JSONValue.string))) }

    static func metadata(_ text: String) -> [String: String] {
        guard case .object(let o)? = parse(text) else { return [:] }
        return o.compactMapValues(\.stringValue)
    }

    static func text(_ value: JSONValue) -> String {
        guard let data = try? JSONEncoder().encode(value) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    static func parse(_ text: String) -> JSONValue? { Array(text.utf8).withUnsafeBytes { JSONParser.parse($0) } }
}
