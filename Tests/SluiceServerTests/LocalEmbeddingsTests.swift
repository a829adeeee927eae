import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
@testable import SluiceServer

/// `POST /v1/embeddings` served by all-MiniLM-L6-v2 in process (`kind: minilm`).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["SLUICE_MINILM_DIR"] != nil, "needs SLUICE_MINILM_DIR (make test sets it)"))
struct LocalEmbeddingsTests {
    /// The test config with a minilm provider and `models` (YAML flow entries) added.
    static func yaml(models: String) -> String {
        let dir = ProcessInfo.processInfo.environment["SLUICE_MINILM_DIR"]!
        return TestApp.yaml
            .replacingOccurrences(of: "providers:\n", with: "providers:\n  local: { kind: minilm, model_path: \"\(dir)\", max_input_tokens: 300 }\n")
            .replacingOccurrences(of: "models:\n", with: "models:\n  - \(models)\n")
    }

    static func build() async throws -> SluiceApplication {
        try await TestApp.build(yaml: yaml(models: "{ name: all-minilm-l6-v2, provider: local, type: embedding }"))
    }

    func vectors(_ body: ByteBuffer) throws -> [[Double]] {
        let data = try #require(body.json?["data"]?.arrayValue)
        return try data.map { item in try #require(item["embedding"]?.arrayValue).map { $0.doubleValue ?? .nan } }
    }

    static func cosine(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } / (a.reduce(0) { $0 + $1 * $1 }.squareRoot() * b.reduce(0) { $0 + $1 * $1 }.squareRoot())
    }

    @Test func servesUnitVectorsWithUsage() async throws {
        let app = try await Self.build()
        try await app.http.test(.router) { client in
            let body = #"{"model":"all-minilm-l6-v2","input":["How do I learn the guitar?","What is the best way to learn to play guitar?","The central bank raised interest rates."]}"#
            try await client.execute(uri: "/v1/embeddings", method: .post, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .ok)
                let v = try vectors(response.body)
                #expect(v.count == 3 && v[0].count == 384)
                #expect(abs(v[0].reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
                #expect(Self.cosine(v[0], v[1]) > Self.cosine(v[0], v[2]) + 0.3)
                #expect((response.body.json?["usage"]?["prompt_tokens"]?.intValue ?? 0) > 20)
            }
            // One string in, base64 out: the same vector.
            try await client.execute(
                uri: "/v1/embeddings", method: .post,
                body: ByteBuffer(string: #"{"model":"all-minilm-l6-v2","input":"How do I learn the guitar?","encoding_format":"base64"}"#)
            ) { response in
                #expect(response.status == .ok)
                let b64 = try #require(response.body.json?["data"]?[0]?["embedding"]?.stringValue)
                #expect(Data(base64Encoded: b64)?.count == 384 * 4)
            }
        }
    }

    @Test(arguments: [
        (#"{"model":"all-minilm-l6-v2","input":[]}"#, "input"),
        (#"{"model":"all-minilm-l6-v2","input":["ok", 5]}"#, "input"),
        (#"{"model":"all-minilm-l6-v2","input":[[101, 2000]]}"#, "input"),
        (#"{"model":"all-minilm-l6-v2","input":"x","dimensions":100}"#, "dimensions"),
        ("{\"model\":\"all-minilm-l6-v2\",\"input\":\"" + String(repeating: "word ", count: 400) + "\"}", "input"),
    ]) func refusesBadInput(body: String, param: String) async throws {
        let app = try await Self.build()
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/v1/embeddings", method: .post, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .badRequest, "\(String(buffer: response.body))")
                #expect(response.body.json?["error"]?["param"]?.stringValue == param)
            }
        }
    }

    @Test func aChatModelCannotNameAnEmbeddingsOnlyProvider() {
        let yaml = Self.yaml(models: "{ name: wrong, provider: local }")
        #expect(throws: ConfigErrors.self) { try SluiceConfig.load(yaml: yaml, environment: [:]) }
    }
}
