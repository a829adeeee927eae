import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
@testable import SluiceObservability
@testable import SluiceServer

/// The searchable audit log over HTTP: filters, cursor pages, one request's details, JSONL export, roles and bad input.
@Suite struct AuditLogRouteTests {
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
            await app.auditLog.drain()

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

/// Bodies in the audit log: redacted by default, kept as sent with `full`, absent with `none`; and the retention job.
@Suite struct AuditBodyTests {
    static func yaml(_ mode: String) -> String {
        AccessTests.yaml.replacingOccurrences(of: #"store: { sqlite: ":memory:" }"#, with: #"store: { sqlite: ":memory:", audit_log: { log_bodies: \#(mode) } }"#)
    }

    func detail(mode: String, stream: Bool = false, content: String = "Mail ann@example.com about card 4111 1111 1111 1111") async throws -> JSONValue {
        let app = try await TestApp.build(yaml: Self.yaml(mode), adminKey: AccessTests.adminKey)
        return try await app.http.test(.router) { client in
            var headers = AccessTests.headers(AccessTests.adminKey)
            headers[HTTPField.Name("x-request-id")!] = "body-1"
            headers[HTTPField.Name("x-sim-mode")!] = "echo"
            let quoted = String(decoding: try JSONEncoder().encode(content), as: UTF8.self)
            let body = #"{"model":"sim-small","stream":\#(stream),"messages":[{"role":"user","content":\#(quoted)}]}"#
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: ByteBuffer(string: body)) { #expect($0.status == .ok) }
            await app.auditLog.drain()
            return try await client.execute(uri: "/admin/requests/body-1", method: .get, headers: AccessTests.headers(AccessTests.adminKey)) {
                try #require($0.body.json)
            }
        }
    }

    @Test func bodiesAreRedactedByDefaultKeptWhenFullAndAbsentWhenNone() async throws {
        for stream in [false, true] {
            let redacted = try await detail(mode: "redacted", stream: stream)
            let sent = redacted["request_body"]?[0]?["content"]?.stringValue ?? ""
            #expect(sent == "Mail [EMAIL_1] about card [CREDIT_CARD_1]", "\(redacted)")
            let answer = redacted["response_body"]?.stringValue ?? ""
            #expect(answer.contains("[EMAIL_1]") && !answer.contains("ann@example.com"), "stream \(stream): \(answer)")
        }
        let full = try await detail(mode: "full")
        #expect(full["request_body"]?[0]?["content"]?.stringValue == "Mail ann@example.com about card 4111 1111 1111 1111")
        #expect(full["response_body"]?.stringValue?.contains("ann@example.com") == true)
        let none = try await detail(mode: "none")
        #expect(none["request_body"] == .null && none["response_body"] == .null)
        #expect(none["model"] == "sim-small")
    }

    /// A value after a line break or a tab is redacted too, and the kept body is still JSON (it
    /// was scanned as JSON text once, where `\n555…` hid a number and `\t` lost its escape).
    @Test func valuesAfterEscapedCharactersAreRedacted() async throws {
        let redacted = try await detail(mode: "redacted", content: "Call\n555-867-5309 or mail:\tann@example.com")
        #expect(redacted["request_body"]?[0]?["content"]?.stringValue == "Call\n[PHONE_1] or mail:\t[EMAIL_1]", "\(redacted)")
    }

    @Test func retentionPurgesByAge() async throws {
        var config = AuditLogConfig()
        config.retentionDays = 30
        config.bodyRetentionDays = 7
        let day = 86_400.0
        let (rows, bodies) = AuditLogRetention.cutoffs(config, now: 100 * day)
        #expect(rows == 70 * day && bodies == 93 * day)
        config.bodyRetentionDays = nil
        let following = AuditLogRetention.cutoffs(config, now: 100 * day).bodies
        #expect(following == 70 * day)

        let store = InMemoryAuditLogStore()
        let now = 1_000 * 86_400.0
        var fresh = AuditRecord(
            id: "new", time: now - 3_600, endpoint: "chat.completions", modelRequested: "m", deployment: nil, status: 200, errorCode: nil, latencyMs: 1,
            ttftMs: nil, tokensIn: 1, tokensOut: 1, costUSD: 0, cacheStatus: "miss", stream: false, attempts: 1, responseBody: "kept")
        var old = fresh
        old.id = "old"
        old.time = now - 40 * 86_400
        fresh.requestBody = "[]"
        try await store.append([old, fresh])
        let retention = AuditLogRetention(store: store, config: AuditLogConfig(), logger: .init(label: "test"))
        let done = try await retention.purge(now: now)
        #expect(done.rows == 1)
        #expect(try await store.record(id: "new")?.responseBody == "kept")
    }
}
