import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
@testable import SluiceServer

/// The semantic cache with `verify: model`: all-MiniLM-L6-v2 in process finds the candidate, and
/// the shipped paraphrase verifier reads both questions together before the candidate answers.
@Suite(.enabled(if: LocalModels.miniLMDirectory != nil, "needs SLUICE_MINILM_DIR (make test sets it)"))
struct ParaphraseVerifierServingTests {
    static func build() async throws -> SluiceApplication {
        try await LocalModels.build(
            yaml: LocalModels.simulatedWithMiniLM(
                models: "  - { name: sim, provider: sim, cache: { semantic: true, verify: model } }", rest: "cache: { embedding_model: all-minilm-l6-v2 }"))
    }

    static func ask(_ client: some TestClientProtocol, _ question: String) async throws -> String? {
        let body = ByteBuffer(string: #"{"model":"sim","temperature":0,"messages":[{"role":"user","content":"\#(question)"}]}"#)
        return try await client.execute(uri: "/v1/chat/completions", method: .post, body: body) { response in
            #expect(response.status == .ok)
            return response.headers[HTTPField.Name("x-sluice-cache")!]
        }
    }

    @Test func aParaphraseHitsAndASwapOrANewNumberDoesNot() async throws {
        let app = try await Self.build()
        try await app.http.test(.router) { client in
            #expect(try await Self.ask(client, "How do I reset my password?") == "miss")
            #expect(try await Self.ask(client, "How can I reset my password?") == "semantic-hit")
            // The question check (verify: rule) turns this one away, since "Python" moved.
            #expect(try await Self.ask(client, "What is the best way to sort a list in Python?") == "miss")
            #expect(try await Self.ask(client, "In Python, what is the best way to sort a list?") == "semantic-hit")
            // Nearly the same words, another meaning: close in the embedding (cosine 0.99 and
            // 0.87), turned away by the verifier.
            #expect(try await Self.ask(client, "Did Anna beat Tom at chess?") == "miss")
            #expect(try await Self.ask(client, "Did Tom beat Anna at chess?") == "miss")
            #expect(try await Self.ask(client, "How many calories are in 2 eggs?") == "miss")
            #expect(try await Self.ask(client, "How many calories are in 3 eggs?") == "miss")
            let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            #expect(metrics.contains(#"sluice_cache_lookups_total{result="semantic-rejected"}"#))
        }
    }
}
