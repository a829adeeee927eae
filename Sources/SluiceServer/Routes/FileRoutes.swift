import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SluiceCore
import SluiceRetrieval

/// OpenAI's Files API: `POST /v1/files` (multipart), `GET /v1/files`, `GET` and `DELETE
/// /v1/files/{id}`, `GET /v1/files/{id}/content`. Bytes live in the store (every replica serves
/// them); a file belongs to the team (else the key) that uploaded it, and anyone else gets 404.
struct FileRoutes: Sendable {
    let store: any RetrievalStore
    let indexes: VectorIndexes
    let maxBytes: Int

    static let routes: [String: [HTTPRequest.Method]] = [
        "/v1/files": [.get, .post], "/v1/files/{id}": [.get, .delete], "/v1/files/{id}/content": [.get],
    ]

    func register(on router: Router<SluiceRequestContext>) {
        router.post("/v1/files") { request, context in try await upload(request, context) }
        router.get("/v1/files") { request, context in try await list(request, context) }
        router.get("/v1/files/{id}") { _, context in try RetrievalJSON.response(RetrievalJSON.file(try await owned(context))) }
        router.get("/v1/files/{id}/content") { _, context in try await content(context) }
        router.delete("/v1/files/{id}") { _, context in try await delete(context) }
    }

    func owned(_ context: SluiceRequestContext) async throws -> StoredFile {
        let id = context.parameters.get("id") ?? ""
        guard let file = try await store.file(id: id), file.owner == Ownership.owner(context.principal) else {
            throw SluiceError(.notFound, "No such File object: \(id)", param: "id")
        }
        return file
    }

    func upload(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let boundary = try MultipartForm.boundary(contentType: request.headers[.contentType])
        // The form's own lines and fields are small: allow them beside the file.
        let limit = maxBytes + 64 * 1024
        let body = try await RequestBodyReader.collect(request, upTo: limit, tooLarge: tooLarge)
        let form = try MultipartForm.parse(Array(body.readableBytesView), boundary: boundary)
        guard let purposeText = form.text("purpose"), !purposeText.isEmpty else {
            throw SluiceError(.missingParameter, "Missing required parameter: 'purpose' (assistants, batch or user_data).", param: "purpose")
        }
        guard let purpose = StoredFile.Purpose(rawValue: purposeText), purpose != .batchOutput else {
            throw SluiceError(
                .invalidValue, "'\(purposeText)' is not a supported purpose: use assistants, batch or user_data.", param: "purpose")
        }
        guard let part = form.part("file") else {
            throw SluiceError(.missingParameter, "Missing required parameter: 'file' (a multipart part with a filename).", param: "file")
        }
        guard part.body.count <= maxBytes else { throw tooLarge }
        let filename = (part.filename ?? "upload").split(separator: "/").last.map(String.init) ?? "upload"
        guard !filename.isEmpty, filename.utf8.count <= 512 else {
            throw SluiceError(.invalidValue, "The file's name must be 1 to 512 bytes.", param: "file")
        }
        if purpose == .batch, !filename.lowercased().hasSuffix(".jsonl") {
            throw SluiceError(.invalidValue, "A file for purpose 'batch' must be JSON Lines (.jsonl).", param: "file")
        }
        let file = StoredFile(
            id: RetrievalJSON.newID("file-"), owner: Ownership.owner(context.principal), filename: filename, purpose: purpose, bytes: part.body.count,
            createdAt: Date().timeIntervalSince1970.rounded(.down))
        try await store.insertFile(file, content: Array(part.body))
        return try RetrievalJSON.response(RetrievalJSON.file(file))
    }

    var tooLarge: SluiceError {
        SluiceError(.requestTooLarge, "The file is larger than \(maxBytes) bytes (files.max_bytes).", param: "file")
    }

    func list(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let q = request.uri.queryParameters
        let page = try RetrievalJSON.page(request, extra: ["purpose"], maxLimit: 10_000, defaultLimit: 10_000)
        var purpose: StoredFile.Purpose?
        if let text = q.get("purpose") {
            guard let p = StoredFile.Purpose(rawValue: text) else {
                throw SluiceError(.invalidValue, "purpose must be assistants, batch, batch_output or user_data.", param: "purpose")
            }
            purpose = p
        }
        let files = try await store.files(owner: Ownership.owner(context.principal), purpose: purpose, page: page)
        return try RetrievalJSON.response(RetrievalJSON.list(files.map(RetrievalJSON.file), limit: page.limit, id: { $0["id"]?.stringValue }))
    }

    func content(_ context: SluiceRequestContext) async throws -> Response {
        let file = try await owned(context)
        guard let bytes = try await store.fileContent(id: file.id) else { throw SluiceError(.notFound, "No such File object: \(file.id)", param: "id") }
        return Response(
            status: .ok, headers: [.contentType: "application/octet-stream", .contentDisposition: "attachment; filename=\"\(file.filename.replacingOccurrences(of: "\"", with: ""))\""],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func delete(_ context: SluiceRequestContext) async throws -> Response {
        let file = try await owned(context)
        // Its chunks leave every store's index with it.
        if let stores = try await store.deleteFile(id: file.id) { indexes.dropFile(file.id, stores: stores) }
        return try RetrievalJSON.response(.object(["id": .string(file.id), "object": "file", "deleted": true]))
    }
}

/// The JSON shapes of files, vector stores and their lists, as OpenAI writes them.
enum RetrievalJSON {
    static func newID(_ prefix: String) -> String {
        prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
    }

    static func response(_ value: JSONValue, headers: HTTPFields = [:]) throws -> Response {
        var all = headers
        all[.contentType] = "application/json"
        return Response(status: .ok, headers: all, body: .init(byteBuffer: try JSONCoding.encode(value)))
    }

    static func file(_ f: StoredFile) -> JSONValue {
        .object([
            "id": .string(f.id), "object": "file", "bytes": .int(f.bytes), "created_at": .int(Int(f.createdAt)), "filename": .string(f.filename),
            "purpose": .string(f.purpose.rawValue), "status": "processed", "expires_at": .null, "status_details": .null,
        ])
    }

    /// A list page from `limit + 1` rows.
    static func list(_ rows: [JSONValue], limit: Int, id: (JSONValue) -> String?) -> JSONValue {
        let shown = Array(rows.prefix(limit))
        return .object([
            "object": "list", "data": .array(shown), "first_id": shown.first.flatMap(id).map(JSONValue.string) ?? .null,
            "last_id": shown.last.flatMap(id).map(JSONValue.string) ?? .null, "has_more": .bool(rows.count > limit),
        ])
    }

    /// `limit`, `order`, `after`, `before` (and the route's own parameters in `extra`).
    static func page(_ request: Request, extra: Set<String> = [], maxLimit: Int = 100, defaultLimit: Int = 20) throws -> ListPage {
        let q = request.uri.queryParameters
        for (key, _) in q where !["limit", "order", "after", "before"].contains(String(key)) && !extra.contains(String(key)) {
            throw SluiceError(.invalidValue, "Unknown query parameter '\(key)'.", param: String(key))
        }
        var page = ListPage(limit: defaultLimit)
        if let text = q.get("limit") {
            guard let n = Int(text), (1...maxLimit).contains(n) else {
                throw SluiceError(.invalidValue, "limit must be from 1 to \(maxLimit).", param: "limit")
            }
            page.limit = n
        }
        let order = q.get("order") ?? "desc"
        guard order == "asc" || order == "desc" else { throw SluiceError(.invalidValue, "order must be asc or desc.", param: "order") }
        page.ascending = order == "asc"
        page.after = q.get("after")
        page.before = q.get("before")
        return page
    }
}
