import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
@testable import SluiceServer

/// Four stages embed a request's last user message with the same MiniLM entry — denied topics
/// and the injection classifier in the input check, the semantic cache, complexity routing — and
/// the encoder runs once for them (`RecentEmbeddings`), as `/metrics` counts.
@Suite(.enabled(if: LocalModels.miniLMDirectory != nil, "needs SLUICE_MINILM_DIR (make test sets it)"))
struct SharedEmbeddingServingTests {
    /// The entry's name is this suite's own, so other suites' requests do not move its counters.
    static let model = "minilm-shared-embedding-test"

    static func build() async throws -> SluiceApplication {
        try await LocalModels.build(
            yaml: LocalModels.simulatedWithMiniLM(
                models: "  - { name: cheap, provider: sim }\n  - { name: strong, provider: sim }", embeddingName: model,
                rest: """
                    aliases:
                      smart: { strategy: complexity, complexity: { cheap: cheap, strong: strong, embedding_model: \(model) }, cache: { exact: false, semantic: true } }
                    cache: { embedding_model: \(model) }
                    guardrails:
                      policies:
                        default:
                          input:
                            injection: { classifier: { model: \(model) } }
                            topics: { action: block, threshold: 0.6, model: \(model), denied: { weapons: ["where can I buy an untraceable gun"] } }
                    """))
    }

    /// The counter's value for `result`, 0 before its first increment.
    static func count(_ metrics: String, _ result: String) -> Int {
        for line in metrics.split(separator: "\n") where line.hasPrefix("sluice_internal_embeddings_total{")
            && line.contains(#"model="\#(model)""#) && line.contains(#"result="\#(result)""#)
        {
            return Int(Double(line.split(separator: " ").last ?? "") ?? -1)
        }
        return 0
    }

    @Test func fourStagesShareOneEncoderPassPerMessage() async throws {
        let app = try await Self.build()
        try await app.http.test(.router) { client in
            func ask(_ question: String) async throws {
                let body = ByteBuffer(string: #"{"model":"smart","temperature":0,"messages":[{"role":"user","content":"\#(question)"}]}"#)
                try await client.execute(uri: "/v1/chat/completions", method: .post, body: body) { response in
                    #expect(response.status == .ok, "\(String(buffer: response.body))")
                }
            }
            func counts() async throws -> (computed: Int, shared: Int) {
                let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
                return (Self.count(metrics, "computed"), Self.count(metrics, "shared"))
            }
            // The first request also embeds the topic's example, once. (Temperature 0: the cache keeps
            // only answers asked for deterministically.)
            try await ask("How do I reset my password?")
            let before = try await counts()
            try await ask("What is the capital of Australia?")
            let after = try await counts()
            #expect(after.computed - before.computed == 1, "\(before) → \(after)")
            #expect(after.shared - before.shared == 3, "\(before) → \(after)")
        }
    }
}
