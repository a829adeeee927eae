import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
@testable import SluiceServer

/// The searchable audit log over HTTP: filters, cursor pages, one request's details, JSONL export, roles and bad input.
@Suite struct RequestLogRouteTests {
    static let admin = AccessTests.headers(AccessTests.adminKey)

    @Test func searchPagesDetailsAndExport() async throws {
        let app = try await TestApp.build(yaml: AccessTests.yaml, adminKey: AccessTests.adminKey)
        try await app.http.test(.router) { client in
            let (_, appKey) = try await AccessTests.createKey(client, #"{"name":"svc"}"#)
            let (_, viewer) = try await AccessTests.createKey(client, #"{"name":"v","role":"viewer"}"#)
            let ok = ByteBuffer(string: #"{"model":"sim-small","messages":[{"role":"user","content":"hi"}]}"#)
            let missing = ByteBuffer(string: #"{"model":"nope","messages":[{"role":"user","content":"hi"}]}"#)
            for i in 0..<5 {
                var headers = AccessTests.headers(appKey)
                headers[HTTPField.Name("x-request-id")!] = "log-ok-\(i)"
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: ok) { #expect($0.status == .ok) }
            }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: AccessTests.headers(appKey), body: missing) {
                #expect($0.status == .notFound)
            }
            await app.requestLog.drain()

            // Two per page, newest first, until next_cursor is null.
            var ids: [String] = []
            var uri = "/admin/requests?status=2xx&limit=2"
            while true {
                let next: String? = try await client.execute(uri: uri, method: .get, headers: AccessTests.headers(viewer)) { response in
                    #expect(response.status == .ok)
                    let body = try #require(response.body.json)
                    ids += (body["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
                    return body["next_cursor"]?.stringValue
                }
                guard let next else { break }
                uri = "/admin/requests?status=2xx&limit=2&cursor=\(next)"
            }
            #expect(ids == (0..<5).reversed().map { "log-ok-\($0)" })
            try await client.execute(uri: "/admin/requests?status=404&q=MODEL_NOT", method: .get, headers: Self.admin) { response in
                let data = response.body.json?["data"]?.arrayValue ?? []
                #expect(data.count == 1)
                #expect(data.first?["error_code"] == "model_not_found")
            }
            // One request, with its attempts.
            try await client.execute(uri: "/admin/requests/log-ok-3", method: .get, headers: Self.admin) { response in
                #expect(response.status == .ok)
                let body = try #require(response.body.json)
                #expect(body["model"] == "sim-small")
                #expect(body["details"]?["attempts"]?.arrayValue?.count == 1)
                #expect(body["details"]?["attempts"]?[0]?["deployment"] == "sim-small")
            }
            try await client.execute(uri: "/admin/requests/no-such-id", method: .get, headers: Self.admin) { #expect($0.status == .notFound) }
            // The export streams one JSON object per line, with the same filters.
            try await client.execute(uri: "/admin/requests/export?model=sim-small", method: .get, headers: Self.admin) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/x-ndjson")
                let lines = String(buffer: response.body).split(separator: "\n")
                #expect(lines.count == 5)
                #expect(lines.allSatisfy { ByteBuffer(string: String($0)).json?["details"] != nil })
            }
            for (query, param) in [("limit=0", "limit"), ("status=abc", "status"), ("cursor=zzz", "cursor"), ("from=yesterday", "from"), ("cache=maybe", "cache"), ("colour=red", "colour")] {
                try await client.execute(uri: "/admin/requests?\(query)", method: .get, headers: Self.admin) { response in
                    #expect(response.status == .badRequest, "\(query)")
                    #expect(response.body.json?["error"]?["param"]?.stringValue == param, "\(query)")
                }
            }
            // An app key may not read the log.
            try await client.execute(uri: "/admin/requests", method: .get, headers: AccessTests.headers(appKey)) { #expect($0.status == .forbidden) }
        }
    }
}
