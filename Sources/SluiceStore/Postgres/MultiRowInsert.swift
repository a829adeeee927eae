import Logging
import PostgresNIO

/// Rows written with multi-row `INSERT` statements on one connection (inside the caller's
/// transaction): a few statements per batch instead of one per row, kept under PostgreSQL's
/// 65,535 parameters.
enum MultiRowInsert {
    /// `head` is `INSERT INTO t (c1, …) VALUES`, `tail` what follows the rows (`ON CONFLICT …`);
    /// `bind` appends one row's `columns` values.
    static func run<Row>(
        _ rows: some Collection<Row>, columns: Int, head: String, tail: String, rowsPerStatement: Int = 500, on conn: PostgresConnection,
        logger: Logger, bind: (Row, inout PostgresBindings) -> Void
    ) async throws {
        var start = rows.startIndex
        while start != rows.endIndex {
            let end = rows.index(start, offsetBy: rowsPerStatement, limitedBy: rows.endIndex) ?? rows.endIndex
            var sql = head + " "
            var binds = PostgresBindings(capacity: rows.distance(from: start, to: end) * columns)
            for (i, row) in rows[start..<end].enumerated() {
                if i > 0 { sql += "," }
                sql += "(" + (1...columns).map { "$\(i * columns + $0)" }.joined(separator: ",") + ")"
                bind(row, &binds)
            }
            sql += " " + tail
            try await conn.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            start = end
        }
    }
}
