import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
@testable import SluiceObservability
@testable import SluiceServer

/// Every bad input gets OpenAI's error shape with the right status — never a 500.
@Suite struct ErrorTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let method: HTTPRequest.Method
        let uri: String
        let body: String?
        var headers: HTTPFields = [:]
        let status: HTTPResponse.Status
        let code: String
        var param: String?? = .none
        var messageContains: String?
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "malformed JSON", method: .post, uri: "/v1/chat/completions", body: #"{"model": "sim-small", "messages": [}"#,
             status: .badRequest, code: "invalid_json", param: .some(nil), messageContains: "line 1, column 37"),
        Case(name: "not JSON at all", method: .post, uri: "/v1/chat/completions", body: "hello", status: .badRequest, code: "invalid_json"),
        Case(name: "empty body", method: .post, uri: "/v1/chat/completions", body: "", status: .badRequest, code: "invalid_json"),
        Case(name: "JSON but not an object", method: .post, uri: "/v1/chat/completions", body: "[1,2]", status: .badRequest, code: "invalid_type"),
        Case(name: "missing model", method: .post, uri: "/v1/chat/completions", body: #"{"messages":[{"role":"user","content":"x"}]}"#,
             status: .badRequest, code: "missing_required_parameter", param: "model"),
        Case(name: "missing messages", method: .post, uri: "/v1/chat/completions", body: #"{"model":"sim-small"}"#,
             status: .badRequest, code: "missing_required_parameter", param: "messages"),
        Case(name: "wrong-typed max_tokens", method: .post, uri: "/v1/chat/completions",
             body: #"{"model":"sim-small","messages":[{"role":"user","content":"x"}],"max_tokens":"ten"}"#,
             status: .badRequest, code: "invalid_type", param: "max_tokens"),
        Case(name: "wrong-typed stream", method: .post, uri: "/v1/chat/completions",
             body: #"{"model":"sim-small","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
             status: .badRequest, code: "invalid_type", param: "stream"),
        Case(name: "unknown role", method: .post, uri: "/v1/chat/completions",
             body: #"{"model":"sim-small","messages":[{"role":"robot","content":"x"}]}"#,
             status: .badRequest, code: "invalid_value", param: "messages[0].role"),
        Case(name: "empty messages", method: .post, uri: "/v1/chat/completions", body: #"{"model":"sim-small","messages":[]}"#,
             status: .badRequest, code: "invalid_value", param: "messages"),
        Case(name: "temperature out of range", method: .post, uri: "/v1/chat/completions",
             body: #"{"model":"sim-small","messages":[{"role":"user","content":"x"}],"temperature":3}"#,
             status: .badRequest, code: "invalid_value", param: "temperature"),
        Case(name: "stream_options without stream", method: .post, uri: "/v1/chat/completions",
             body: #"{"model":"sim-small","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}"#,
             status: .badRequest, code: "invalid_value", param: "stream_options"),
        Case(name: "tool message without id", method: .post, uri: "/v1/chat/completions",
             body: #"{"model":"sim-small","messages":[{"role":"tool","content":"x"}]}"#,
             status: .badRequest, code: "missing_required_parameter", param: "messages[0].tool_call_id"),
        Case(name: "bad tool_choice", method: .post, uri: "/v1/chat/completions",
             body: #"{"model":"sim-small","messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"}"#,
             status: .badRequest, code: "invalid_value", param: "tool_choice"),
        Case(name: "unknown model", method: .post, uri: "/v1/chat/completions",
             body: #"{"model":"gpt-nope","messages":[{"role":"user","content":"x"}]}"#,
             status: .notFound, code: "model_not_found", param: "model", messageContains: "gpt-nope"),
        Case(name: "embedding model on chat", method: .post, uri: "/v1/chat/completions",
             body: #"{"model":"sim-embed","messages":[{"role":"user","content":"x"}]}"#,
             status: .badRequest, code: "invalid_value", param: "model"),
        Case(name: "body over max_body_bytes", method: .post, uri: "/v1/chat/completions",
             body: #"{"model":"sim-small","messages":[{"role":"user","content":""# + String(repeating: "a", count: 5000) + #""}]}"#,
             status: .contentTooLarge, code: "request_too_large"),
        Case(name: "wrong method", method: .get, uri: "/v1/chat/completions", body: nil, status: .methodNotAllowed, code: "method_not_allowed"),
        Case(name: "wrong method on models", method: .delete, uri: "/v1/models", body: nil, status: .methodNotAllowed, code: "method_not_allowed"),
        Case(name: "unknown path", method: .get, uri: "/v2/everything", body: nil, status: .notFound, code: "not_found"),
        Case(name: "upstream 429", method: .post, uri: "/v1/chat/completions", body: String(buffer: chatBody()),
             headers: [HTTPField.Name("x-sim-fault")!: "429"], status: .tooManyRequests, code: "rate_limit_exceeded"),
        Case(name: "upstream 500", method: .post, uri: "/v1/chat/completions", body: String(buffer: chatBody()),
             headers: [HTTPField.Name("x-sim-fault")!: "500"], status: .badGateway, code: "upstream_error"),
        Case(name: "upstream malformed", method: .post, uri: "/v1/chat/completions", body: String(buffer: chatBody()),
             headers: [HTTPField.Name("x-sim-fault")!: "malformed"], status: .badGateway, code: "upstream_bad_response"),
        Case(name: "upstream hang", method: .post, uri: "/v1/chat/completions", body: String(buffer: chatBody()),
             headers: [HTTPField.Name("x-sim-fault")!: "hang"], status: .gatewayTimeout, code: "upstream_timeout"),
        Case(name: "bad simulator header", method: .post, uri: "/v1/chat/completions", body: String(buffer: chatBody()),
             headers: [HTTPField.Name("x-sim-tokens")!: "many"], status: .badRequest, code: "invalid_value", param: "x-sim-tokens"),
        Case(name: "absurd simulator header", method: .post, uri: "/v1/chat/completions", body: String(buffer: chatBody()),
             headers: [HTTPField.Name("x-sim-tokens")!: "1e300"], status: .badRequest, code: "invalid_value", param: "x-sim-tokens"),
        Case(name: "embeddings: empty array", method: .post, uri: "/v1/embeddings", body: #"{"model":"sim-embed","input":[]}"#,
             status: .badRequest, code: "invalid_value", param: "input"),
        Case(name: "embeddings: non-string items", method: .post, uri: "/v1/embeddings", body: #"{"model":"sim-embed","input":["a", {"x":1}]}"#,
             status: .badRequest, code: "invalid_type", param: "input"),
        Case(name: "embeddings: missing input", method: .post, uri: "/v1/embeddings", body: #"{"model":"sim-embed"}"#,
             status: .badRequest, code: "missing_required_parameter", param: "input"),
        Case(name: "embeddings: unknown model", method: .post, uri: "/v1/embeddings", body: #"{"model":"nope","input":"x"}"#,
             status: .notFound, code: "model_not_found", param: "model"),
        Case(name: "embeddings: chat model", method: .post, uri: "/v1/embeddings", body: #"{"model":"sim-small","input":"x"}"#,
             status: .badRequest, code: "invalid_value", param: "model"),
        Case(name: "embeddings: bad encoding_format", method: .post, uri: "/v1/embeddings",
             body: #"{"model":"sim-embed","input":"x","encoding_format":"int8"}"#, status: .badRequest, code: "invalid_value",
             param: "encoding_format"),
    ]

    @Test(arguments: cases)
    func answersWithTheRightError(_ c: Case) async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            try await client.execute(uri: c.uri, method: c.method, headers: c.headers, body: c.body.map { ByteBuffer(string: $0) }) { response in
                #expect(response.status == c.status, "\(c.name): \(String(buffer: response.body))")
                #expect(response.headers[.contentType] == "application/json")
                let error = try #require(response.body.json?["error"], "\(c.name): not an OpenAI error body")
                #expect(error["code"]?.stringValue == c.code, "\(c.name)")
                #expect(error["message"]?.stringValue?.isEmpty == false)
                #expect(error["type"]?.stringValue != nil)
                if case .some(let param) = c.param {
                    #expect(error["param"]?.stringValue == param, "\(c.name)")
                }
                if let text = c.messageContains {
                    #expect(error["message"]?.stringValue?.contains(text) == true, "\(c.name): \(error)")
                }
                #expect(response.headers[HTTPField.Name("x-request-id")!] != nil)
            }
        }
    }

    @Test func methodNotAllowedSaysWhatIsAllowed() async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .put) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "POST")
            }
        }
    }

    @Test func rejectedRequestsAreRecorded() async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            _ = try await client.execute(uri: "/v1/chat/completions", method: .post, body: ByteBuffer(string: "{"))
            _ = try await client.execute(
                uri: "/v1/chat/completions", method: .post, body: ByteBuffer(string: #"{"model":"gpt-nope","messages":[{"role":"user","content":"x"}]}"#))
        }
        await app.auditLog.drain()
        let rows = try await app.store.recent(limit: 10)
        #expect(Set(rows.map(\.status)) == [400, 404])
        #expect(rows.contains { $0.errorCode == "model_not_found" && $0.modelRequested == "gpt-nope" })
    }
}
