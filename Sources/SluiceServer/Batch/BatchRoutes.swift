import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SluiceBatch
import SluiceCore

/// OpenAI's Batch API: `POST /v1/batches`, `GET /v1/batches[/{id}]`, `POST
/// /v1/batches/{id}/cancel`, in its shapes and errors. A batch is the creating key's team's (or
/// the key's own); its lines run as that key, in the background (`BatchRunner`).
struct BatchRoutes: Sendable {
    let store: any BatchStore
    let files: any RetrievalStore
    let flows: Set<String>
    let body: RequestBodyReader

    static let routes: [String: [HTTPRequest.Method]] = [
        "/v1/batches": [.get, .post], "/v1/batches/{id}": [.get], "/v1/batches/{id}/cancel": [.post],
    ]
    static let windows: [String: Double] = ["24h": 86_400]

    func register(on router: Router<SluiceRequestContext>) {
        router.post("/v1/batches") { request, context in try await create(request, context) }
        router.get("/v1/batches") { request, context in try await list(request, context) }
        router.get("/v1/batches/{id}") { _, context in try RetrievalJSON.response(Self.json(try await owned(context))) }
        router.post("/v1/batches/{id}/cancel") { _, context in try await cancel(context) }
    }

    func owned(_ context: SluiceRequestContext) async throws -> BatchRecord {
        let id = context.parameters.get("id") ?? ""
        guard let batch = try await store.batch(id: id), batch.owner == Ownership.owner(context.principal) else {
            throw SluiceError(.notFound, "No batch found with id '\(id)'.", param: "id")
        }
        return batch
    }

    func create(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let value = try await body.decode(JSONValue.self, from: request)
        guard case .object(let o) = value else { throw SluiceError(.invalidType, "The body must be a JSON object.") }
        for key in o.keys where !["input_file_id", "endpoint", "completion_window", "metadata"].contains(key) {
            throw SluiceError(.invalidValue, "Unrecognized request argument supplied: \(key)", param: key)
        }
        guard let fileID = o["input_file_id"]?.stringValue, !fileID.isEmpty else {
            throw SluiceError(.missingParameter, "Missing required parameter: 'input_file_id'.", param: "input_file_id")
        }
        guard let endpoint = o["endpoint"]?.stringValue else {
            throw SluiceError(.missingParameter, "Missing required parameter: 'endpoint'.", param: "endpoint")
        }
        let flowName = endpoint.hasPrefix("/v1/flows/") && endpoint.hasSuffix("/run") ? String(endpoint.dropFirst(10).dropLast(4)) : nil
        guard endpoint == "/v1/chat/completions" || endpoint == "/v1/embeddings" || flowName.map(flows.contains) == true else {
            throw SluiceError(
                .invalidValue, "endpoint must be /v1/chat/completions, /v1/embeddings or /v1/flows/{name}/run of a configured flow; got '\(endpoint)'.",
                param: "endpoint")
        }
        guard let window = o["completion_window"]?.stringValue else {
            throw SluiceError(.missingParameter, "Missing required parameter: 'completion_window'.", param: "completion_window")
        }
        guard let seconds = Self.windows[window] else {
            throw SluiceError(.invalidValue, "completion_window must be 24h.", param: "completion_window")
        }
        var metadata: [String: String] = [:]
        switch o["metadata"] {
        case nil, .null?: break
        case .object(let m)?:
            guard m.count <= 16 else { throw SluiceError(.invalidValue, "metadata may have at most 16 keys.", param: "metadata") }
            for (k, v) in m {
                guard let text = v.stringValue, k.count <= 64, text.count <= 512 else {
                    throw SluiceError(.invalidValue, "metadata holds strings: keys up to 64 characters, values up to 512.", param: "metadata")
                }
                metadata[k] = text
            }
        default: throw SluiceError(.invalidType, "metadata must be an object of strings.", param: "metadata")
        }
        let owner = Ownership.owner(context.principal)
        guard let file = try await files.file(id: fileID), file.owner == owner else {
            throw SluiceError(.notFound, "No such File object: \(fileID)", param: "input_file_id")
        }
        guard file.purpose == .batch else {
            throw SluiceError(.invalidValue, "The file \(fileID) has purpose '\(file.purpose.rawValue)'; a batch's input has purpose 'batch'.", param: "input_file_id")
        }
        let now = Date().timeIntervalSince1970
        let batch = BatchRecord(
            id: RetrievalJSON.newID("batch_"), owner: owner, keyID: context.principal?.key.id ?? "", endpoint: endpoint, inputFileID: fileID,
            completionWindow: window, createdAt: now, expiresAt: now + seconds, metadata: metadata)
        try await store.createBatch(batch)
        return try RetrievalJSON.response(Self.json(batch))
    }

    func list(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let page = try RetrievalJSON.page(request, maxLimit: 100)
        let rows = try await store.batches(owner: Ownership.owner(context.principal), page: page)
        return try RetrievalJSON.response(RetrievalJSON.list(rows.map(Self.json), limit: page.limit, id: { $0["id"]?.stringValue }))
    }

    func cancel(_ context: SluiceRequestContext) async throws -> Response {
        let batch = try await owned(context)
        return try RetrievalJSON.response(Self.json(try await store.cancel(batch)))
    }

    static func json(_ b: BatchRecord) -> JSONValue { BatchOutput.batch(b) }
}
