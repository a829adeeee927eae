import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
@testable import SluiceObservability
@testable import SluiceServer

@Suite struct EmbeddingsTests {
    @Test func embedsStringsAndArraysInBothEncodings() async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            var floats: [Float] = []
            try await client.execute(uri: "/v1/embeddings", method: .post, body: ByteBuffer(string: #"{"model":"sim-embed","input":["first text","second text"]}"#)) { response in
                #expect(response.status == .ok)
                let body = try JSONCoding.decode(EmbeddingsResponse.self, from: response.body)
                #expect(body.data.count == 2)
                #expect(body.data.map(\.index) == [0, 1])
                #expect(body.model == "sim-embed")
                #expect(body.usage.promptTokens > 0)
                if case .float(let v) = body.data[0].embedding { floats = v }
                #expect(floats.count == 384)
            }
            try await client.execute(
                uri: "/v1/embeddings", method: .post, body: ByteBuffer(string: #"{"model":"sim-embed","input":"first text","encoding_format":"base64"}"#)
            ) { response in
                let body = try JSONCoding.decode(EmbeddingsResponse.self, from: response.body)
                guard case .base64(let text) = body.data[0].embedding, let data = Data(base64Encoded: text) else {
                    Issue.record("not base64")
                    return
                }
                let decoded = data.withUnsafeBytes { raw in
                    (0..<data.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
                }
                #expect(decoded == floats)
            }
        }
        await app.auditLog.drain()
        let rows = try await app.store.recent(limit: 10)
        #expect(rows.count == 2)
        #expect(rows.allSatisfy { $0.endpoint == "embeddings" && $0.status == 200 && $0.tokensIn > 0 })
    }

    /// Embeddings run through the same stages as chat: input guardrails, routing, admission,
    /// retries with the breaker, the ledger and the audit row.
    @Test func embeddingsGoThroughThePipeline() async throws {
        let yaml = TestApp.yaml + """

            routing: { backoff_ms: 1 }
            guardrails:
              policies:
                default:
                  input:
                    pii: { action: redact }
                    ban_list: { action: block, words: ["project bluebird"] }
            """
        let app = try await TestApp.build(yaml: yaml)
        try await app.http.test(.router) { client in
            // The first upstream call fails with a 500: the invoker tries again.
            let headers: HTTPFields = [
                HTTPField.Name("x-request-id")!: "e-1", HTTPField.Name("x-sim-fault")!: "500", HTTPField.Name("x-sim-fault-attempts")!: "1",
            ]
            let redacted = try await client.execute(
                uri: "/v1/embeddings", method: .post, headers: headers,
                body: ByteBuffer(string: #"{"model":"sim-embed","input":["write to jane.doe@example.com"]}"#)
            ) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                #expect(response.headers[HTTPField.Name("x-sluice-attempts")!] == "2")
                #expect(response.headers[HTTPField.Name("x-sluice-model")!] == "sim-embed")
                #expect(response.headers[HTTPField.Name("x-sluice-cost-usd")!] != nil)
                return try JSONCoding.decode(EmbeddingsResponse.self, from: response.body).data[0].embedding
            }
            // What was embedded is the redacted text, not the address.
            try await client.execute(
                uri: "/v1/embeddings", method: .post, body: ByteBuffer(string: #"{"model":"sim-embed","input":["write to jane.doe@example.com"]}"#)
            ) { response in
                let embedding = try JSONCoding.decode(EmbeddingsResponse.self, from: response.body).data[0].embedding
                #expect(embedding == redacted)
            }
            try await client.execute(
                uri: "/v1/embeddings", method: .post, body: ByteBuffer(string: #"{"model":"sim-embed","input":["write to someone else entirely"]}"#)
            ) { response in
                let embedding = try JSONCoding.decode(EmbeddingsResponse.self, from: response.body).data[0].embedding
                #expect(embedding != redacted)
            }
            try await client.execute(
                uri: "/v1/embeddings", method: .post, body: ByteBuffer(string: #"{"model":"sim-embed","input":["about Project Bluebird"]}"#)
            ) { response in
                #expect(response.status == .badRequest)
                #expect(response.body.json?["error"]?["code"] == "guardrail_blocked")
                #expect(response.body.json?["error"]?["param"] == "input[0]")
            }
            try await client.execute(
                uri: "/v1/embeddings", method: .post, body: ByteBuffer(string: #"{"model":"sim-small","input":["x"]}"#)
            ) { response in
                #expect(response.status == .badRequest)
                #expect(response.body.json?["error"]?["message"]?.stringValue?.contains("chat model") == true)
            }
        }
        await app.auditLog.drain()
        let row = try #require(try await app.store.recent(limit: 10).first { $0.id == "e-1" })
        #expect(row.endpoint == "embeddings" && row.status == 200 && row.deployment == "sim-embed")
        #expect(row.attempts == 2)
        #expect(row.details.attempts.map(\.status) == [500, 200])
        #expect(row.details.guardrails.contains { $0.direction == "input" && $0.type == "EMAIL" && $0.action == "redact" })
        #expect(row.tokensIn > 0 && row.tokensOut == 0)
        #expect(abs(row.costUSD - Double(row.tokensIn) * 0.5 / 1_000_000) < 1e-15)
    }
}
