/// An uploaded file (`POST /v1/files`): its bytes live in the store, so every replica serves it.
public struct StoredFile: Sendable, Hashable {
    public enum Purpose: String, Sendable, CaseIterable {
        case assistants, batch
        case userData = "user_data"
        /// A batch's output or error file (written by Sluice, never uploaded).
        case batchOutput = "batch_output"
    }

    public var id: String
    /// The team (or key) that owns it; anyone else gets 404.
    public var owner: String
    public var filename: String
    public var purpose: Purpose
    public var bytes: Int
    public var createdAt: Double

    public init(id: String, owner: String, filename: String, purpose: Purpose, bytes: Int, createdAt: Double) {
        self.id = id
        self.owner = owner
        self.filename = filename
        self.purpose = purpose
        self.bytes = bytes
        self.createdAt = createdAt
    }
}

/// How a vector store's files are cut: OpenAI's `auto` (800 tokens with 400 overlap, within the
/// embedding model's window) or `static` sizes.
public enum ChunkingStrategy: Sendable, Hashable {
    case auto
    case fixed(maxTokens: Int, overlapTokens: Int)
}

/// A searchable collection of chunked, embedded files (`/v1/vector_stores`).
public struct VectorStore: Sendable, Hashable {
    public var id: String
    public var owner: String
    public var name: String?
    public var createdAt: Double
    public var lastActiveAt: Double
    public var metadata: [String: String]
    /// `expires_after: {anchor: last_active_at, days}`.
    public var expiresAfterDays: Int?
    /// The embedding model entry its chunks were embedded with (queries use the same).
    public var embeddingModel: String
    public var chunking: ChunkingStrategy

    public init(
        id: String, owner: String, name: String?, createdAt: Double, lastActiveAt: Double, metadata: [String: String], expiresAfterDays: Int?,
        embeddingModel: String, chunking: ChunkingStrategy
    ) {
        self.id = id
        self.owner = owner
        self.name = name
        self.createdAt = createdAt
        self.lastActiveAt = lastActiveAt
        self.metadata = metadata
        self.expiresAfterDays = expiresAfterDays
        self.embeddingModel = embeddingModel
        self.chunking = chunking
    }

    public var expiresAt: Double? { expiresAfterDays.map { lastActiveAt + Double($0) * 86_400 } }
}

/// A file's place in a vector store and how far its ingestion got.
public struct VectorStoreFile: Sendable, Hashable {
    public enum Status: String, Sendable, CaseIterable { case inProgress = "in_progress", completed, failed, cancelled }

    public var storeID: String
    public var fileID: String
    public var status: Status
    /// `last_error`: OpenAI's codes are `server_error`, `unsupported_file`, `invalid_file`.
    public var errorCode: String?
    public var errorMessage: String?
    public var attributes: [String: JSONValue]
    public var chunking: ChunkingStrategy
    /// Bytes of chunk text indexed.
    public var usageBytes: Int
    public var createdAt: Double
    /// The file batch that added it, if any.
    public var batchID: String?

    public init(
        storeID: String, fileID: String, status: Status, errorCode: String? = nil, errorMessage: String? = nil, attributes: [String: JSONValue],
        chunking: ChunkingStrategy, usageBytes: Int = 0, createdAt: Double, batchID: String? = nil
    ) {
        self.storeID = storeID
        self.fileID = fileID
        self.status = status
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.attributes = attributes
        self.chunking = chunking
        self.usageBytes = usageBytes
        self.createdAt = createdAt
        self.batchID = batchID
    }
}

/// Files in a store (or a batch) by status.
public struct FileCounts: Sendable, Hashable {
    public var inProgress = 0
    public var completed = 0
    public var failed = 0
    public var cancelled = 0
    /// Bytes of chunk text indexed from these files.
    public var usageBytes = 0
    public var total: Int { inProgress + completed + failed + cancelled }
    public init() {}
}

/// A chunk as stored: text, where it came from, and its embedding.
public struct StoredChunk: Sendable, Hashable {
    /// Store-wide sequence number, increasing as chunks are written (how replicas catch up).
    public var seq: Int64
    public var storeID: String
    public var fileID: String
    public var position: Int
    /// The heading path, " › "-joined.
    public var heading: String
    public var page: Int?
    public var text: String
    public var vector: [Float]
    /// Read with the text for search results: the file's name and its attributes in the store.
    public var filename: String?
    public var attributes: [String: JSONValue]?

    public init(seq: Int64 = 0, storeID: String, fileID: String, position: Int, heading: String, page: Int?, text: String, vector: [Float]) {
        self.seq = seq
        self.storeID = storeID
        self.fileID = fileID
        self.position = position
        self.heading = heading
        self.page = page
        self.text = text
        self.vector = vector
    }
}

/// A page of a list: OpenAI's cursor pagination (`after`, `before`, `limit`, `order`).
public struct ListPage: Sendable, Hashable {
    public var limit: Int
    public var after: String?
    public var before: String?
    public var ascending: Bool

    public init(limit: Int = 20, after: String? = nil, before: String? = nil, ascending: Bool = false) {
        self.limit = limit
        self.after = after
        self.before = before
        self.ascending = ascending
    }
}

/// Files, vector stores and their chunks (SQLite or PostgreSQL). Keyword search runs in the
/// database (SQLite FTS5's BM25, PostgreSQL's `tsvector`); vectors are read out for the index
/// each replica keeps in memory.
public protocol RetrievalStore: Sendable {
    func insertFile(_ file: StoredFile, content: [UInt8]) async throws
    func file(id: String) async throws -> StoredFile?
    /// The owner's files, newest first unless `page.ascending`; `limit + 1` rows so callers know whether more follow.
    func files(owner: String, purpose: StoredFile.Purpose?, page: ListPage) async throws -> [StoredFile]
    func fileContent(id: String) async throws -> [UInt8]?
    /// Deletes the file, its chunks in every store and its place in every store; answers the stores it was in.
    func deleteFile(id: String) async throws -> [String]?

    func createVectorStore(_ store: VectorStore) async throws
    func vectorStore(id: String) async throws -> VectorStore?
    func vectorStores(owner: String, page: ListPage) async throws -> [VectorStore]
    func updateVectorStore(_ store: VectorStore) async throws
    /// Deletes the store, its file entries and chunks; false when there was none.
    func deleteVectorStore(id: String) async throws -> Bool
    /// Every store's id, of every owner (indexes are built for them at start).
    func vectorStoreIDs() async throws -> [String]
    /// Stores whose `expires_after` has passed.
    func expiredVectorStores(now: Double) async throws -> [String]

    /// Adds a file to a store (or replaces its entry, dropping its chunks: it is indexed again).
    func addFile(_ entry: VectorStoreFile) async throws
    func storeFile(storeID: String, fileID: String) async throws -> VectorStoreFile?
    func storeFiles(storeID: String, batchID: String?, status: VectorStoreFile.Status?, page: ListPage) async throws -> [VectorStoreFile]
    func updateAttributes(storeID: String, fileID: String, _ attributes: [String: JSONValue]) async throws
    /// Removes a file from a store with its chunks; false when it was not there.
    func removeFile(storeID: String, fileID: String) async throws -> Bool
    func fileCounts(storeID: String, batchID: String?) async throws -> FileCounts
    /// Entries still `in_progress` (after a restart: the files to index again).
    func pendingFiles() async throws -> [VectorStoreFile]
    /// Writes a file's chunks and marks it completed, in one transaction, unless the entry has
    /// gone or was cancelled meanwhile (then nothing is written and the answer is false).
    func completeFile(storeID: String, fileID: String, chunks: [StoredChunk], usageBytes: Int) async throws -> Bool
    /// Marks a file failed or cancelled (only while in progress).
    func finishFile(storeID: String, fileID: String, status: VectorStoreFile.Status, code: String?, message: String?) async throws

    /// Chunks with `seq > after`, in seq order, at most `limit` (the index's catch-up).
    func chunks(storeID: String, after: Int64, limit: Int) async throws -> [StoredChunk]
    /// The seqs of the store's chunks now (to find removed ones).
    func chunkSeqs(storeID: String) async throws -> [Int64]
    /// How many chunks the store holds and the highest seq.
    func chunkVersion(storeID: String) async throws -> (count: Int, maxSeq: Int64)
    /// A number that changes whenever the store's chunks do (one key lookup: whether an index is current).
    func generation(storeID: String) async throws -> Int64
    /// Chunks by seq: with their text, file name and attributes (the search's results, one
    /// query for all), or with their vectors (the index's catch-up).
    func chunks(seqs: [Int64], vectors: Bool) async throws -> [StoredChunk]
    /// Keyword search over one store's chunks: seqs best first with their rank score (higher is better).
    func keywordSearch(storeID: String, terms: [String], limit: Int) async throws -> [(seq: Int64, score: Double)]
}

/// Who owns what a caller creates (conversations, files, vector stores): the caller's team, else
/// its key; "" when authentication is off. Anything owned by someone else is answered as absent.
public enum Ownership {
    public static func owner(_ principal: Principal?) -> String {
        guard let principal else { return "" }
        if let team = principal.team { return "team:\(team.id)" }
        return "key:\(principal.key.id)"
    }
}

/// A passage retrieved for a flow run: numbered as the prompt shows it (`[n]`), with where it came from.
public struct RetrievedPassage: Sendable, Hashable {
    public var n: Int
    public var fileID: String
    public var filename: String
    public var text: String
    public var score: Double
    /// The prompt-injection check flagged it (kept only under `flagged_passages: mark`).
    public var flagged: Bool

    public init(n: Int, fileID: String, filename: String, text: String, score: Double, flagged: Bool = false) {
        self.n = n
        self.fileID = fileID
        self.filename = filename
        self.text = text
        self.score = score
        self.flagged = flagged
    }
}

/// What a flow's `retrieval:` searches with (the retrieval target implements it over vector
/// stores). The flow's definition is the operator's: it may name any store.
public protocol PassageRetriever: Sendable {
    func passages(_ spec: FlowConfig.Retrieval, query: String) async throws -> [RetrievedPassage]
}

/// How a flow's answer measured against its passages.
public struct GroundingOutcome: Sendable, Hashable {
    public var score: Double
    public var unsupported: [String]
    /// The model was asked once more (`action: retry`).
    public var retried: Bool

    public init(score: Double, unsupported: [String], retried: Bool) {
        self.score = score
        self.unsupported = unsupported
        self.retried = retried
    }
}
