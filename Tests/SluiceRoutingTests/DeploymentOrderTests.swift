import SluiceCore
import Testing

@testable import SluiceRouting

/// A provider that is never called: ordering only reads names, prices and the board.
struct IdleProvider: ChatProvider {
    func complete(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatResult {
        throw SluiceError(.internalError, "not called")
    }
    func stream(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatStream {
        throw SluiceError(.internalError, "not called")
    }
    func checkHealth() async -> ProviderHealth { .healthy }
}

func deployment(_ name: String, input: Double = 1, output: Double = 1, window: Int? = nil) -> Deployment {
    Deployment(
        name: name, upstreamModel: name, providerName: "p", provider: IdleProvider(), price: Price(inputPerMTok: input, outputPerMTok: output),
        contextWindow: window)
}

/// A fixed sequence of "random" numbers, repeated.
final class Numbers: @unchecked Sendable {
    private var values: [Double]
    private var i = 0
    init(_ values: [Double]) { self.values = values }
    func next() -> Double {
        defer { i += 1 }
        return values[i % values.count]
    }
}

@Suite struct DeploymentOrderTests {
    let board = DeploymentBoard(names: ["a", "b", "c", "z"], breaker: BreakerConfig())

    @Test func weightedPicksInProportionToTheWeights() {
        let order = DeploymentOrder(
            strategy: .weighted, deployments: [deployment("a"), deployment("b")], weights: ["a": 3, "b": 1], board: board)
        var firsts: [String: Int] = [:]
        for _ in 0..<8000 {
            let c = order.ordered(promptTokens: 10, outputTokens: 10, streaming: false)
            firsts[c[0].name, default: 0] += 1
            #expect(c.map(\.name).sorted() == ["a", "b"])
        }
        let share = Double(firsts["a"] ?? 0) / 8000
        #expect(share > 0.72 && share < 0.78, "a weighs 3 of 4: \(share)")
    }

    @Test func aZeroWeightGoesLastButStaysAFallback() {
        let order = DeploymentOrder(
            strategy: .weighted, deployments: [deployment("a"), deployment("b")], weights: ["a": 0], board: board)
        for _ in 0..<100 {
            #expect(order.ordered(promptTokens: 1, outputTokens: 1, streaming: false).map(\.name) == ["b", "a"])
        }
    }

    @Test func leastBusyPrefersFewestInFlight() {
        let board = DeploymentBoard(names: ["a", "b", "c"], breaker: BreakerConfig())
        let order = DeploymentOrder(strategy: .leastBusy, deployments: [deployment("a"), deployment("b"), deployment("c")], board: board)
        for _ in 0..<3 { _ = board["a"]!.begin() }
        _ = board["c"]!.begin()
        #expect(order.ordered(promptTokens: 1, outputTokens: 1, streaming: false).map(\.name) == ["b", "c", "a"])
    }

    @Test func lowestLatencyUsesTheRightAverageAndExplores() {
        let board = DeploymentBoard(names: ["a", "b", "c"], breaker: BreakerConfig())
        let order = DeploymentOrder(
            strategy: .lowestLatency, deployments: [deployment("a"), deployment("b"), deployment("c")], board: board, explorationRate: 0.1)
        for (name, whole, ttft) in [("a", 300, 50), ("b", 100, 400), ("c", 200, 200)] {
            _ = board[name]!.begin()
            board[name]!.finish(.success(latency: .milliseconds(whole), streamed: false))
            _ = board[name]!.begin()
            board[name]!.finish(.success(latency: .milliseconds(ttft), streamed: true))
        }
        let noExplore = Numbers([0.5])
        #expect(order.ordered(promptTokens: 1, outputTokens: 1, streaming: false, random: noExplore.next).map(\.name) == ["b", "c", "a"])
        #expect(order.ordered(promptTokens: 1, outputTokens: 1, streaming: true, random: noExplore.next).map(\.name) == ["a", "c", "b"])
        // Three tie-break draws, then the exploration draw (under 0.1), then the pick among the rest.
        let explore = Numbers([0.5, 0.5, 0.5, 0.05, 0.99])
        #expect(order.ordered(promptTokens: 1, outputTokens: 1, streaming: false, random: explore.next).map(\.name) == ["a", "c", "b"])
    }

    @Test func anUnmeasuredDeploymentIsTriedFirst() {
        let board = DeploymentBoard(names: ["a", "b"], breaker: BreakerConfig())
        _ = board["a"]!.begin()
        board["a"]!.finish(.success(latency: .milliseconds(1), streamed: false))
        let order = DeploymentOrder(strategy: .lowestLatency, deployments: [deployment("a"), deployment("b")], board: board, explorationRate: 0)
        #expect(order.ordered(promptTokens: 1, outputTokens: 1, streaming: false).first?.name == "b")
    }

    @Test func cheapestPricesThisRequest() {
        // a is cheap on input, b on output: a long prompt favours a, a long answer b.
        let order = DeploymentOrder(
            strategy: .cheapest, deployments: [deployment("a", input: 1, output: 10), deployment("b", input: 5, output: 2)], board: board)
        #expect(order.ordered(promptTokens: 10_000, outputTokens: 100, streaming: false).map(\.name) == ["a", "b"])
        #expect(order.ordered(promptTokens: 100, outputTokens: 10_000, streaming: false).map(\.name) == ["b", "a"])
    }

    @Test func openBreakersGoBehindAndFallbacksLast() {
        var breaker = BreakerConfig()
        breaker.failures = 1
        let board = DeploymentBoard(names: ["a", "b", "z"], breaker: breaker)
        _ = board["a"]!.begin()
        board["a"]!.finish(.failure)
        let order = DeploymentOrder(
            strategy: .ordered, deployments: [deployment("a"), deployment("b")], fallbacks: [deployment("b"), deployment("z")], board: board)
        #expect(order.ordered(promptTokens: 1, outputTokens: 1, streaming: false).map(\.name) == ["b", "a", "z"])
    }

    @Test func thePreferredDeploymentGoesFirst() {
        let order = DeploymentOrder(strategy: .complexity, deployments: [deployment("a"), deployment("b")], board: board)
        #expect(order.ordered(promptTokens: 1, outputTokens: 1, streaming: false, preferred: "b").map(\.name) == ["b", "a"])
        #expect(order.ordered(promptTokens: 1, outputTokens: 1, streaming: false, preferred: "a").map(\.name) == ["a", "b"])
    }
}

@Suite struct ComplexityClassifierTests {
    func request(_ text: String, turns: Int = 1) -> ChatCompletionRequest {
        var messages: [ChatMessage] = []
        for i in 0..<(turns - 1) { messages.append(.init(role: i % 2 == 0 ? .user : .assistant, text: "earlier turn \(i)")) }
        messages.append(.init(role: .user, text: text))
        return ChatCompletionRequest(model: "m", messages: messages)
    }

    @Test func featuresSeparateSmallTalkFromHardWork() async throws {
        let classifier = try await ComplexityClassifier(threshold: 0.5, exampleWeight: 0, examples: [], embedder: nil)
        for easy in ["Hi there!", "What is the capital of France?", "Translate 'good morning' into Spanish.", "Thanks, that helps."] {
            let d = await classifier.decide(request(easy))
            #expect(!d.strong, "\(easy): \(d.score)")
        }
        for hard in [
            "Implement a thread-safe LRU cache in Swift with O(1) get and put, explain the concurrency trade-offs, and write unit tests.",
            "Prove by induction that the sum of the first n odd numbers equals n², then derive a closed form for the sum of squares.",
            "First analyze the failure modes of this architecture, then propose a migration plan in three stages; you must keep the API stable and avoid downtime.",
        ] {
            let d = await classifier.decide(request(hard))
            #expect(d.strong, "\(hard): \(d.score)")
            #expect(d.exampleScore == nil)
        }
    }

    @Test func featureCountsAreWhatTheTextSays() {
        let f = ComplexityFeatures(text: "First, write a Python function.\n1. parse\n2. validate\n```\ndef f(): return 1\n```", turns: 3)
        #expect(f.codeSignals >= 5)  // fence (3), "def ", "return ", python, function
        #expect(f.stepSignals >= 3)  // two numbered lines and "first"
        #expect(f.turns == 3)
        #expect(ComplexityFeatures(text: "hello", turns: 1).score < 0.2)
    }

    @Test func neighboursPullTheScoreTowardTheirLabel() async throws {
        // A toy embedding: one axis per topic word, so neighbours are exactly the same topic.
        let embedder: ComplexityClassifier.Embedder = { texts in
            texts.map { t in [t.contains("weather") ? 1 : 0, t.contains("kernel") ? 1 : 0, 0.01] }
        }
        let examples: [ComplexityRoutingConfig.LabelledExample] = [
            .init(text: "weather today", label: "simple"), .init(text: "weather tomorrow", label: "simple"),
            .init(text: "kernel panic", label: "strong"), .init(text: "kernel scheduler", label: "strong"),
        ]
        let classifier = try await ComplexityClassifier(threshold: 0.5, exampleWeight: 0.8, examples: examples, embedder: embedder, neighbours: 2)
        let kernel = await classifier.decide(request("kernel oops"))
        #expect(kernel.exampleScore == 1)
        #expect(kernel.strong)
        let weather = await classifier.decide(request("weather in Paris"))
        #expect(weather.exampleScore == 0)
        #expect(!weather.strong)
        #expect(abs(kernel.score - (0.8 + 0.2 * kernel.featureScore)) < 1e-9)
    }

    /// With an embedding model and no examples, the trained head scores the embedding; an
    /// embedding of another model's size leaves the features alone.
    @Test func withoutExamplesTheHeadScoresTheEmbedding() async throws {
        let head = ComplexityHead(weights: [8, -8], bias: 0)
        #expect(head.score([1, 0])! > 0.99 && head.score([0, 1])! < 0.01 && head.score([1, 0, 0]) == nil)
        let embedder: ComplexityClassifier.Embedder = { texts in texts.map { $0.contains("prove") ? [1, 0] : [0, 1] } }
        let classifier = try await ComplexityClassifier(threshold: 0.5, exampleWeight: 0.9, examples: [], embedder: embedder, head: head)
        let hard = await classifier.decide(request("prove it"))
        let easy = await classifier.decide(request("hello there"))
        #expect(hard.strong && hard.exampleScore! > 0.99 && !easy.strong && easy.exampleScore! < 0.01)
        let otherModel: ComplexityClassifier.Embedder = { texts in texts.map { _ in [1, 0, 0] } }
        let features = try await ComplexityClassifier(threshold: 0.5, exampleWeight: 0.9, examples: [], embedder: otherModel, head: head)
        let d = await features.decide(request("prove it"))
        #expect(d.exampleScore == nil && d.score == d.featureScore)
    }

    @Test func anEmbeddingFailureFallsBackToTheFeatures() async throws {
        let calls = Numbers([0])
        let embedder: ComplexityClassifier.Embedder = { texts in
            if texts.count == 1 && texts[0] == "boom" { _ = calls.next(); throw SluiceError(.upstreamError, "down") }
            return texts.map { _ in [1, 0] }
        }
        let classifier = try await ComplexityClassifier(
            threshold: 0.5, exampleWeight: 0.9, examples: [.init(text: "x", label: "strong")], embedder: embedder)
        let d = await classifier.decide(request("boom"))
        #expect(d.exampleScore == nil)
        #expect(d.score == d.featureScore)
    }
}
