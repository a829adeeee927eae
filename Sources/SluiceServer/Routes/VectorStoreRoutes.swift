import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SluiceCore
import SluiceRetrieval

/// OpenAI's Vector Stores API on Sluice's own stores: stores, their files and file batches, and
/// search. Files are indexed in the background (`VectorStoreIngestion`); a store and its files
/// belong to the team (else the key) that made them, and anyone else gets 404.
struct VectorStoreRoutes: Sendable {
    let store: any RetrievalStore
    let search: VectorStoreSearch
    let ingestion: VectorStoreIngestion
    let body: RequestBodyReader
    /// The embedding model entry new stores use.
    let defaultEmbeddingModel: String?

    static let routes: [String: [HTTPRequest.Method]] = [
        "/v1/vector_stores": [.get, .post], "/v1/vector_stores/{id}": [.get, .post, .delete],
        "/v1/vector_stores/{id}/files": [.get, .post], "/v1/vector_stores/{id}/files/{file_id}": [.get, .post, .delete],
        "/v1/vector_stores/{id}/files/{file_id}/content": [.get], "/v1/vector_stores/{id}/file_batches": [.post],
        "/v1/vector_stores/{id}/file_batches/{batch_id}": [.get], "/v1/vector_stores/{id}/file_batches/{batch_id}/cancel": [.post],
        "/v1/vector_stores/{id}/file_batches/{batch_id}/files": [.get], "/v1/vector_stores/{id}/search": [.post],
    ]

    /// How often the SDK's `*_and_poll` helpers should ask again.
    static let pollHeaders: HTTPFields = [HTTPField.Name("openai-poll-after-ms")!: "250"]

    func register(on router: Router<SluiceRequestContext>) {
        router.post("/v1/vector_stores") { request, context in try await create(request, context) }
        router.get("/v1/vector_stores") { request, context in try await list(request, context) }
        router.get("/v1/vector_stores/{id}") { _, context in try RetrievalJSON.response(try await storeJSON(try await owned(context))) }
        router.post("/v1/vector_stores/{id}") { request, context in try await modify(request, context) }
        router.delete("/v1/vector_stores/{id}") { _, context in try await delete(context) }
        router.post("/v1/vector_stores/{id}/files") { request, context in try await addFile(request, context) }
        router.get("/v1/vector_stores/{id}/files") { request, context in try await listFiles(request, context, batchID: nil) }
        router.get("/v1/vector_stores/{id}/files/{file_id}") { _, context in
            let (vs, entry) = try await ownedEntry(context)
            return try RetrievalJSON.response(entryJSON(entry, store: vs), headers: Self.pollHeaders)
        }
        router.post("/v1/vector_stores/{id}/files/{file_id}") { request, context in try await updateFile(request, context) }
        router.delete("/v1/vector_stores/{id}/files/{file_id}") { _, context in try await removeFile(context) }
        router.get("/v1/vector_stores/{id}/files/{file_id}/content") { _, context in try await fileContent(context) }
        router.post("/v1/vector_stores/{id}/file_batches") { request, context in try await createBatch(request, context) }
        router.get("/v1/vector_stores/{id}/file_batches/{batch_id}") { _, context in
            let vs = try await owned(context)
            return try RetrievalJSON.response(try await batchJSON(try await batchID(context, vs), store: vs), headers: Self.pollHeaders)
        }
        router.post("/v1/vector_stores/{id}/file_batches/{batch_id}/cancel") { _, context in try await cancelBatch(context) }
        router.get("/v1/vector_stores/{id}/file_batches/{batch_id}/files") { request, context in
            let vs = try await owned(context)
            return try await listFiles(request, context, batchID: try await batchID(context, vs))
        }
        router.post("/v1/vector_stores/{id}/search") { request, context in try await runSearch(request, context) }
    }

    // MARK: Stores

    func owned(_ context: SluiceRequestContext) async throws -> VectorStore {
        let id = context.parameters.get("id") ?? ""
        guard let vs = try await store.vectorStore(id: id), vs.owner == Ownership.owner(context.principal) else {
            throw SluiceError(.notFound, "No vector store found with id '\(id)'.", param: "vector_store_id")
        }
        return vs
    }

    func object(_ request: Request, allowed: Set<String>) async throws -> [String: JSONValue] {
        let value = try await body.decode(JSONValue.self, from: request)
        guard case .object(let fields) = value else { throw SluiceError(.invalidType, "The body must be a JSON object.") }
        for key in fields.keys.sorted() where !allowed.contains(key) {
            throw SluiceError(.invalidValue, "Unknown parameter: '\(key)'.", param: key)
        }
        return fields
    }

    func create(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let fields = try await object(
            request, allowed: ["name", "file_ids", "chunking_strategy", "metadata", "expires_after", "description", "embedding_model"])
        let owner = Ownership.owner(context.principal)
        let model: String
        if let named = fields["embedding_model"] {
            guard let name = named.stringValue, search.embedders[name] != nil else {
                throw SluiceError(
                    .invalidValue, "embedding_model must name an embedding model entry (\(search.embedders.keys.sorted().joined(separator: ", "))).",
                    param: "embedding_model")
            }
            model = name
        } else {
            guard let fallback = defaultEmbeddingModel else {
                throw SluiceError(.unsupported, "Vector stores need an embedding model entry; none is configured (retrieval.embedding_model).")
            }
            model = fallback
        }
        let chunking = try Self.chunking(fields["chunking_strategy"])
        let fileIDs = try Self.strings(fields["file_ids"], param: "file_ids", max: 500)
        let files = try await ownedFiles(fileIDs, owner: owner, param: "file_ids")
        let now = Date().timeIntervalSince1970.rounded(.down)
        let vs = VectorStore(
            id: RetrievalJSON.newID("vs_"), owner: owner, name: try Self.name(fields["name"]), createdAt: now, lastActiveAt: now,
            metadata: try ConversationRoutes.metadata(fields["metadata"]), expiresAfterDays: try Self.expiresAfter(fields["expires_after"]),
            embeddingModel: model, chunking: chunking)
        try await store.createVectorStore(vs)
        for file in files { try await add(file.id, to: vs, attributes: [:], chunking: chunking, batchID: nil) }
        return try RetrievalJSON.response(try await storeJSON(vs))
    }

    func list(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let page = try RetrievalJSON.page(request)
        var rows: [JSONValue] = []
        for vs in try await store.vectorStores(owner: Ownership.owner(context.principal), page: page) { rows.append(try await storeJSON(vs)) }
        return try RetrievalJSON.response(RetrievalJSON.list(rows, limit: page.limit, id: { $0["id"]?.stringValue }))
    }

    func modify(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        var vs = try await owned(context)
        let fields = try await object(request, allowed: ["name", "metadata", "expires_after"])
        if let name = fields["name"] { vs.name = try Self.name(name) }
        if let metadata = fields["metadata"] { vs.metadata = try ConversationRoutes.metadata(metadata) }
        if let expires = fields["expires_after"] { vs.expiresAfterDays = try Self.expiresAfter(expires) }
        vs.lastActiveAt = Date().timeIntervalSince1970.rounded(.down)
        try await store.updateVectorStore(vs)
        return try RetrievalJSON.response(try await storeJSON(vs))
    }

    func delete(_ context: SluiceRequestContext) async throws -> Response {
        let vs = try await owned(context)
        _ = try await store.deleteVectorStore(id: vs.id)
        search.indexes.drop(storeID: vs.id)
        return try RetrievalJSON.response(.object(["id": .string(vs.id), "object": "vector_store.deleted", "deleted": true]))
    }

    func storeJSON(_ vs: VectorStore) async throws -> JSONValue {
        let counts = try await store.fileCounts(storeID: vs.id, batchID: nil)
        let now = Date().timeIntervalSince1970
        let status = vs.expiresAt.map { $0 < now } == true ? "expired" : (counts.inProgress > 0 ? "in_progress" : "completed")
        return .object([
            "id": .string(vs.id), "object": "vector_store", "created_at": .int(Int(vs.createdAt)), "name": vs.name.map(JSONValue.string) ?? .null,
            "usage_bytes": .int(counts.usageBytes), "file_counts": Self.counts(counts), "status": .string(status),
            "expires_after": vs.expiresAfterDays.map { .object(["anchor": "last_active_at", "days": .int($0)]) } ?? .null,
            "expires_at": vs.expiresAt.map { .int(Int($0)) } ?? .null, "last_active_at": .int(Int(vs.lastActiveAt)),
            "metadata": .object(vs.metadata.mapValues(JSONValue.string)), "embedding_model": .string(vs.embeddingModel),
        ])
    }

    static func counts(_ c: FileCounts) -> JSONValue {
        .object([
            "in_progress": .int(c.inProgress), "completed": .int(c.completed), "failed": .int(c.failed), "cancelled": .int(c.cancelled),
            "total": .int(c.total),
        ])
    }

    func usable(_ vs: VectorStore) throws {
        if let at = vs.expiresAt, at < Date().timeIntervalSince1970 {
            throw SluiceError(.invalidValue, "Vector store \(vs.id) has expired (expires_after); create a new one.", param: "vector_store_id")
        }
    }

    // MARK: Files in a store

    func ownedFiles(_ ids: [String], owner: String, param: String) async throws -> [StoredFile] {
        var out: [StoredFile] = []
        for id in ids {
            guard let file = try await store.file(id: id), file.owner == owner else {
                throw SluiceError(.notFound, "No such File object: \(id)", param: param)
            }
            out.append(file)
        }
        return out
    }

    /// Records the file `in_progress` and queues it; replaces an earlier entry of the same file.
    func add(_ fileID: String, to vs: VectorStore, attributes: [String: JSONValue], chunking: ChunkingStrategy, batchID: String?) async throws {
        search.indexes.index(for: vs.id).remove(fileID: fileID)
        try await store.addFile(
            VectorStoreFile(
                storeID: vs.id, fileID: fileID, status: .inProgress, attributes: attributes, chunking: chunking,
                createdAt: Date().timeIntervalSince1970.rounded(.down), batchID: batchID))
        ingestion.submit(storeID: vs.id, fileID: fileID)
    }

    func addFile(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let vs = try await owned(context)
        try usable(vs)
        let fields = try await object(request, allowed: ["file_id", "attributes", "chunking_strategy"])
        guard let fileID = fields["file_id"]?.stringValue, !fileID.isEmpty else {
            throw SluiceError(.missingParameter, "Missing required parameter: 'file_id'.", param: "file_id")
        }
        _ = try await ownedFiles([fileID], owner: vs.owner, param: "file_id")
        let chunking = fields["chunking_strategy"] == nil ? vs.chunking : try Self.chunking(fields["chunking_strategy"])
        try await add(fileID, to: vs, attributes: try Self.attributes(fields["attributes"]), chunking: chunking, batchID: nil)
        guard let entry = try await store.storeFile(storeID: vs.id, fileID: fileID) else {
            throw SluiceError(.notFound, "No file found with id '\(fileID)' in vector store '\(vs.id)'.", param: "file_id")
        }
        return try RetrievalJSON.response(entryJSON(entry, store: vs), headers: Self.pollHeaders)
    }

    func ownedEntry(_ context: SluiceRequestContext) async throws -> (VectorStore, VectorStoreFile) {
        let vs = try await owned(context)
        let fileID = context.parameters.get("file_id") ?? ""
        guard let entry = try await store.storeFile(storeID: vs.id, fileID: fileID) else {
            throw SluiceError(.notFound, "No file found with id '\(fileID)' in vector store '\(vs.id)'.", param: "file_id")
        }
        return (vs, entry)
    }

    func listFiles(_ request: Request, _ context: SluiceRequestContext, batchID: String?) async throws -> Response {
        let vs = try await owned(context)
        let page = try RetrievalJSON.page(request, extra: ["filter"])
        var status: VectorStoreFile.Status?
        if let text = request.uri.queryParameters.get("filter") {
            guard let s = VectorStoreFile.Status(rawValue: text) else {
                throw SluiceError(.invalidValue, "filter must be in_progress, completed, failed or cancelled.", param: "filter")
            }
            status = s
        }
        let entries = try await store.storeFiles(storeID: vs.id, batchID: batchID, status: status, page: page)
        return try RetrievalJSON.response(
            RetrievalJSON.list(entries.map { entryJSON($0, store: vs) }, limit: page.limit, id: { $0["id"]?.stringValue }))
    }

    func updateFile(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        var (vs, entry) = try await ownedEntry(context)
        let fields = try await object(request, allowed: ["attributes"])
        guard let raw = fields["attributes"] else {
            throw SluiceError(.missingParameter, "Missing required parameter: 'attributes'.", param: "attributes")
        }
        entry.attributes = try Self.attributes(raw)
        try await store.updateAttributes(storeID: vs.id, fileID: entry.fileID, entry.attributes)
        vs.lastActiveAt = Date().timeIntervalSince1970
        return try RetrievalJSON.response(entryJSON(entry, store: vs))
    }

    func removeFile(_ context: SluiceRequestContext) async throws -> Response {
        let (vs, entry) = try await ownedEntry(context)
        _ = try await store.removeFile(storeID: vs.id, fileID: entry.fileID)
        search.indexes.index(for: vs.id).remove(fileID: entry.fileID)
        return try RetrievalJSON.response(.object(["id": .string(entry.fileID), "object": "vector_store.file.deleted", "deleted": true]))
    }

    func fileContent(_ context: SluiceRequestContext) async throws -> Response {
        let (vs, entry) = try await ownedEntry(context)
        var seqs: [Int64] = []
        var after: Int64 = 0
        while true {
            let batch = try await store.chunks(storeID: vs.id, after: after, limit: 5000)
            guard let last = batch.last else { break }
            seqs += batch.filter { $0.fileID == entry.fileID }.map(\.seq)
            after = last.seq
        }
        let chunks = try await store.chunks(seqs: seqs, vectors: false).sorted { $0.position < $1.position }
        return try RetrievalJSON.response(
            .object([
                "object": "vector_store.file_content.page", "data": .array(chunks.map { .object(["type": "text", "text": .string($0.text)]) }),
                "has_more": false, "next_page": .null,
            ]))
    }

    func entryJSON(_ entry: VectorStoreFile, store vs: VectorStore) -> JSONValue {
        var chunking: JSONValue = .object(["type": "auto"])
        if let embedder = search.embedders[vs.embeddingModel] {
            let chunker = embedder.chunker(entry.chunking)
            chunking = .object([
                "type": "static",
                "static": .object(["max_chunk_size_tokens": .int(chunker.maxTokens), "chunk_overlap_tokens": .int(chunker.overlapTokens)]),
            ])
        }
        var object: [String: JSONValue] = [
            "id": .string(entry.fileID), "object": "vector_store.file", "usage_bytes": .int(entry.usageBytes),
            "created_at": .int(Int(entry.createdAt)), "vector_store_id": .string(entry.storeID), "status": .string(entry.status.rawValue),
            "last_error": entry.errorCode.map { .object(["code": .string($0), "message": .string(entry.errorMessage ?? "")]) } ?? .null,
            "chunking_strategy": chunking, "attributes": .object(entry.attributes),
        ]
        if let progress = ingestion.progress(storeID: entry.storeID, fileID: entry.fileID) {
            object["progress"] = .object(["chunks_embedded": .int(progress.chunksEmbedded), "chunks_total": .int(progress.chunksTotal)])
        }
        return .object(object)
    }

    // MARK: File batches

    func createBatch(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let vs = try await owned(context)
        try usable(vs)
        let fields = try await object(request, allowed: ["file_ids", "files", "attributes", "chunking_strategy"])
        let shared = try Self.attributes(fields["attributes"])
        let chunking = fields["chunking_strategy"] == nil ? vs.chunking : try Self.chunking(fields["chunking_strategy"])
        var wanted: [(String, [String: JSONValue])] = try Self.strings(fields["file_ids"], param: "file_ids", max: 2000).map { ($0, shared) }
        if let files = fields["files"] {
            guard fields["file_ids"] == nil else {
                throw SluiceError(.invalidValue, "Send file_ids or files, not both.", param: "files")
            }
            guard case .array(let items) = files, items.count <= 2000 else {
                throw SluiceError(.invalidValue, "files must be a list of at most 2000 {file_id, attributes} objects.", param: "files")
            }
            for (i, item) in items.enumerated() {
                guard let id = item["file_id"]?.stringValue else {
                    throw SluiceError(.missingParameter, "files[\(i)].file_id is required.", param: "files[\(i)].file_id")
                }
                wanted.append((id, item["attributes"] == nil ? shared : try Self.attributes(item["attributes"])))
            }
        }
        guard !wanted.isEmpty else { throw SluiceError(.missingParameter, "A file batch needs file_ids (or files).", param: "file_ids") }
        _ = try await ownedFiles(wanted.map(\.0), owner: vs.owner, param: "file_ids")
        let batchID = RetrievalJSON.newID("vsfb_")
        for (id, attributes) in wanted { try await add(id, to: vs, attributes: attributes, chunking: chunking, batchID: batchID) }
        return try RetrievalJSON.response(try await batchJSON(batchID, store: vs), headers: Self.pollHeaders)
    }

    func batchID(_ context: SluiceRequestContext, _ vs: VectorStore) async throws -> String {
        let id = context.parameters.get("batch_id") ?? ""
        guard try await store.fileCounts(storeID: vs.id, batchID: id).total > 0 else {
            throw SluiceError(.notFound, "No file batch found with id '\(id)' in vector store '\(vs.id)'.", param: "batch_id")
        }
        return id
    }

    func cancelBatch(_ context: SluiceRequestContext) async throws -> Response {
        let vs = try await owned(context)
        let id = try await batchID(context, vs)
        var page = ListPage(limit: 1000, ascending: true)
        while true {
            let entries = try await store.storeFiles(storeID: vs.id, batchID: id, status: .inProgress, page: page)
            for entry in entries.prefix(page.limit) {
                try await store.finishFile(storeID: vs.id, fileID: entry.fileID, status: .cancelled, code: nil, message: nil)
            }
            guard entries.count > page.limit, let last = entries.prefix(page.limit).last else { break }
            page.after = last.fileID
        }
        return try RetrievalJSON.response(try await batchJSON(id, store: vs))
    }

    func batchJSON(_ id: String, store vs: VectorStore) async throws -> JSONValue {
        let counts = try await store.fileCounts(storeID: vs.id, batchID: id)
        let status = counts.inProgress > 0 ? "in_progress" : (counts.cancelled > 0 ? "cancelled" : (counts.completed == 0 && counts.failed > 0 ? "failed" : "completed"))
        let first = try await store.storeFiles(storeID: vs.id, batchID: id, status: nil, page: ListPage(limit: 1, ascending: true)).first
        return .object([
            "id": .string(id), "object": "vector_store.files_batch", "created_at": .int(Int(first?.createdAt ?? 0)),
            "vector_store_id": .string(vs.id), "status": .string(status), "file_counts": Self.counts(counts),
        ])
    }

    // MARK: Search

    func runSearch(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        var vs = try await owned(context)
        try usable(vs)
        let fields = try await object(request, allowed: ["query", "max_num_results", "filters", "ranking_options", "rewrite_query", "mode"])
        let query = try Self.searchQuery(fields)
        let hits = try await search.search(vs, query)
        let now = Date().timeIntervalSince1970.rounded(.down)
        // `last_active_at` moves (and with it `expires_at`), written at most once a minute.
        if now - vs.lastActiveAt >= 60 {
            vs.lastActiveAt = now
            try await store.updateVectorStore(vs)
        }
        return try RetrievalJSON.response(
            .object([
                "object": "vector_store.search_results.page", "search_query": .array(query.texts.map(JSONValue.string)),
                "data": .array(
                    hits.map { hit in
                        .object([
                            "file_id": .string(hit.fileID), "filename": .string(hit.filename), "score": .double((hit.score * 10_000).rounded() / 10_000),
                            "attributes": .object(hit.attributes), "content": .array([.object(["type": "text", "text": .string(hit.text)])]),
                        ])
                    }), "has_more": false, "next_page": .null,
            ]))
    }

    static func searchQuery(_ fields: [String: JSONValue]) throws -> SearchQuery {
        var texts: [String]
        switch fields["query"] {
        case .string(let s)?: texts = [s]
        case .array(let items)?:
            texts = try items.enumerated().map { i, item in
                guard let s = item.stringValue else { throw SluiceError(.invalidType, "query[\(i)] must be a string.", param: "query[\(i)]") }
                return s
            }
            guard texts.count <= 10 else { throw SluiceError(.invalidValue, "query takes at most 10 strings.", param: "query") }
        case nil: throw SluiceError(.missingParameter, "Missing required parameter: 'query'.", param: "query")
        default: throw SluiceError(.invalidType, "query must be a string or a list of strings.", param: "query")
        }
        texts = texts.filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
        guard !texts.isEmpty else { throw SluiceError(.invalidValue, "query must not be empty.", param: "query") }
        guard texts.allSatisfy({ $0.utf8.count <= 16_384 }) else {
            throw SluiceError(.invalidValue, "A query is at most 16 KB.", param: "query")
        }
        var query = SearchQuery(texts: texts)
        if let n = fields["max_num_results"] {
            guard let count = n.intValue, (1...50).contains(count), n.doubleValue == Double(count) else {
                throw SluiceError(.invalidValue, "max_num_results must be an integer from 1 to 50.", param: "max_num_results")
            }
            query.maxResults = count
        }
        if let filters = fields["filters"], filters != .null { query.filter = try AttributeFilter.parse(filters) }
        if let ranking = fields["ranking_options"], ranking != .null {
            guard case .object(let o) = ranking else { throw SluiceError(.invalidType, "ranking_options must be an object.", param: "ranking_options") }
            for key in o.keys where key != "score_threshold" && key != "ranker" {
                throw SluiceError(.invalidValue, "Unknown parameter: 'ranking_options.\(key)'.", param: "ranking_options.\(key)")
            }
            if let ranker = o["ranker"], !["auto", "default-2024-11-15", "none"].contains(ranker.stringValue ?? "") {
                throw SluiceError(.invalidValue, "ranking_options.ranker must be auto, default-2024-11-15 or none.", param: "ranking_options.ranker")
            }
            if let t = o["score_threshold"] {
                guard let v = t.doubleValue, (0...1).contains(v) else {
                    throw SluiceError(.invalidValue, "ranking_options.score_threshold must be a number from 0 to 1.", param: "ranking_options.score_threshold")
                }
                query.scoreThreshold = v
            }
        }
        if let rewrite = fields["rewrite_query"], rewrite != .null, rewrite != .bool(false) {
            guard rewrite == .bool(true) else { throw SluiceError(.invalidType, "rewrite_query must be a boolean.", param: "rewrite_query") }
            throw SluiceError(.unsupported, "rewrite_query is not supported: send the query as it should be searched.", param: "rewrite_query")
        }
        if let mode = fields["mode"] {
            guard let m = mode.stringValue.flatMap(SearchMode.init(rawValue:)) else {
                throw SluiceError(.invalidValue, "mode must be hybrid, vector or keyword.", param: "mode")
            }
            query.mode = m
        }
        return query
    }

    // MARK: Parameters

    static func chunking(_ value: JSONValue?) throws -> ChunkingStrategy {
        guard let value, value != .null else { return .auto }
        guard case .object(let o) = value, let type = o["type"]?.stringValue else {
            throw SluiceError(.invalidValue, "chunking_strategy must be {\"type\": \"auto\"} or {\"type\": \"static\", \"static\": {…}}.", param: "chunking_strategy")
        }
        switch type {
        case "auto": return .auto
        case "static":
            guard case .object(let s)? = o["static"], case .int(let size)? = s["max_chunk_size_tokens"], case .int(let overlap)? = s["chunk_overlap_tokens"]
            else {
                throw SluiceError(
                    .missingParameter, "chunking_strategy.static needs max_chunk_size_tokens and chunk_overlap_tokens.", param: "chunking_strategy.static")
            }
            guard (100...4096).contains(size) else {
                throw SluiceError(.invalidValue, "max_chunk_size_tokens must be from 100 to 4096.", param: "chunking_strategy.static.max_chunk_size_tokens")
            }
            guard overlap >= 0, overlap <= size / 2 else {
                throw SluiceError(
                    .invalidValue, "chunk_overlap_tokens must be from 0 to half of max_chunk_size_tokens.",
                    param: "chunking_strategy.static.chunk_overlap_tokens")
            }
            return .fixed(maxTokens: size, overlapTokens: overlap)
        default:
            throw SluiceError(.invalidValue, "chunking_strategy.type must be auto or static.", param: "chunking_strategy.type")
        }
    }

    static func strings(_ value: JSONValue?, param: String, max: Int) throws -> [String] {
        guard let value, value != .null else { return [] }
        guard case .array(let items) = value, items.count <= max else {
            throw SluiceError(.invalidValue, "\(param) must be a list of at most \(max) file ids.", param: param)
        }
        return try items.enumerated().map { i, item in
            guard let s = item.stringValue, !s.isEmpty else { throw SluiceError(.invalidType, "\(param)[\(i)] must be a file id.", param: "\(param)[\(i)]") }
            return s
        }
    }

    static func name(_ value: JSONValue?) throws -> String? {
        guard let value, value != .null else { return nil }
        guard let s = value.stringValue, s.utf8.count <= 256 else { throw SluiceError(.invalidValue, "name must be a string of at most 256 bytes.", param: "name") }
        return s
    }

    static func expiresAfter(_ value: JSONValue?) throws -> Int? {
        guard let value, value != .null else { return nil }
        guard case .object(let o) = value, o["anchor"]?.stringValue == "last_active_at", case .int(let days)? = o["days"], (1...365).contains(days)
        else {
            throw SluiceError(
                .invalidValue, "expires_after must be {\"anchor\": \"last_active_at\", \"days\": 1 to 365}.", param: "expires_after")
        }
        return days
    }

    /// OpenAI's limits: at most 16 keys of up to 64 characters; values strings (up to 512), numbers or booleans.
    static func attributes(_ value: JSONValue?) throws -> [String: JSONValue] {
        guard let value, value != .null else { return [:] }
        guard case .object(let o) = value, o.count <= 16 else {
            throw SluiceError(.invalidValue, "attributes must be an object of at most 16 keys.", param: "attributes")
        }
        for (key, v) in o {
            guard key.count <= 64 else { throw SluiceError(.invalidValue, "Attribute keys are at most 64 characters.", param: "attributes") }
            switch v {
            case .string(let s) where s.count <= 512: continue
            case .int, .double, .bool: continue
            default:
                throw SluiceError(
                    .invalidValue, "attributes.\(key) must be a string (at most 512 characters), a number or a boolean.", param: "attributes.\(key)")
            }
        }
        return o
    }
}
