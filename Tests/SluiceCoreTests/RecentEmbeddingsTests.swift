import Synchronization
import SluiceCore
import Testing

/// Stages that embed the same text with one deployment share one encoder pass.
@Suite struct RecentEmbeddingsTests {
    /// Counts the texts it embeds; each text's vector is its length and first byte.
    final class CountingProvider: EmbeddingProvider {
        let embedded = Mutex<[String]>([])
        func embed(_ request: EmbeddingsRequest, context: InferenceContext) async throws -> EmbeddingsResponse {
            guard case .strings(let texts) = request.input else { return EmbeddingsResponse(data: [], model: request.model, usage: EmbeddingUsage(promptTokens: 0)) }
            embedded.withLock { $0 += texts }
            let data = texts.enumerated().map { i, t in
                EmbeddingsResponse.Embedding(index: i, embedding: .float([Float(t.utf8.count), Float(t.utf8.first ?? 0)]))
            }
            return EmbeddingsResponse(data: data, model: request.model, usage: EmbeddingUsage(promptTokens: texts.count))
        }
    }

    static func deployment(_ provider: CountingProvider) -> Deployment {
        Deployment(name: "mini", upstreamModel: "mini", providerName: "local", serving: .embeddings(provider), price: .free)
    }

    @Test func everyEmbedderOfADeploymentSharesItsTexts() async throws {
        let provider = CountingProvider()
        let deployment = Self.deployment(provider)
        // As the input check, the cache and routing each take their own embedder at start.
        let topics = try #require(deployment.embedder)
        let cache = try #require(deployment.embedder)
        let first = try await topics(["How do I reset my password?"])
        let again = try await cache(["How do I reset my password?"])
        #expect(first == again)
        #expect(first == [[27, 72]])
        #expect(provider.embedded.withLock { $0 } == ["How do I reset my password?"])
        // A batch embeds only the texts not kept, and returns every vector in input order.
        let batch = try await cache(["b", "How do I reset my password?", "ccc"])
        #expect(batch == [[1, 98], [27, 72], [3, 99]])
        #expect(provider.embedded.withLock { $0 } == ["How do I reset my password?", "b", "ccc"])
    }

    @Test func theOldestTextGoesFirstAndLongTextsAreNotKept() async throws {
        let recent = RecentEmbeddings(capacity: 2, maxTextBytes: 4)
        let calls = Mutex(0)
        let embed: ([String]) async throws -> [[Float]] = { texts in
            calls.withLock { $0 += texts.count }
            return texts.map { [Float($0.utf8.count)] }
        }
        _ = try await recent.vectors(for: ["a", "bb", "ccc"], embed: embed)
        #expect(recent.count == 2)
        #expect(calls.withLock { $0 } == 3)
        // "a" went first; "bb" and "ccc" are kept.
        _ = try await recent.vectors(for: ["bb", "ccc"], embed: embed)
        #expect(calls.withLock { $0 } == 3)
        _ = try await recent.vectors(for: ["a"], embed: embed)
        #expect(calls.withLock { $0 } == 4)
        // Over maxTextBytes: embedded every time.
        _ = try await recent.vectors(for: ["long text"], embed: embed)
        _ = try await recent.vectors(for: ["long text"], embed: embed)
        #expect(calls.withLock { $0 } == 6)
        #expect(recent.count == 2)
    }

    @Test func aFailedEmbeddingKeepsNothing() async throws {
        struct Down: Error {}
        let recent = RecentEmbeddings()
        await #expect(throws: Down.self) { try await recent.vectors(for: ["x"]) { _ in throw Down() } }
        #expect(recent.count == 0)
    }
}
