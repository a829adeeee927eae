import Logging
import Synchronization
import Testing
@testable import SluiceCore

/// A stage that notes when it runs, to check the onion order.
struct NotingStage: InferenceStage {
    let name: String
    let log: Mutex<[String]>.Box

    func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        log.append("\(name) in")
        let response = try await next(request, context)
        log.append("\(name) out")
        return response
    }
}

/// A stage that answers without calling the rest.
struct ShortCircuitStage: InferenceStage {
    func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        .completion(ChatResult(completion: ChatCompletion(id: "early", created: 0, model: "m", choices: [], usage: nil)))
    }
}

extension Mutex where Value == [String] {
    final class Box: Sendable {
        let m = Mutex<[String]>([])
        func append(_ s: String) { m.withLock { $0.append(s) } }
        var all: [String] { m.withLock { $0 } }
    }
}

@Suite struct PipelineTests {
    let context = InferenceContext(requestID: "r", endpoint: "test", logger: Logger(label: "t"), receivedAtUnix: 0)
    let request = InferenceRequest(chat: ChatCompletionRequest(model: "m", messages: [.init(role: .user, text: "x")]))

    @Test func stagesRunInOnionOrder() async throws {
        let log = Mutex<[String]>.Box()
        let pipeline = Pipeline(
            stages: [NotingStage(name: "a", log: log), NotingStage(name: "b", log: log)],
            terminal: InferenceHandler { _, _ in
                log.append("terminal")
                return .completion(ChatResult(completion: ChatCompletion(id: "x", created: 0, model: "m", choices: [], usage: nil)))
            })
        _ = try await pipeline.run(request, context: context)
        #expect(log.all == ["a in", "b in", "terminal", "b out", "a out"])
    }

    @Test func aStageCanAnswerEarly() async throws {
        let log = Mutex<[String]>.Box()
        let pipeline = Pipeline(
            stages: [NotingStage(name: "a", log: log), ShortCircuitStage(), NotingStage(name: "never", log: log)],
            terminal: InferenceHandler { _, _ in
                log.append("terminal")
                throw SluiceError(.internalError, "unreachable")
            })
        guard case .completion(let result) = try await pipeline.run(request, context: context) else {
            Issue.record("expected a completion")
            return
        }
        #expect(try result.completion().id == "early")
        #expect(log.all == ["a in", "a out"])
    }

    @Test func observedStreamReportsEachEndOnce() async throws {
        let chunk = ChatCompletionChunk(id: "c", created: 0, model: "m", choices: [])
        let finished = Mutex<[String]>.Box()
        let stream = ChatStream(events: [ChatStreamEvent(chunk: chunk), ChatStreamEvent(chunk: chunk)])
            .observed(onEvent: { _ in finished.append("event") }, onFinish: { outcome in finished.append("\(outcome)") })
        for try await _ in stream {}
        #expect(finished.all == ["event", "event", "finished"])

        // Abandoned after one event: reported as cancelled when the iterator goes away.
        let abandoned = Mutex<[String]>.Box()
        do {
            let s = ChatStream(events: [ChatStreamEvent(chunk: chunk), ChatStreamEvent(chunk: chunk)])
                .observed(onEvent: { _ in abandoned.append("event") }, onFinish: { outcome in abandoned.append("\(outcome)") })
            var it = s.makeAsyncIterator()
            _ = try await it.next()
        }
        #expect(abandoned.all == ["event", "cancelled"])
    }
}
