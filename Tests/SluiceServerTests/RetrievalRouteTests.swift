import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing

@testable import SluiceServer

/// Files and vector stores through HTTP: OpenAI's shapes, background indexing, search with
/// filters, ownership, the size limit, bad input, and a flow that answers with citations.
@Suite struct RetrievalRouteTests {
    static let yaml = AccessTests.yaml.replacingOccurrences(of: "max_body_bytes: 4096", with: "max_body_bytes: 65536") + """

        files: { max_bytes: 2000 }
        flows:
          ask:
            model: sim-small
            input: { type: object, required: [question], properties: { question: { type: string } } }
            messages:
              - { role: system, content: "Answer from the passages; cite them as [n].{{#passages}}\\n[{{n}}] {{text}}{{/passages}}" }
              - { role: user, content: "{{question}}" }
            retrieval: { vector_store: VS, top_k: 3, min_score: 0.05, mode: keyword }
            grounding: { action: flag, threshold: 0.6 }
        """

    static let boundary = "sluice-test-boundary"

    static func multipart(_ fields: [(String, String?, [UInt8])]) -> ByteBuffer {
        var body: [UInt8] = []
        for (name, filename, bytes) in fields {
            var head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\""
            if let filename { head += "; filename=\"\(filename)\"\r\nContent-Type: application/octet-stream" }
            head += "\r\n\r\n"
            body += Array(head.utf8) + bytes + Array("\r\n".utf8)
        }
        body += Array("--\(boundary)--\r\n".utf8)
        return ByteBuffer(bytes: body)
    }

    static func upload(_ client: some TestClientProtocol, _ key: String, _ filename: String, _ text: String, purpose: String = "assistants") async throws
        -> (HTTPResponse.Status, JSONValue?)
    {
        var headers = AccessTests.headers(key)
        headers[.contentType] = "multipart/form-data; boundary=\(boundary)"
        return try await client.execute(
            uri: "/v1/files", method: .post, headers: headers, body: multipart([("purpose", nil, Array(purpose.utf8)), ("file", filename, Array(text.utf8))])
        ) { ($0.status, $0.body.json) }
    }

    static func call(_ client: some TestClientProtocol, _ key: String, _ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil) async throws
        -> (HTTPResponse.Status, JSONValue?)
    {
        try await client.execute(uri: uri, method: method, headers: AccessTests.headers(key), body: body.map { ByteBuffer(string: $0) }) {
            ($0.status, $0.body.json)
        }
    }

    /// Runs the app's ingestion beside the router test.
    static func withIngestion(_ app: SluiceApplication, _ body: @Sendable () async throws -> Void) async throws {
        let running = Task { try await app.ingestion.run() }
        defer { running.cancel() }
        try await body()
    }

    static func waitIndexed(_ client: some TestClientProtocol, _ key: String, _ store: String, _ file: String) async throws -> JSONValue? {
        for _ in 0..<200 {
            let (_, entry) = try await call(client, key, .get, "/v1/vector_stores/\(store)/files/\(file)")
            if entry?["status"] != "in_progress" { return entry }
            try await Task.sleep(for: .milliseconds(25))
        }
        return nil
    }

    @Test func uploadIndexSearchAndDeleteWithOpenAIsShapes() async throws {
        let app = try await TestApp.build(yaml: Self.yaml, adminKey: AccessTests.adminKey)
        try await Self.withIngestion(app) {
            try await app.http.test(.router) { client in
                let key = AccessTests.adminKey
                let (status, file) = try await Self.upload(client, key, "tides.md", "# Tides\n\nThe moon pulls the oceans and makes tides.\n\n# Bread\n\nKnead dough and bake it.")
                #expect(status == .ok)
                #expect(file?["object"] == "file" && file?["purpose"] == "assistants" && file?["filename"] == "tides.md" && file?["status"] == "processed")
                let fileID = try #require(file?["id"]?.stringValue)
                #expect(fileID.hasPrefix("file-"))
                let (_, content) = try await client.execute(uri: "/v1/files/\(fileID)/content", method: .get, headers: AccessTests.headers(key)) {
                    ($0.status, String(buffer: $0.body))
                }
                #expect(content.hasPrefix("# Tides"))
                let (_, listed) = try await Self.call(client, key, .get, "/v1/files?purpose=assistants")
                #expect(listed?["data"]?.arrayValue?.count == 1 && listed?["has_more"] == false)

                let (created, vs) = try await Self.call(
                    client, key, .post, "/v1/vector_stores", #"{"name":"docs","file_ids":["\#(fileID)"],"metadata":{"team":"a"},"expires_after":{"anchor":"last_active_at","days":7}}"#)
                #expect(created == .ok)
                let storeID = try #require(vs?["id"]?.stringValue)
                #expect(vs?["object"] == "vector_store" && vs?["file_counts"]?["total"] == 1 && vs?["expires_after"]?["days"] == 7)
                let entry = try await Self.waitIndexed(client, key, storeID, fileID)
                #expect(entry?["status"] == "completed" && entry?["object"] == "vector_store.file" && entry?["last_error"] == .null)
                #expect((entry?["usage_bytes"]?.intValue ?? 0) > 0)
                let (_, done) = try await Self.call(client, key, .get, "/v1/vector_stores/\(storeID)")
                #expect(done?["status"] == "completed" && done?["file_counts"]?["completed"] == 1)

                let (searched, page) = try await Self.call(
                    client, key, .post, "/v1/vector_stores/\(storeID)/search", #"{"query":"what makes tides","max_num_results":1,"mode":"keyword"}"#)
                #expect(searched == .ok)
                #expect(page?["object"] == "vector_store.search_results.page" && page?["search_query"] == .array(["what makes tides"]))
                let hit = page?["data"]?[0]
                #expect(hit?["file_id"] == .string(fileID) && hit?["filename"] == "tides.md")
                #expect(hit?["content"]?[0]?["type"] == "text" && hit?["content"]?[0]?["text"]?.stringValue?.contains("moon") == true)
                #expect(page?["data"]?.arrayValue?.count == 1)

                // Attributes and a filter that leaves it out.
                let (updated, _) = try await Self.call(client, key, .post, "/v1/vector_stores/\(storeID)/files/\(fileID)", #"{"attributes":{"lang":"en"}}"#)
                #expect(updated == .ok)
                let (_, kept) = try await Self.call(
                    client, key, .post, "/v1/vector_stores/\(storeID)/search", #"{"query":"tides","filters":{"type":"eq","key":"lang","value":"en"}}"#)
                #expect(kept?["data"]?[0]?["attributes"]?["lang"] == "en")
                let (_, filtered) = try await Self.call(
                    client, key, .post, "/v1/vector_stores/\(storeID)/search", #"{"query":"tides","filters":{"type":"eq","key":"lang","value":"fr"}}"#)
                #expect(filtered?["data"]?.arrayValue?.isEmpty == true)

                // Deleting the file takes it out of search.
                let (deleted, gone) = try await Self.call(client, key, .delete, "/v1/files/\(fileID)")
                #expect(deleted == .ok && gone?["deleted"] == true)
                let (_, empty) = try await Self.call(client, key, .post, "/v1/vector_stores/\(storeID)/search", #"{"query":"tides"}"#)
                #expect(empty?["data"]?.arrayValue?.isEmpty == true)
                #expect(try await Self.call(client, key, .get, "/v1/files/\(fileID)").0 == .notFound)
                let (removed, _) = try await Self.call(client, key, .delete, "/v1/vector_stores/\(storeID)")
                #expect(removed == .ok)
                #expect(try await Self.call(client, key, .get, "/v1/vector_stores/\(storeID)").0 == .notFound)
            }
        }
    }

    @Test func anotherTeamsFilesAndStoresAreNotFound() async throws {
        let app = try await TestApp.build(yaml: Self.yaml, adminKey: AccessTests.adminKey)
        try await Self.withIngestion(app) {
            try await app.http.test(.router) { client in
                let (_, otherKey) = try await AccessTests.createKey(client, #"{"name":"other","role":"app"}"#)
                let (_, file) = try await Self.upload(client, AccessTests.adminKey, "a.txt", "secret plans")
                let fileID = try #require(file?["id"]?.stringValue)
                let (_, vs) = try await Self.call(client, AccessTests.adminKey, .post, "/v1/vector_stores", #"{"file_ids":["\#(fileID)"]}"#)
                let storeID = try #require(vs?["id"]?.stringValue)
                for (method, uri, body) in [
                    (HTTPRequest.Method.get, "/v1/files/\(fileID)", nil), (.get, "/v1/files/\(fileID)/content", nil), (.delete, "/v1/files/\(fileID)", nil),
                    (.get, "/v1/vector_stores/\(storeID)", nil), (.post, "/v1/vector_stores/\(storeID)/search", #"{"query":"plans"}"#),
                    (.delete, "/v1/vector_stores/\(storeID)", nil), (.post, "/v1/vector_stores", #"{"file_ids":["\#(fileID)"]}"#),
                ] as [(HTTPRequest.Method, String, String?)] {
                    let (status, error) = try await Self.call(client, otherKey, method, uri, body)
                    #expect(status == .notFound, "\(method) \(uri)")
                    #expect(error?["error"]?["type"] == "invalid_request_error")
                }
                let (_, mine) = try await Self.call(client, otherKey, .get, "/v1/files")
                #expect(mine?["data"]?.arrayValue?.isEmpty == true)
                let (_, stores) = try await Self.call(client, otherKey, .get, "/v1/vector_stores")
                #expect(stores?["data"]?.arrayValue?.isEmpty == true)
            }
        }
    }

    @Test func badUploadsAndRequestsGetClearErrors() async throws {
        let app = try await TestApp.build(yaml: Self.yaml, adminKey: AccessTests.adminKey)
        try await Self.withIngestion(app) {
            try await app.http.test(.router) { client in
                let key = AccessTests.adminKey
                let (tooBig, error) = try await Self.upload(client, key, "big.txt", String(repeating: "x", count: 3000))
                #expect(tooBig == .contentTooLarge && error?["error"]?["code"] == "request_too_large")
                let (badPurpose, e2) = try await Self.upload(client, key, "a.txt", "x", purpose: "fine-tune")
                #expect(badPurpose == .badRequest && e2?["error"]?["param"] == "purpose")
                let (notMultipart, e3) = try await Self.call(client, key, .post, "/v1/files", #"{"file":"x"}"#)
                #expect(notMultipart == .badRequest && e3?["error"]?["message"]?.stringValue?.contains("multipart") == true)
                var headers = AccessTests.headers(key)
                headers[.contentType] = "multipart/form-data; boundary=\(Self.boundary)"
                let truncated = try await client.execute(
                    uri: "/v1/files", method: .post, headers: headers, body: ByteBuffer(string: "--\(Self.boundary)\r\nContent-Disposition: form-data; name=\"file\"")
                ) { $0.status }
                #expect(truncated == .badRequest)

                // An unsupported file fails with last_error naming its type; the store says so.
                let (_, png) = try await Self.upload(client, key, "photo.png", "\u{89}PNG")
                let pngID = try #require(png?["id"]?.stringValue)
                let (_, vs) = try await Self.call(client, key, .post, "/v1/vector_stores", #"{"file_ids":["\#(pngID)"]}"#)
                let storeID = try #require(vs?["id"]?.stringValue)
                let entry = try await Self.waitIndexed(client, key, storeID, pngID)
                #expect(entry?["status"] == "failed" && entry?["last_error"]?["code"] == "unsupported_file")
                #expect(entry?["last_error"]?["message"]?.stringValue?.contains(".png") == true)
                let (_, store) = try await Self.call(client, key, .get, "/v1/vector_stores/\(storeID)")
                #expect(store?["file_counts"]?["failed"] == 1)

                for (body, param) in [
                    (#"{"query":""}"#, "query"), (#"{"query":"x","max_num_results":0}"#, "max_num_results"), (#"{}"#, "query"),
                    (#"{"query":"x","filters":{"type":"eq"}}"#, "filters.key"), (#"{"query":"x","ranking_options":{"score_threshold":2}}"#, "ranking_options.score_threshold"),
                    (#"{"query":"x","mode":"fuzzy"}"#, "mode"), (#"{"query":"x","extra":1}"#, "extra"),
                ] {
                    let (status, error) = try await Self.call(client, key, .post, "/v1/vector_stores/\(storeID)/search", body)
                    #expect(status == .badRequest, "\(body)")
                    #expect(error?["error"]?["param"] == .string(param), "\(body): \(String(describing: error))")
                }
                for (body, param) in [
                    (#"{"chunking_strategy":{"type":"static","static":{"max_chunk_size_tokens":50,"chunk_overlap_tokens":0}}}"#, "chunking_strategy.static.max_chunk_size_tokens"),
                    (#"{"chunking_strategy":{"type":"static","static":{"max_chunk_size_tokens":400,"chunk_overlap_tokens":300}}}"#, "chunking_strategy.static.chunk_overlap_tokens"),
                    (#"{"expires_after":{"anchor":"created_at","days":1}}"#, "expires_after"), (#"{"expires_after":{"anchor":"last_active_at","days":1.5}}"#, "expires_after"), (#"{"file_ids":["file-nope"]}"#, "file_ids"),
                    (#"{"embedding_model":"sim-small"}"#, "embedding_model"),
                ] {
                    let (status, error) = try await Self.call(client, key, .post, "/v1/vector_stores", body)
                    #expect(status == .badRequest || status == .notFound, "\(body)")
                    #expect(error?["error"]?["param"] == .string(param), "\(body): \(String(describing: error))")
                }
                let (missing, _) = try await Self.call(client, key, .post, "/v1/vector_stores/vs_nope/files", #"{"file_id":"x"}"#)
                #expect(missing == .notFound)
            }
        }
    }

    @Test func fileBatchesCountTheirFiles() async throws {
        let app = try await TestApp.build(yaml: Self.yaml, adminKey: AccessTests.adminKey)
        try await Self.withIngestion(app) {
            try await app.http.test(.router) { client in
                let key = AccessTests.adminKey
                var ids: [String] = []
                for i in 0..<3 { ids.append(try #require(try await Self.upload(client, key, "f\(i).txt", "File number \(i) text.").1?["id"]?.stringValue)) }
                let (_, vs) = try await Self.call(client, key, .post, "/v1/vector_stores", "{}")
                let storeID = try #require(vs?["id"]?.stringValue)
                let list = ids.map { "\"\($0)\"" }.joined(separator: ",")
                let (status, batch) = try await Self.call(
                    client, key, .post, "/v1/vector_stores/\(storeID)/file_batches", #"{"file_ids":[\#(list)],"attributes":{"kind":"note"}}"#)
                #expect(status == .ok && batch?["object"] == "vector_store.files_batch" && batch?["file_counts"]?["total"] == 3)
                let batchID = try #require(batch?["id"]?.stringValue)
                var final: JSONValue?
                for _ in 0..<200 {
                    final = try await Self.call(client, key, .get, "/v1/vector_stores/\(storeID)/file_batches/\(batchID)").1
                    if final?["status"] != "in_progress" { break }
                    try await Task.sleep(for: .milliseconds(25))
                }
                #expect(final?["status"] == "completed" && final?["file_counts"]?["completed"] == 3)
                let (_, files) = try await Self.call(client, key, .get, "/v1/vector_stores/\(storeID)/file_batches/\(batchID)/files?limit=2")
                #expect(files?["data"]?.arrayValue?.count == 2 && files?["has_more"] == true)
                #expect(files?["data"]?[0]?["attributes"]?["kind"] == "note")
                let (_, parsed) = try await Self.call(client, key, .get, "/v1/vector_stores/\(storeID)/files/\(ids[0])/content")
                #expect(parsed?["data"]?[0]?["text"] == "File number 0 text.")
                #expect(try await Self.call(client, key, .get, "/v1/vector_stores/\(storeID)/file_batches/vsfb_nope").0 == .notFound)
            }
        }
    }

    @Test func aFlowAnswersFromPassagesWithCitationsAndRefusesWithoutThem() async throws {
        // The flow names its store by id: the test makes a store with that id directly.
        let app = try await TestApp.build(yaml: Self.yaml.replacingOccurrences(of: "VS", with: "vs_fixed"), adminKey: AccessTests.adminKey)
        try await Self.withIngestion(app) {
            try await app.http.test(.router) { client in
                let key = AccessTests.adminKey
                let (_, file) = try await Self.upload(client, key, "moon.md", "# Moon\n\nThe moon pulls the oceans, which makes the tides.\n\n# Cheese\n\nCheddar comes from Somerset.")
                let fileID = try #require(file?["id"]?.stringValue)
                // A store with the id the flow names, made through the store the app uses.
                try await app.retrieval.createVectorStore(
                    VectorStore(
                        id: "vs_fixed", owner: "team:none", name: nil, createdAt: 0, lastActiveAt: Date().timeIntervalSince1970, metadata: [:], expiresAfterDays: nil,
                        embeddingModel: "sim-embed", chunking: .auto))
                try await app.retrieval.addFile(VectorStoreFile(storeID: "vs_fixed", fileID: fileID, status: .inProgress, attributes: [:], chunking: .auto, createdAt: 0))
                await app.ingestion.index(storeID: "vs_fixed", fileID: fileID)

                var headers = AccessTests.headers(key)
                headers[ConversationTests.replies] = #"["The moon pulls the oceans, which makes the tides [1]. Also the sun is purple."]"#
                let (status, answer) = try await client.execute(
                    uri: "/v1/flows/ask/run", method: .post, headers: headers, body: ByteBuffer(string: #"{"input":{"question":"What makes the tides?"}}"#)
                ) { ($0.status, $0.body.json) }
                #expect(status == .ok, "\(String(describing: answer))")
                let citation = answer?["citations"]?[0]
                #expect(citation?["n"] == 1 && citation?["file_id"] == .string(fileID) && citation?["filename"] == "moon.md", "\(String(describing: answer))")
                #expect(citation?["quote"]?.stringValue?.contains("moon pulls the oceans") == true)
                #expect(answer?["grounding"]?["unsupported"] == .array(["Also the sun is purple."]))
                // No passage for the question: the flow refuses without calling the model (no cost).
                let (refused, text) = try await client.execute(
                    uri: "/v1/flows/ask/run", method: .post, headers: headers, body: ByteBuffer(string: #"{"input":{"question":"zzz qqq"}}"#)
                ) { ($0.status, $0.body.json) }
                #expect(refused == .ok)
                #expect(text?["output"]?.stringValue?.contains("could not find") == true)
                #expect(text?["cost_usd"] == 0)
            }
        }
    }
}
