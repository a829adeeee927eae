import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SluiceCore
import Testing
@testable import SluiceServer

/// `POST /v1/embeddings` served by all-MiniLM-L6-v2 in process (`kind: minilm`).
@Suite(.enabled(if: LocalModels.miniLMDirectory != nil, "needs SLUICE_MINILM_DIR (make test sets it)"))
struct LocalEmbeddingsTests {
    static func build() async throws -> SluiceApplication {
        try await LocalModels.build(yaml: yaml(models: "{ name: all-minilm-l6-v2, provider: local, type: embedding }"))
    }

    /// A MiniLM-only config with `models` (YAML flow entries).
    static func yaml(models: String) -> String {
        """
        store: { sqlite: ":memory:" }
        providers:
          local: { kind: minilm, model_path: "\(LocalModels.miniLMDirectory!)", max_input_tokens: 300 }
        models:
          - \(models)
        logging: { level: error }
        auth: { enabled: false }
        """
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

/// Paraphrase pairs embed closer than pairs that are not, measured over the team's labelled
/// pairs (`../shared/data/paraphrase/dev.jsonl`) when they are beside the checkout.
@Suite(.enabled(if: LocalModels.miniLMDirectory != nil && LocalModels.paraphrases != nil, "needs SLUICE_MINILM_DIR and the paraphrase dataset"))
struct ParaphraseSeparation {
    @Test func paraphrasesRankAboveNonParaphrases() async throws {
        let text = try String(contentsOf: LocalModels.paraphrases!, encoding: .utf8)
        var positives: [(String, String)] = []
        var negatives: [(String, String)] = []
        for line in text.split(separator: "\n") {
            guard let row = try? JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: String(line))),
                let a = row["a"]?.stringValue, let b = row["b"]?.stringValue, let label = row["label"]?.intValue
            else { continue }
            if label == 1, positives.count < 150 { positives.append((a, b)) }
            if label == 0, negatives.count < 150 { negatives.append((a, b)) }
        }
        #expect(positives.count >= 50 && negatives.count >= 50)
        let app = try await LocalEmbeddingsTests.build()
        func similarities(_ pairs: [(String, String)]) async throws -> [Double] {
            let provider = try #require(app.providers.embedding["local"])
            var out: [Double] = []
            for pair in pairs {
                let request = EmbeddingsRequest(model: "all-minilm-l6-v2", input: .strings([pair.0, pair.1]))
                let response = try await provider.embed(request, context: InferenceContext(requestID: "r", endpoint: "embeddings", logger: Logger(label: "t"), receivedAtUnix: 0))
                guard case .float(let a) = response.data[0].embedding, case .float(let b) = response.data[1].embedding else { continue }
                out.append(zip(a, b).reduce(0) { $0 + Double($1.0 * $1.1) })
            }
            return out
        }
        let pos = try await similarities(positives)
        let neg = try await similarities(negatives)
        // AUC: the chance a random paraphrase pair is closer than a random non-paraphrase pair.
        var wins = 0.0
        for p in pos { for n in neg { wins += p > n ? 1 : p == n ? 0.5 : 0 } }
        let auc = wins / Double(pos.count * neg.count)
        #expect(auc > 0.8, "AUC \(auc)")
    }
}
