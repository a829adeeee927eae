import Foundation
import Logging
import NIOCore
import PostgresNIO
import SluiceCore

/// Files, vector stores and chunks in PostgreSQL: every replica sees every file. Keyword search
/// uses a stored `tsvector` (English stemming) with a GIN index; vectors are kept as `bytea`
/// (float32) and indexed in each replica's memory (pgvector is not in Debian 12's archive).
public final class PostgresRetrievalStore: RetrievalStore {
    let db: PostgresDatabase
    private var client: PostgresClient { db.client }
    private var logger: Logger { db.logger }

    public init(database: PostgresDatabase) { self.db = database }

    static let migration = [
        """
        CREATE TABLE files (id TEXT PRIMARY KEY, owner TEXT NOT NULL, filename TEXT NOT NULL, purpose TEXT NOT NULL, bytes BIGINT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, content BYTEA NOT NULL)
        """,
        "CREATE INDEX files_owner ON files(owner, created_at)",
        """
        CREATE TABLE vector_stores (id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT, created_at DOUBLE PRECISION NOT NULL,
            last_active_at DOUBLE PRECISION NOT NULL, metadata TEXT NOT NULL, expires_after_days INTEGER, embedding_model TEXT NOT NULL,
            chunking TEXT NOT NULL, generation BIGINT NOT NULL DEFAULT 0)
        """,
        "CREATE INDEX vector_stores_owner ON vector_stores(owner, created_at)",
        """
        CREATE TABLE vector_store_files (store_id TEXT NOT NULL, file_id TEXT NOT NULL, status TEXT NOT NULL, error_code TEXT, error_message TEXT,
            attributes TEXT NOT NULL, chunking TEXT NOT NULL, usage_bytes BIGINT NOT NULL DEFAULT 0, created_at DOUBLE PRECISION NOT NULL,
            batch_id TEXT, PRIMARY KEY (store_id, file_id))
        """,
        "CREATE INDEX vector_store_files_file ON vector_store_files(file_id)",
        "CREATE INDEX vector_store_files_batch ON vector_store_files(batch_id) WHERE batch_id IS NOT NULL",
        "CREATE INDEX vector_store_files_pending ON vector_store_files(status) WHERE status = 'in_progress'",
        """
        CREATE TABLE chunks (seq BIGSERIAL PRIMARY KEY, store_id TEXT NOT NULL, file_id TEXT NOT NULL, position INTEGER NOT NULL,
            heading TEXT NOT NULL, page INTEGER, text TEXT NOT NULL, vector BYTEA NOT NULL,
            tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', heading || ' ' || text)) STORED)
        """,
        "CREATE INDEX chunks_store ON chunks(store_id, seq)",
        "CREATE INDEX chunks_file ON chunks(store_id, file_id)",
        "CREATE INDEX chunks_by_file ON chunks(file_id)",
        "CREATE INDEX chunks_tsv ON chunks USING GIN (tsv)",
    ]

    private typealias FileRow = (String, String, String, String, Int, Double)
    private static let fileColumns = "id, owner, filename, purpose, bytes, created_at"

    private static func file(_ r: FileRow) -> StoredFile {
        StoredFile(id: r.0, owner: r.1, filename: r.2, purpose: StoredFile.Purpose(rawValue: r.3) ?? .userData, bytes: r.4, createdAt: r.5)
    }

    public func insertFile(_ file: StoredFile, content: [UInt8]) async throws {
        let bytes = ByteBuffer(bytes: content)
        try await client.query(
            """
            INSERT INTO files (id, owner, filename, purpose, bytes, created_at, content)
            VALUES (\(file.id), \(file.owner), \(file.filename), \(file.purpose.rawValue), \(file.bytes), \(file.createdAt), \(bytes))
            """, logger: logger)
    }

    public func file(id: String) async throws -> StoredFile? {
        let rows = try await client.query("SELECT id, owner, filename, purpose, bytes, created_at FROM files WHERE id = \(id)", logger: logger)
        for try await row in rows.decode(FileRow.self) { return Self.file(row) }
        return nil
    }

    /// `after` / `before` as a condition on (created_at, key) of the named row, in list order.
    private static func cursor(_ page: ListPage, table: String, key: String, storeBind: Int?, binds: inout PostgresBindings) -> String {
        var sql = ""
        for (id, forward) in [(page.after, true), (page.before, false)] {
            guard let id else { continue }
            binds.append(id)
            let op = forward == page.ascending ? ">" : "<"
            let scope = storeBind.map { " AND store_id = $\($0)" } ?? ""
            sql += " AND (created_at, \(key)) \(op) (SELECT created_at, \(key) FROM \(table) WHERE \(key) = $\(binds.count)\(scope))"
        }
        return sql
    }

    private static func order(_ page: ListPage, key: String) -> String {
        let direction = page.ascending ? "ASC" : "DESC"
        return " ORDER BY created_at \(direction), \(key) \(direction) LIMIT \(page.limit + 1)"
    }

    public func files(owner: String, purpose: StoredFile.Purpose?, page: ListPage) async throws -> [StoredFile] {
        var binds = PostgresBindings()
        binds.append(owner)
        var sql = "SELECT \(Self.fileColumns) FROM files WHERE owner = $1"
        if let purpose {
            binds.append(purpose.rawValue)
            sql += " AND purpose = $\(binds.count)"
        }
        sql += Self.cursor(page, table: "files", key: "id", storeBind: nil, binds: &binds) + Self.order(page, key: "id")
        var out: [StoredFile] = []
        for try await row in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger).decode(FileRow.self) {
            out.append(Self.file(row))
        }
        return out
    }

    public func fileContent(id: String) async throws -> [UInt8]? {
        for try await buffer in try await client.query("SELECT content FROM files WHERE id = \(id)", logger: logger).decode(ByteBuffer.self) {
            return Array(buffer.readableBytesView)
        }
        return nil
    }

    public func deleteFile(id: String) async throws -> [String]? {
        try await client.withTransaction(logger: logger) { conn in
            var stores: [String] = []
            for try await store in try await conn.query("SELECT store_id FROM vector_store_files WHERE file_id = \(id)", logger: logger).decode(String.self) {
                stores.append(store)
            }
            try await conn.query(
                "UPDATE vector_stores SET generation = generation + 1 WHERE id IN (SELECT store_id FROM vector_store_files WHERE file_id = \(id))",
                logger: logger)
            try await conn.query("DELETE FROM chunks WHERE file_id = \(id)", logger: logger)
            try await conn.query("DELETE FROM vector_store_files WHERE file_id = \(id)", logger: logger)
            var deleted = false
            for try await _ in try await conn.query("DELETE FROM files WHERE id = \(id) RETURNING id", logger: logger).decode(String.self) { deleted = true }
            return deleted ? stores : nil
        }
    }

    // MARK: Vector stores

    private typealias StoreRow = (String, String, String?, Double, Double, String, Int?, String, String)
    private static let storeColumns = "id, owner, name, created_at, last_active_at, metadata, expires_after_days, embedding_model, chunking"

    private static func store(_ r: StoreRow) -> VectorStore {
        VectorStore(
            id: r.0, owner: r.1, name: r.2, createdAt: r.3, lastActiveAt: r.4, metadata: (try? StoredJSON.value([String: String].self, r.5)) ?? [:],
            expiresAfterDays: r.6, embeddingModel: r.7, chunking: RetrievalCoding.chunking(r.8))
    }

    public func createVectorStore(_ store: VectorStore) async throws {
        let metadata = try StoredJSON.text(store.metadata)
        let chunking = RetrievalCoding.text(store.chunking)
        try await client.query(
            """
            INSERT INTO vector_stores (\(unescaped: Self.storeColumns)) VALUES (\(store.id), \(store.owner), \(store.name), \(store.createdAt),
                \(store.lastActiveAt), \(metadata), \(store.expiresAfterDays), \(store.embeddingModel), \(chunking))
            """, logger: logger)
    }

    public func vectorStore(id: String) async throws -> VectorStore? {
        let rows = try await client.query("SELECT \(unescaped: Self.storeColumns) FROM vector_stores WHERE id = \(id)", logger: logger)
        for try await row in rows.decode(StoreRow.self) { return Self.store(row) }
        return nil
    }

    public func vectorStores(owner: String, page: ListPage) async throws -> [VectorStore] {
        var binds = PostgresBindings()
        binds.append(owner)
        let sql =
            "SELECT \(Self.storeColumns) FROM vector_stores WHERE owner = $1"
            + Self.cursor(page, table: "vector_stores", key: "id", storeBind: nil, binds: &binds) + Self.order(page, key: "id")
        var out: [VectorStore] = []
        for try await row in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger).decode(StoreRow.self) {
            out.append(Self.store(row))
        }
        return out
    }

    public func updateVectorStore(_ store: VectorStore) async throws {
        let metadata = try StoredJSON.text(store.metadata)
        try await client.query(
            """
            UPDATE vector_stores SET name = \(store.name), last_active_at = \(store.lastActiveAt), metadata = \(metadata),
                expires_after_days = \(store.expiresAfterDays) WHERE id = \(store.id)
            """, logger: logger)
    }

    public func deleteVectorStore(id: String) async throws -> Bool {
        try await client.withTransaction(logger: logger) { conn in
            try await conn.query("DELETE FROM chunks WHERE store_id = \(id)", logger: logger)
            try await conn.query("DELETE FROM vector_store_files WHERE store_id = \(id)", logger: logger)
            var deleted = false
            for try await _ in try await conn.query("DELETE FROM vector_stores WHERE id = \(id) RETURNING id", logger: logger).decode(String.self) {
                deleted = true
            }
            return deleted
        }
    }

    public func vectorStoreIDs() async throws -> [String] {
        var out: [String] = []
        for try await id in try await client.query("SELECT id FROM vector_stores ORDER BY last_active_at DESC", logger: logger).decode(String.self) {
            out.append(id)
        }
        return out
    }

    public func expiredVectorStores(now: Double) async throws -> [String] {
        var out: [String] = []
        let rows = try await client.query(
            "SELECT id FROM vector_stores WHERE expires_after_days IS NOT NULL AND last_active_at + expires_after_days * 86400 < \(now)", logger: logger)
        for try await id in rows.decode(String.self) { out.append(id) }
        return out
    }

    // MARK: Files in stores

    private typealias EntryRow = (String, String, String, String?, String?, String, String, Int, Double, String?)
    private static let entryColumns = "store_id, file_id, status, error_code, error_message, attributes, chunking, usage_bytes, created_at, batch_id"

    private static func entry(_ r: EntryRow) -> VectorStoreFile {
        VectorStoreFile(
            storeID: r.0, fileID: r.1, status: VectorStoreFile.Status(rawValue: r.2) ?? .failed, errorCode: r.3, errorMessage: r.4,
            attributes: (try? StoredJSON.value([String: JSONValue].self, r.5)) ?? [:], chunking: RetrievalCoding.chunking(r.6), usageBytes: r.7,
            createdAt: r.8, batchID: r.9)
    }

    public func addFile(_ entry: VectorStoreFile) async throws {
        let attributes = try StoredJSON.text(entry.attributes)
        let chunking = RetrievalCoding.text(entry.chunking)
        try await client.withTransaction(logger: logger) { conn in
            try await conn.query("DELETE FROM chunks WHERE store_id = \(entry.storeID) AND file_id = \(entry.fileID)", logger: logger)
            try await conn.query("UPDATE vector_stores SET generation = generation + 1 WHERE id = \(entry.storeID)", logger: logger)
            try await conn.query(
                """
                INSERT INTO vector_store_files (\(unescaped: Self.entryColumns)) VALUES (\(entry.storeID), \(entry.fileID), \(entry.status.rawValue),
                    \(entry.errorCode), \(entry.errorMessage), \(attributes), \(chunking), \(entry.usageBytes), \(entry.createdAt), \(entry.batchID))
                ON CONFLICT (store_id, file_id) DO UPDATE SET status = EXCLUDED.status, error_code = EXCLUDED.error_code,
                    error_message = EXCLUDED.error_message, attributes = EXCLUDED.attributes, chunking = EXCLUDED.chunking,
                    usage_bytes = EXCLUDED.usage_bytes, created_at = EXCLUDED.created_at, batch_id = EXCLUDED.batch_id
                """, logger: logger)
        }
    }

    public func storeFile(storeID: String, fileID: String) async throws -> VectorStoreFile? {
        let rows = try await client.query(
            "SELECT \(unescaped: Self.entryColumns) FROM vector_store_files WHERE store_id = \(storeID) AND file_id = \(fileID)", logger: logger)
        for try await row in rows.decode(EntryRow.self) { return Self.entry(row) }
        return nil
    }

    public func storeFiles(storeID: String, batchID: String?, status: VectorStoreFile.Status?, page: ListPage) async throws -> [VectorStoreFile] {
        var binds = PostgresBindings()
        binds.append(storeID)
        var sql = "SELECT \(Self.entryColumns) FROM vector_store_files WHERE store_id = $1"
        if let batchID {
            binds.append(batchID)
            sql += " AND batch_id = $\(binds.count)"
        }
        if let status {
            binds.append(status.rawValue)
            sql += " AND status = $\(binds.count)"
        }
        sql += Self.cursor(page, table: "vector_store_files", key: "file_id", storeBind: 1, binds: &binds) + Self.order(page, key: "file_id")
        var out: [VectorStoreFile] = []
        for try await row in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger).decode(EntryRow.self) {
            out.append(Self.entry(row))
        }
        return out
    }

    public func updateAttributes(storeID: String, fileID: String, _ attributes: [String: JSONValue]) async throws {
        let text = try StoredJSON.text(attributes)
        try await client.query(
            "UPDATE vector_store_files SET attributes = \(text) WHERE store_id = \(storeID) AND file_id = \(fileID)", logger: logger)
    }

    public func removeFile(storeID: String, fileID: String) async throws -> Bool {
        try await client.withTransaction(logger: logger) { conn in
            try await conn.query("DELETE FROM chunks WHERE store_id = \(storeID) AND file_id = \(fileID)", logger: logger)
            try await conn.query("UPDATE vector_stores SET generation = generation + 1 WHERE id = \(storeID)", logger: logger)
            var removed = false
            for try await _ in try await conn.query(
                "DELETE FROM vector_store_files WHERE store_id = \(storeID) AND file_id = \(fileID) RETURNING file_id", logger: logger
            ).decode(String.self) {
                removed = true
            }
            return removed
        }
    }

    public func fileCounts(storeID: String, batchID: String?) async throws -> FileCounts {
        var counts = FileCounts()
        let rows =
            if let batchID {
                try await client.query(
                    "SELECT status, COUNT(*)::BIGINT, COALESCE(SUM(usage_bytes), 0)::BIGINT FROM vector_store_files WHERE store_id = \(storeID) AND batch_id = \(batchID) GROUP BY status",
                    logger: logger)
            } else {
                try await client.query(
                    "SELECT status, COUNT(*)::BIGINT, COALESCE(SUM(usage_bytes), 0)::BIGINT FROM vector_store_files WHERE store_id = \(storeID) GROUP BY status", logger: logger)
            }
        for try await (status, n, bytes) in rows.decode((String, Int, Int).self) {
            RetrievalCoding.count(&counts, status: status, n)
            counts.usageBytes += bytes
        }
        return counts
    }

    public func pendingFiles() async throws -> [VectorStoreFile] {
        var out: [VectorStoreFile] = []
        let rows = try await client.query(
            "SELECT \(unescaped: Self.entryColumns) FROM vector_store_files WHERE status = 'in_progress' ORDER BY created_at", logger: logger)
        for try await row in rows.decode(EntryRow.self) { out.append(Self.entry(row)) }
        return out
    }

    public func completeFile(storeID: String, fileID: String, chunks: [StoredChunk], usageBytes: Int) async throws -> Bool {
        try await client.withTransaction(logger: logger) { conn in
            var status: String?
            for try await s in try await conn.query(
                "SELECT status FROM vector_store_files WHERE store_id = \(storeID) AND file_id = \(fileID) FOR UPDATE", logger: logger
            ).decode(String.self) {
                status = s
            }
            guard status == VectorStoreFile.Status.inProgress.rawValue else { return false }
            try await conn.query("DELETE FROM chunks WHERE store_id = \(storeID) AND file_id = \(fileID)", logger: logger)
            // Multi-row inserts, 200 chunks a statement (8 binds each, well under the 65,535 limit).
            for start in stride(from: 0, to: chunks.count, by: 200) {
                var binds = PostgresBindings()
                var values: [String] = []
                for chunk in chunks[start..<min(start + 200, chunks.count)] {
                    let base = binds.count
                    binds.append(storeID)
                    binds.append(fileID)
                    binds.append(chunk.position)
                    binds.append(chunk.heading)
                    binds.append(chunk.page)
                    binds.append(chunk.text)
                    binds.append(ByteBuffer(bytes: RetrievalCoding.bytes(chunk.vector)))
                    values.append("(" + (1...7).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
                }
                try await conn.query(
                    PostgresQuery(
                        unsafeSQL: "INSERT INTO chunks (store_id, file_id, position, heading, page, text, vector) VALUES " + values.joined(separator: ", "),
                        binds: binds), logger: logger)
            }
            try await conn.query("UPDATE vector_stores SET generation = generation + 1 WHERE id = \(storeID)", logger: logger)
            try await conn.query(
                """
                UPDATE vector_store_files SET status = 'completed', usage_bytes = \(usageBytes), error_code = NULL, error_message = NULL
                WHERE store_id = \(storeID) AND file_id = \(fileID)
                """, logger: logger)
            return true
        }
    }

    public func finishFile(storeID: String, fileID: String, status: VectorStoreFile.Status, code: String?, message: String?) async throws {
        try await client.query(
            """
            UPDATE vector_store_files SET status = \(status.rawValue), error_code = \(code), error_message = \(message)
            WHERE store_id = \(storeID) AND file_id = \(fileID) AND status = 'in_progress'
            """, logger: logger)
    }

    // MARK: Chunks

    public func chunks(storeID: String, after: Int64, limit: Int) async throws -> [StoredChunk] {
        var out: [StoredChunk] = []
        let rows = try await client.query(
            "SELECT seq, file_id, position, heading, page, vector FROM chunks WHERE store_id = \(storeID) AND seq > \(after) ORDER BY seq LIMIT \(limit)",
            logger: logger)
        for try await (seq, file, position, heading, page, vector) in rows.decode((Int64, String, Int, String, Int?, ByteBuffer).self) {
            out.append(
                StoredChunk(
                    seq: seq, storeID: storeID, fileID: file, position: position, heading: heading, page: page, text: "",
                    vector: RetrievalCoding.vector(Array(vector.readableBytesView))))
        }
        return out
    }

    public func chunkSeqs(storeID: String) async throws -> [Int64] {
        var out: [Int64] = []
        for try await seq in try await client.query("SELECT seq FROM chunks WHERE store_id = \(storeID) ORDER BY seq", logger: logger).decode(Int64.self) {
            out.append(seq)
        }
        return out
    }

    public func chunkVersion(storeID: String) async throws -> (count: Int, maxSeq: Int64) {
        let rows = try await client.query("SELECT COUNT(*)::BIGINT, COALESCE(MAX(seq), 0)::BIGINT FROM chunks WHERE store_id = \(storeID)", logger: logger)
        for try await (count, maxSeq) in rows.decode((Int, Int64).self) { return (count, maxSeq) }
        return (0, 0)
    }

    public func generation(storeID: String) async throws -> Int64 {
        for try await g in try await client.query("SELECT generation FROM vector_stores WHERE id = \(storeID)", logger: logger).decode(Int64.self) {
            return g
        }
        return 0
    }

    public func chunks(seqs: [Int64], vectors: Bool) async throws -> [StoredChunk] {
        guard !seqs.isEmpty else { return [] }
        var out: [StoredChunk] = []
        if vectors {
            let rows = try await client.query(
                "SELECT seq, store_id, file_id, position, heading, page, vector FROM chunks WHERE seq = ANY(\(seqs))", logger: logger)
            for try await (seq, store, file, position, heading, page, vector) in rows.decode((Int64, String, String, Int, String, Int?, ByteBuffer).self) {
                out.append(
                    StoredChunk(
                        seq: seq, storeID: store, fileID: file, position: position, heading: heading, page: page, text: "",
                        vector: RetrievalCoding.vector(Array(vector.readableBytesView))))
            }
            return out
        }
        let rows = try await client.query(
            """
            SELECT c.seq, c.store_id, c.file_id, c.position, c.heading, c.page, c.text, f.filename, e.attributes
            FROM chunks c LEFT JOIN files f ON f.id = c.file_id
            LEFT JOIN vector_store_files e ON e.store_id = c.store_id AND e.file_id = c.file_id
            WHERE c.seq = ANY(\(seqs))
            """, logger: logger)
        for try await (seq, store, file, position, heading, page, text, filename, attributes) in rows.decode(
            (Int64, String, String, Int, String, Int?, String, String?, String?).self)
        {
            var chunk = StoredChunk(seq: seq, storeID: store, fileID: file, position: position, heading: heading, page: page, text: text, vector: [])
            chunk.filename = filename
            chunk.attributes = attributes.flatMap { try? StoredJSON.value([String: JSONValue].self, $0) }
            out.append(chunk)
        }
        return out
    }

    public func keywordSearch(storeID: String, terms: [String], limit: Int) async throws -> [(seq: Int64, score: Double)] {
        // Terms are letters and digits only (the caller's tokeniser), so the tsquery cannot be malformed.
        let words = terms.filter { !$0.isEmpty && $0.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) } }
        guard !words.isEmpty else { return [] }
        let query = words.joined(separator: " | ")
        var out: [(seq: Int64, score: Double)] = []
        let rows = try await client.query(
            """
            SELECT seq, ts_rank(tsv, q, 1)::DOUBLE PRECISION AS score FROM chunks, to_tsquery('english', \(query)) q
            WHERE store_id = \(storeID) AND tsv @@ q ORDER BY score DESC LIMIT \(limit)
            """, logger: logger)
        for try await (seq, score) in rows.decode((Int64, Double).self) { out.append((seq, score)) }
        return out
    }
}
