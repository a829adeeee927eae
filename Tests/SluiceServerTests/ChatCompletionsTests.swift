import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
@testable import SluiceObservability
@testable import SluiceServer

@Suite struct ChatCompletionsTests {
    @Test func answersACompletionWithHeadersAndARecord() async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: [HTTPField.Name("x-request-id")!: "client-id-1"], body: chatBody()
            ) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("x-request-id")!] == "client-id-1")
                #expect(response.headers[HTTPField.Name("x-sluice-model")!] == "sim-small")
                #expect(response.headers[.contentType] == "application/json")
                let body = try #require(response.body.json)
                #expect(body["object"] == "chat.completion")
                #expect(body["choices"]?[0]?["message"]?["content"] == "Hello from the simulator")
                #expect(body["choices"]?[0]?["finish_reason"] == "stop")
                #expect(body["usage"]?["completion_tokens"] == 4)
                let promptTokens = body["usage"]?["prompt_tokens"]?.doubleValue ?? 0
                let expectedCost = (promptTokens * 1.0 + 4 * 2.0) / 1_000_000
                #expect(response.headers[HTTPField.Name("x-sluice-cost-usd")!] == String(format: "%.8f", expectedCost))
            }
        }
        await app.auditLog.drain()
        let rows = try await app.store.recent(limit: 10)
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(row.id == "client-id-1")
        #expect(row.modelRequested == "sim-small")
        #expect(row.deployment == "sim-small")
        #expect(row.status == 200)
        #expect(row.tokensOut == 4)
        #expect(row.costUSD > 0)
        #expect(row.stream == false)
        #expect(row.attempts == 1)
    }

    @Test func replacesAnUnsafeRequestID() async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: [HTTPField.Name("x-request-id")!: "bad id with spaces"], body: chatBody()
            ) { response in
                let id = response.headers[HTTPField.Name("x-request-id")!] ?? ""
                #expect(id.hasPrefix("req_"))
                #expect(id.count == 32)
            }
            // Error responses carry an id too.
            try await client.execute(uri: "/nowhere", method: .get) { response in
                #expect(response.headers[HTTPField.Name("x-request-id")!]?.hasPrefix("req_") == true)
            }
        }
    }

    @Test func returnsToolCalls() async throws {
        let app = try await TestApp.build()
        let tools = #""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],"tool_choice":"required""#
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: chatBody(tools)) { response in
                #expect(response.status == .ok)
                let body = try #require(response.body.json)
                let message = body["choices"]?[0]?["message"]
                #expect(message?["content"] == .null)
                #expect(message?["tool_calls"]?[0]?["function"]?["name"] == "get_weather")
                #expect(message?["tool_calls"]?[0]?["function"]?["arguments"] == #"{"city":"city"}"#)
                #expect(body["choices"]?[0]?["finish_reason"] == "tool_calls")
            }
        }
    }

    @Test func passesResponseFormatThrough() async throws {
        let app = try await TestApp.build()
        let format = #""response_format":{"type":"json_schema","json_schema":{"name":"person","schema":{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}}}"#
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: chatBody(format)) { response in
                let content = response.body.json?["choices"]?[0]?["message"]?["content"]?.stringValue ?? ""
                let parsed = try JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: content))
                #expect(parsed["age"] == 1)
                #expect(parsed["name"]?.stringValue != nil)
            }
        }
    }

    @Test func listsModelsAndAnswersHealth() async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/v1/models", method: .get) { response in
                let body = try #require(response.body.json)
                #expect(body["object"] == "list")
                #expect(body["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["sim-small", "sim-embed"])
                #expect(body["data"]?[0]?["owned_by"] == "sim")
            }
            try await client.execute(uri: "/v1/models/sim-embed", method: .get) { response in
                #expect(response.body.json?["id"] == "sim-embed")
            }
            try await client.execute(uri: "/v1/models/nope", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.body.json?["error"]?["code"] == "model_not_found")
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.body.json?["providers"]?["sim"] == "healthy")
                #expect(response.body.json?["store"] == "ok")
            }
        }
    }
}
