import Logging
import SluiceCore
import Synchronization
import Testing
@testable import SluiceCache

/// `verify: model` in the stage itself: the verifier is asked about each semantic candidate (the
/// cached question first), its no is a miss, and its failure costs the hit but not the request.
@Suite struct CacheStageVerifierTests {
    enum VerifierDown: Error { case down }

    /// How many requests reached the model.
    final class Answers: Sendable {
        let count = Atomic<Int>(0)
        var value: Int { count.load(ordering: .relaxed) }
    }

    /// The questions the verifier was asked about, in order.
    final class Asked: Sendable {
        let pairs = Mutex<[String]>([])
    }

    /// Every text embeds alike, so every stored entry is a candidate for every question.
    static func stage(verifier: @escaping ResponseCache.Verifier) -> CacheStage {
        let cache = ResponseCache(
            config: CacheConfig(), store: nil, embedder: { texts in texts.map { _ in [1, 0, 0] } }, verifier: verifier, logger: Logger(label: "test"))
        return CacheStage(cache: cache)
    }

    static func ask(_ stage: CacheStage, _ question: String, answers: Answers) async throws -> CacheStatus {
        var request = InferenceRequest(chat: ChatCompletionRequest(model: "m", messages: [.init(role: .user, text: question)], temperature: 0))
        var rule = CacheRuleConfig(semantic: true)
        rule.verify = .model
        request.cacheRule = rule
        let context = InferenceContext(requestID: question, endpoint: "test", logger: Logger(label: "t"), receivedAtUnix: 0)
        _ = try await stage.handle(
            request, context: context,
            next: InferenceHandler { _, _ in
                answers.count.add(1, ordering: .relaxed)
                let message = AssistantMessage(content: "an answer")
                return .completion(ChatResult(completion: ChatCompletion(id: "x", created: 0, model: "m", choices: [.init(index: 0, message: message, finishReason: "stop")], usage: nil)))
            })
        return context.facts[\.cache].status
    }

    @Test func theVerifiersAnswerDecidesACandidate() async throws {
        let asked = Asked()
        let stage = Self.stage { cached, new in
            asked.pairs.withLock { $0.append("\(cached) | \(new)") }
            return new.hasPrefix("same")
        }
        let answers = Answers()
        #expect(try await Self.ask(stage, "first question", answers: answers) == .miss)
        #expect(try await Self.ask(stage, "same, reworded", answers: answers) == .semanticHit)
        #expect(try await Self.ask(stage, "another question", answers: answers) == .miss)
        #expect(answers.value == 2)
        #expect(asked.pairs.withLock { $0 }.first == "first question | same, reworded")
    }

    @Test func aFailingVerifierIsAMissNotAnError() async throws {
        let stage = Self.stage { _, _ in throw VerifierDown.down }
        let answers = Answers()
        #expect(try await Self.ask(stage, "first question", answers: answers) == .miss)
        #expect(try await Self.ask(stage, "same question", answers: answers) == .miss)
        #expect(answers.value == 2)
    }
}
