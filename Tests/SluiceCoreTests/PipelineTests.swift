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

/// A stage that runs the rest of the pipeline twice, as a retry would.
struct TwiceStage: InferenceStage {
    func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        _ = try await next(request, context)
        return try await next(request, context)
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

    @Test func aStageCanRunTheRestAgainAndNoStagesReachTheTerminal() async throws {
        let log = Mutex<[String]>.Box()
        let terminal = InferenceHandler { _, _ in
            log.append("terminal")
            return .completion(ChatResult(completion: ChatCompletion(id: "x", created: 0, model: "m", choices: [], usage: nil)))
        }
        let pipeline = Pipeline(stages: [NotingStage(name: "a", log: log), TwiceStage(), NotingStage(name: "b", log: log)], terminal: terminal)
        _ = try await pipeline.run(request, context: context)
        #expect(log.all == ["a in", "b in", "terminal", "b out", "b in", "terminal", "b out", "a out"])
        #expect(pipeline.stageNames == ["NotingStage", "TwiceStage", "NotingStage"])

        let bare = Pipeline(stages: [], terminal: terminal)
        _ = try await bare.run(request, context: context)
        #expect(log.all.suffix(1) == ["terminal"])
        #expect(log.all.count == 9)
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

    @Test func anObservedStreamDroppedUnreadIsReportedCancelled() async throws {
        let chunk = ChatCompletionChunk(id: "c", created: 0, model: "m", choices: [])
        let outcomes = Mutex<[String]>.Box()
        do {
            let stream = ChatStream(events: [ChatStreamEvent(chunk: chunk)])
                .observed(onEvent: { _ in outcomes.append("event") }, onFinish: { outcomes.append("\($0)") })
            _ = stream
        }
        #expect(outcomes.all == ["cancelled"])

        // Read to the end, then dropped: finished once, nothing more.
        let read = Mutex<[String]>.Box()
        do {
            let stream = ChatStream(events: [ChatStreamEvent(chunk: chunk)])
                .observed(onEvent: { _ in read.append("event") }, onFinish: { read.append("\($0)") })
            for try await _ in stream {}
        }
        #expect(read.all == ["event", "finished"])
    }
}

@Suite struct UsageLedgerTests {
    let small = Price(inputPerMTok: 1, outputPerMTok: 2)
    let large = Price(inputPerMTok: 10, outputPerMTok: 20)

    @Test func settlingSumsEachChargeAtItsOwnPriceOnce() async throws {
        let limiter = LocalUsageLimiter(ledger: nil, clock: { 1_000_000 })
        let scope = AdmissionRequest.Scope(id: "key:k", limits: Limits(tpm: 10_000, maxConcurrent: 1))
        let grant = try await limiter.admit(AdmissionRequest(scopes: [scope], tokens: 500, costUSD: 1))
        let ledger = UsageLedger()
        ledger.hold(grant, from: limiter)
        #expect(ledger.isHolding)
        ledger.charge(Usage(promptTokens: 100, completionTokens: 10), deployment: "a", price: small)
        ledger.charge(Usage(promptTokens: 200, completionTokens: 20), deployment: "b", price: large)
        let settlement = ledger.settle()
        #expect(settlement.usage == Usage(promptTokens: 300, completionTokens: 30))
        let cost: Double = (100 + 20 + 2_000 + 400) / 1_000_000
        #expect(abs(settlement.costUSD - cost) < 1e-15)
        #expect(limiter.inFlight("key:k") == 0)
        #expect(limiter.window("key:k").tokens == 330)
        #expect(abs(limiter.daySpend("key:k").spent - cost) < 1e-15)

        // Settling again changes nothing; a late charge is not counted.
        ledger.charge(Usage(promptTokens: 1_000, completionTokens: 1_000), deployment: "a", price: small)
        let again = ledger.settle()
        #expect(again.usage == settlement.usage)
        #expect(limiter.window("key:k").tokens == 330)
        #expect(abs(limiter.daySpend("key:k").spent - cost) < 1e-15)
        #expect(limiter.inFlight("key:k") == 0)
    }

    @Test func aStreamIsChargedWhatItReportedOrWhatItSent() async throws {
        let reported = UsageLedger()
        let charge = reported.openCharge(deployment: "a", price: small, promptEstimate: 50)
        var chunk = ChunkSummary()
        chunk.outputBytes = 40
        charge.observe(chunk)
        var last = ChunkSummary()
        last.usage = Usage(promptTokens: 42, completionTokens: 9)
        charge.observe(last)
        #expect(reported.settle().usage == Usage(promptTokens: 42, completionTokens: 9))

        // Abandoned before the upstream said: the prompt estimate and a token per 4 bytes sent.
        let abandoned = UsageLedger()
        let partial = abandoned.openCharge(deployment: "a", price: small, promptEstimate: 50)
        partial.observe(chunk)
        partial.observe(chunk)
        #expect(abandoned.settle().usage == Usage(promptTokens: 50, completionTokens: 20))

        // Nothing charged (a cache hit): no usage, no cost.
        let none = UsageLedger().settle()
        #expect(none.usage == nil && none.costUSD == 0)
    }
}
