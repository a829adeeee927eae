import Foundation
import GRDB
import SluiceCore
import Synchronization

/// Files, vector stores and chunks in the embedded SQLite database. Chunk text is indexed by an
/// FTS5 table (Porter stemming) kept in step by triggers; its `bm25()` ranks keyword search.
public final class SQLiteRetrievalStore: RetrievalStore {
    let writer: any DatabaseWriter

    public init(database: SQLiteDatabase) { self.writer = database.writer }

    static let migration = """
        CREATE TABLE files (
            id TEXT PRIMARY KEY, owner TEXT NOT NULL, filename TEXT NOT NULL, purpose TEXT NOT NULL, bytes INTEGER NOT NULL,
            created_at REAL NOT NULL, content BLOB NOT NULL);
        CREATE INDEX files_owner ON files(owner, created_at);
        CREATE TABLE vector_stores (
            id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT, created_at REAL NOT NULL, last_active_at REAL NOT NULL,
            metadata TEXT NOT NULL, expires_after_days INTEGER, embedding_model TEXT NOT NULL, chunking TEXT NOT NULL,
            generation INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX vector_stores_owner ON vector_stores(owner, created_at);
        CREATE TABLE vector_store_files (
            store_id TEXT NOT NULL, file_id TEXT NOT NULL, status TEXT NOT NULL, error_code TEXT, error_message TEXT,
            attributes TEXT NOT NULL, chunking TEXT NOT NULL, usage_bytes INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
            batch_id TEXT, PRIMARY KEY (store_id, file_id));
        CREATE INDEX vector_store_files_file ON vector_store_files(file_id);
        CREATE INDEX vector_store_files_batch ON vector_store_files(batch_id) WHERE batch_id IS NOT NULL;
        CREATE INDEX vector_store_files_pending ON vector_store_files(status) WHERE status = 'in_progress';
        CREATE TABLE chunks (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, store_id TEXT NOT NULL, file_id TEXT NOT NULL, position INTEGER NOT NULL,
            heading TEXT NOT NULL, page INTEGER, text TEXT NOT NULL, vector BLOB NOT NULL);
        CREATE INDEX chunks_store ON chunks(store_id, seq);
        CREATE INDEX chunks_file ON chunks(store_id, file_id);
        CREATE INDEX chunks_by_file ON chunks(file_id);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(heading, text, content='chunks', content_rowid='seq', tokenize='porter unicode61');
        CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, heading, text) VALUES (new.seq, new.heading, new.text);
        END;
        CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, heading, text) VALUES ('delete', old.seq, old.heading, old.text);
        END;
        """

    // MARK: Files

    public func insertFile(_ file: StoredFile, content: [UInt8]) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT INTO files (id, owner, filename, purpose, bytes, created_at, content) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [file.id, file.owner, file.filename, file.purpose.rawValue, file.bytes, file.createdAt, Data(content)])
        }
    }

    public func file(id: String) async throws -> StoredFile? {
        try await writer.read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.fileColumns) FROM files WHERE id = ?", arguments: [id]).map(Self.file)
        }
    }

    static let fileColumns = "id, owner, filename, purpose, bytes, created_at"

    static func file(_ row: Row) -> StoredFile {
        StoredFile(
            id: row[0], owner: row[1], filename: row[2], purpose: StoredFile.Purpose(rawValue: row[3]) ?? .userData, bytes: row[4],
            createdAt: row[5])
    }

    public func files(owner: String, purpose: StoredFile.Purpose?, page: ListPage) async throws -> [StoredFile] {
        try await writer.read { db in
            var sql = "SELECT \(Self.fileColumns) FROM files WHERE owner = ?"
            var arguments: StatementArguments = [owner]
            if let purpose {
                sql += " AND purpose = ?"
                arguments += [purpose.rawValue]
            }
            let (cursor, cursorArguments) = Self.cursor(page, table: "files", key: "id")
            sql += cursor + " ORDER BY created_at \(page.ascending ? "ASC" : "DESC"), id \(page.ascending ? "ASC" : "DESC") LIMIT ?"
            arguments += cursorArguments
            arguments += [page.limit + 1]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.file)
        }
    }

    /// `after` / `before` as a condition on (created_at, id) of the named row, in list order.
    static func cursor(_ page: ListPage, table: String, key: String, storeID: String? = nil) -> (String, StatementArguments) {
        var sql = ""
        var arguments: StatementArguments = []
        for (id, forward) in [(page.after, true), (page.before, false)] {
            guard let id else { continue }
            let greater = forward == page.ascending
            let op = greater ? ">" : "<"
            sql +=
                " AND (created_at, \(key)) \(op) (SELECT created_at, \(key) FROM \(table) WHERE \(key) = ?\(storeID == nil ? "" : " AND store_id = ?"))"
            arguments += [id]
            if let storeID { arguments += [storeID] }
        }
        return (sql, arguments)
    }

    public func fileContent(id: String) async throws -> [UInt8]? {
        try await writer.read { db in
            try Data.fetchOne(db, sql: "SELECT content FROM files WHERE id = ?", arguments: [id]).map { [UInt8]($0) }
        }
    }

    public func deleteFile(id: String) async throws -> [String]? {
        try await writer.write { db in
            let stores = try String.fetchAll(db, sql: "SELECT store_id FROM vector_store_files WHERE file_id = ?", arguments: [id])
            for store in stores { try db.execute(sql: "UPDATE vector_stores SET generation = generation + 1 WHERE id = ?", arguments: [store]) }
            try db.execute(sql: "DELETE FROM chunks WHERE file_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM vector_store_files WHERE file_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM files WHERE id = ?", arguments: [id])
            return db.changesCount > 0 ? stores : nil
        }
    }

    // MARK: Vector stores

    static let storeColumns = "id, owner, name, created_at, last_active_at, metadata, expires_after_days, embedding_model, chunking"

    static func store(_ row: Row) -> VectorStore {
        VectorStore(
            id: row[0], owner: row[1], name: row[2], createdAt: row[3], lastActiveAt: row[4],
            metadata: (try? StoredJSON.value([String: String].self, row[5])) ?? [:], expiresAfterDays: row[6], embeddingModel: row[7],
            chunking: RetrievalCoding.chunking(row[8]))
    }

    public func createVectorStore(_ store: VectorStore) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT INTO vector_stores (\(Self.storeColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    store.id, store.owner, store.name, store.createdAt, store.lastActiveAt, try StoredJSON.text(store.metadata),
                    store.expiresAfterDays, store.embeddingModel, RetrievalCoding.text(store.chunking),
                ])
        }
    }

    public func vectorStore(id: String) async throws -> VectorStore? {
        try await writer.read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.storeColumns) FROM vector_stores WHERE id = ?", arguments: [id]).map(Self.store)
        }
    }

    public func vectorStores(owner: String, page: ListPage) async throws -> [VectorStore] {
        try await writer.read { db in
            let (cursor, cursorArguments) = Self.cursor(page, table: "vector_stores", key: "id")
            var arguments: StatementArguments = [owner]
            arguments += cursorArguments
            arguments += [page.limit + 1]
            return try Row.fetchAll(
                db,
                sql: "SELECT \(Self.storeColumns) FROM vector_stores WHERE owner = ?\(cursor) ORDER BY created_at \(page.ascending ? "ASC" : "DESC"), id \(page.ascending ? "ASC" : "DESC") LIMIT ?",
                arguments: arguments
            ).map(Self.store)
        }
    }

    public func updateVectorStore(_ store: VectorStore) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE vector_stores SET name = ?, last_active_at = ?, metadata = ?, expires_after_days = ? WHERE id = ?",
                arguments: [store.name, store.lastActiveAt, try StoredJSON.text(store.metadata), store.expiresAfterDays, store.id])
        }
    }

    public func deleteVectorStore(id: String) async throws -> Bool {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM chunks WHERE store_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM vector_store_files WHERE store_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM vector_stores WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    public func vectorStoreIDs() async throws -> [String] {
        try await writer.read { db in try String.fetchAll(db, sql: "SELECT id FROM vector_stores ORDER BY last_active_at DESC") }
    }

    public func expiredVectorStores(now: Double) async throws -> [String] {
        try await writer.read { db in
            try String.fetchAll(
                db, sql: "SELECT id FROM vector_stores WHERE expires_after_days IS NOT NULL AND last_active_at + expires_after_days * 86400 < ?",
                arguments: [now])
        }
    }

    // MARK: Files in stores

    static let entryColumns = "store_id, file_id, status, error_code, error_message, attributes, chunking, usage_bytes, created_at, batch_id"

    static func entry(_ row: Row) -> VectorStoreFile {
        VectorStoreFile(
            storeID: row[0], fileID: row[1], status: VectorStoreFile.Status(rawValue: row[2]) ?? .failed, errorCode: row[3], errorMessage: row[4],
            attributes: (try? StoredJSON.value([String: JSONValue].self, row[5])) ?? [:], chunking: RetrievalCoding.chunking(row[6]),
            usageBytes: row[7], createdAt: row[8], batchID: row[9])
    }

    public func addFile(_ entry: VectorStoreFile) async throws {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM chunks WHERE store_id = ? AND file_id = ?", arguments: [entry.storeID, entry.fileID])
            if db.changesCount > 0 { try db.execute(sql: "UPDATE vector_stores SET generation = generation + 1 WHERE id = ?", arguments: [entry.storeID]) }
            try db.execute(
                sql: "INSERT OR REPLACE INTO vector_store_files (\(Self.entryColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    entry.storeID, entry.fileID, entry.status.rawValue, entry.errorCode, entry.errorMessage, try StoredJSON.text(entry.attributes),
                    RetrievalCoding.text(entry.chunking), entry.usageBytes, entry.createdAt, entry.batchID,
                ])
        }
    }

    public func storeFile(storeID: String, fileID: String) async throws -> VectorStoreFile? {
        try await writer.read { db in
            try Row.fetchOne(
                db, sql: "SELECT \(Self.entryColumns) FROM vector_store_files WHERE store_id = ? AND file_id = ?", arguments: [storeID, fileID]
            ).map(Self.entry)
        }
    }

    public func storeFiles(storeID: String, batchID: String?, status: VectorStoreFile.Status?, page: ListPage) async throws -> [VectorStoreFile] {
        try await writer.read { db in
            var sql = "SELECT \(Self.entryColumns) FROM vector_store_files WHERE store_id = ?"
            var arguments: StatementArguments = [storeID]
            if let batchID {
                sql += " AND batch_id = ?"
                arguments += [batchID]
            }
            if let status {
                sql += " AND status = ?"
                arguments += [status.rawValue]
            }
            let (cursor, cursorArguments) = Self.cursor(page, table: "vector_store_files", key: "file_id", storeID: storeID)
            sql += cursor + " ORDER BY created_at \(page.ascending ? "ASC" : "DESC"), file_id \(page.ascending ? "ASC" : "DESC") LIMIT ?"
            arguments += cursorArguments
            arguments += [page.limit + 1]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.entry)
        }
    }

    public func updateAttributes(storeID: String, fileID: String, _ attributes: [String: JSONValue]) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE vector_store_files SET attributes = ? WHERE store_id = ? AND file_id = ?",
                arguments: [try StoredJSON.text(attributes), storeID, fileID])
        }
    }

    public func removeFile(storeID: String, fileID: String) async throws -> Bool {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM chunks WHERE store_id = ? AND file_id = ?", arguments: [storeID, fileID])
            try db.execute(sql: "UPDATE vector_stores SET generation = generation + 1 WHERE id = ?", arguments: [storeID])
            try db.execute(sql: "DELETE FROM vector_store_files WHERE store_id = ? AND file_id = ?", arguments: [storeID, fileID])
            return db.changesCount > 0
        }
    }

    public func fileCounts(storeID: String, batchID: String?) async throws -> FileCounts {
        try await writer.read { db in
            var sql = "SELECT status, COUNT(*), COALESCE(SUM(usage_bytes), 0) FROM vector_store_files WHERE store_id = ?"
            var arguments: StatementArguments = [storeID]
            if let batchID {
                sql += " AND batch_id = ?"
                arguments += [batchID]
            }
            var counts = FileCounts()
            for row in try Row.fetchAll(db, sql: sql + " GROUP BY status", arguments: arguments) {
                RetrievalCoding.count(&counts, status: row[0], row[1])
                counts.usageBytes += row[2] as Int
            }
            return counts
        }
    }

    public func pendingFiles() async throws -> [VectorStoreFile] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT \(Self.entryColumns) FROM vector_store_files WHERE status = 'in_progress' ORDER BY created_at").map(
                Self.entry)
        }
    }

    public func completeFile(storeID: String, fileID: String, chunks: [StoredChunk], usageBytes: Int) async throws -> Bool {
        try await writer.write { db in
            guard
                try String.fetchOne(
                    db, sql: "SELECT status FROM vector_store_files WHERE store_id = ? AND file_id = ?", arguments: [storeID, fileID])
                    == VectorStoreFile.Status.inProgress.rawValue
            else { return false }
            try db.execute(sql: "DELETE FROM chunks WHERE store_id = ? AND file_id = ?", arguments: [storeID, fileID])
            let statement = try db.makeStatement(
                sql: "INSERT INTO chunks (store_id, file_id, position, heading, page, text, vector) VALUES (?, ?, ?, ?, ?, ?, ?)")
            for chunk in chunks {
                try statement.execute(arguments: [
                    storeID, fileID, chunk.position, chunk.heading, chunk.page, chunk.text, RetrievalCoding.data(chunk.vector),
                ])
            }
            try db.execute(sql: "UPDATE vector_stores SET generation = generation + 1 WHERE id = ?", arguments: [storeID])
            try db.execute(
                sql: "UPDATE vector_store_files SET status = 'completed', usage_bytes = ?, error_code = NULL, error_message = NULL WHERE store_id = ? AND file_id = ?",
                arguments: [usageBytes, storeID, fileID])
            return true
        }
    }

    public func finishFile(storeID: String, fileID: String, status: VectorStoreFile.Status, code: String?, message: String?) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE vector_store_files SET status = ?, error_code = ?, error_message = ? WHERE store_id = ? AND file_id = ? AND status = 'in_progress'",
                arguments: [status.rawValue, code, message, storeID, fileID])
        }
    }

    // MARK: Chunks

    public func chunks(storeID: String, after: Int64, limit: Int) async throws -> [StoredChunk] {
        try await writer.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT seq, file_id, position, heading, page, vector FROM chunks WHERE store_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [storeID, after, limit]
            ).map { row in
                StoredChunk(
                    seq: row[0], storeID: storeID, fileID: row[1], position: row[2], heading: row[3], page: row[4], text: "",
                    vector: RetrievalCoding.vector(row[5]))
            }
        }
    }

    public func chunkSeqs(storeID: String) async throws -> [Int64] {
        try await writer.read { db in try Int64.fetchAll(db, sql: "SELECT seq FROM chunks WHERE store_id = ? ORDER BY seq", arguments: [storeID]) }
    }

    public func chunkVersion(storeID: String) async throws -> (count: Int, maxSeq: Int64) {
        try await writer.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM chunks WHERE store_id = ?", arguments: [storeID])
            return (row?[0] ?? 0, row?[1] ?? 0)
        }
    }

    public func generation(storeID: String) async throws -> Int64 {
        try await writer.read { db in try Int64.fetchOne(db, sql: "SELECT generation FROM vector_stores WHERE id = ?", arguments: [storeID]) ?? 0 }
    }

    public func chunks(seqs: [Int64], vectors: Bool) async throws -> [StoredChunk] {
        guard !seqs.isEmpty else { return [] }
        return try await writer.read { db in
            var out: [StoredChunk] = []
            // SQLite binds at most 32,766 parameters per statement.
            for start in stride(from: 0, to: seqs.count, by: 10_000) {
                let part = Array(seqs[start..<min(start + 10_000, seqs.count)])
                let marks = Array(repeating: "?", count: part.count).joined(separator: ",")
                if vectors {
                    out += try Row.fetchAll(
                        db, sql: "SELECT seq, store_id, file_id, position, heading, page, vector FROM chunks WHERE seq IN (\(marks))",
                        arguments: StatementArguments(part)
                    ).map { row in
                        StoredChunk(
                            seq: row[0], storeID: row[1], fileID: row[2], position: row[3], heading: row[4], page: row[5], text: "",
                            vector: RetrievalCoding.vector(row[6] as Data))
                    }
                } else {
                    out += try Row.fetchAll(
                        db,
                        sql: """
                            SELECT c.seq, c.store_id, c.file_id, c.position, c.heading, c.page, c.text, f.filename, e.attributes
                            FROM chunks c LEFT JOIN files f ON f.id = c.file_id
                            LEFT JOIN vector_store_files e ON e.store_id = c.store_id AND e.file_id = c.file_id
                            WHERE c.seq IN (\(marks))
                            """,
                        arguments: StatementArguments(part)
                    ).map { row in
                        var chunk = StoredChunk(
                            seq: row[0], storeID: row[1], fileID: row[2], position: row[3], heading: row[4], page: row[5], text: row[6], vector: [])
                        chunk.filename = row[7]
                        chunk.attributes = (row[8] as String?).flatMap { try? StoredJSON.value([String: JSONValue].self, $0) }
                        return chunk
                    }
                }
            }
            return out
        }
    }

    public func keywordSearch(storeID: String, terms: [String], limit: Int) async throws -> [(seq: Int64, score: Double)] {
        guard !terms.isEmpty else { return [] }
        let quoted = terms.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        return try await writer.read { db in
            // BM25 ranks every match; a term in most chunks (IDF near 0) barely moves the ranking
            // but makes the match set the whole table. Such terms are left out of the query
            // (the rarest term is always kept). Document frequencies are cached until the table has
            // grown or shrunk by a tenth.
            let total = max(1, try Int.fetchOne(db, sql: "SELECT MAX(seq) FROM chunks") ?? 1)
            self.frequencies.withLock { cache in
                if abs(total - cache.total) * 10 > cache.total {
                    cache.counts.removeAll()
                    cache.total = total
                }
            }
            var frequencies: [(String, Int)] = []
            for term in quoted {
                if let known = self.frequencies.withLock({ $0.counts[term] }) {
                    frequencies.append((term, known))
                    continue
                }
                // Counted only up to the cut-off: past it the exact number does not matter.
                let count =
                    try Int.fetchOne(
                        db, sql: "SELECT COUNT(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)",
                        arguments: [term, Int(Double(total) * Self.commonShare) + 1]) ?? 0
                self.frequencies.withLock { cache in
                    if cache.counts.count > 50_000 { cache.counts.removeAll() }
                    cache.counts[term] = count
                }
                frequencies.append((term, count))
            }
            let present = frequencies.filter { $0.1 > 0 }.sorted { $0.1 < $1.1 }
            guard let rarest = present.first else { return [] }
            let informative = present.filter { Double($0.1) <= Double(total) * Self.commonShare }
            let match = (informative.isEmpty ? [rarest] : informative).map(\.0).joined(separator: " OR ")
            // FTS5 ranks on its own fastest (`ORDER BY rank`); joining every match to its chunk
            // to check the store first is several times slower. So: the best matches of every
            // store, then this store's among them; only when other stores crowd this one out is
            // the joined query run.
            let depth = limit * 4
            let best = try Row.fetchAll(
                db, sql: "SELECT rowid, -rank FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?", arguments: [match, depth]
            ).map { (seq: $0[0] as Int64, score: $0[1] as Double) }
            if !best.isEmpty {
                let marks = Array(repeating: "?", count: best.count).joined(separator: ",")
                var arguments: StatementArguments = [storeID]
                arguments += StatementArguments(best.map(\.seq))
                let mine = Set(try Int64.fetchAll(db, sql: "SELECT seq FROM chunks WHERE store_id = ? AND seq IN (\(marks))", arguments: arguments))
                let kept = best.filter { mine.contains($0.seq) }
                if kept.count >= limit || best.count < depth { return Array(kept.prefix(limit)) }
            }
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT c.seq, -bm25(chunks_fts) AS score FROM chunks_fts JOIN chunks c ON c.seq = chunks_fts.rowid
                    WHERE chunks_fts MATCH ? AND c.store_id = ? ORDER BY score DESC LIMIT ?
                    """,
                arguments: [match, storeID, limit]
            ).map { (seq: $0[0], score: $0[1]) }
        }
    }

    /// A term in more than this share of all chunks is left out of keyword queries.
    static let commonShare = 0.2

    struct TermCounts {
        var counts: [String: Int] = [:]
        var total = 0
    }
    /// Document frequencies of query terms, and the table size they were counted at.
    let frequencies = Mutex(TermCounts())
}

/// How retrieval values are kept in either database.
enum RetrievalCoding {
    static func text(_ chunking: ChunkingStrategy) -> String {
        switch chunking {
        case .auto: return "auto"
        case .fixed(let size, let overlap): return "static:\(size):\(overlap)"
        }
    }

    static func chunking(_ text: String) -> ChunkingStrategy {
        let parts = text.split(separator: ":")
        if parts.count == 3, parts[0] == "static", let size = Int(parts[1]), let overlap = Int(parts[2]) {
            return .fixed(maxTokens: size, overlapTokens: overlap)
        }
        return .auto
    }

    /// Little-endian float32s.
    static func data(_ vector: [Float]) -> Data {
        vector.withUnsafeBufferPointer { Data(buffer: $0) }
    }

    static func bytes(_ vector: [Float]) -> [UInt8] {
        vector.withUnsafeBytes { Array($0) }
    }

    static func vector(_ data: Data) -> [Float] {
        var out = [Float](repeating: 0, count: data.count / 4)
        out.withUnsafeMutableBytes { dst in _ = data.copyBytes(to: dst) }
        return out
    }

    static func vector(_ bytes: [UInt8]) -> [Float] {
        let count = bytes.count / 4
        var out = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { src in out.withUnsafeMutableBytes { dst in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<(count * 4)])) } }
        return out
    }

    static func count(_ counts: inout FileCounts, status: String, _ n: Int) {
        switch VectorStoreFile.Status(rawValue: status) {
        case .inProgress: counts.inProgress += n
        case .completed: counts.completed += n
        case .failed: counts.failed += n
        case .cancelled: counts.cancelled += n
        case nil: break
        }
    }
}
