import Foundation
import Logging
import SluiceCore
import SluiceEvaluation
import Synchronization

/// This server's own pipeline as an evaluation's target (`POST /admin/evals`): each case is a
/// flow run through every stage, as `evals.run`, by the evaluations' own key; judges and
/// embeddings go through the pipeline too.
struct PipelineEvalTarget: EvalTarget {
    let pipeline: Pipeline
    let judges: Judges
    /// The evaluations' key, made the first time an evaluation runs.
    let principal: LazyPrincipal
    let logger: Logger

    func context(_ endpoint: String) async throws -> InferenceContext {
        var context = InferenceContext(
            requestID: "eval-" + UUID().uuidString.lowercased(), endpoint: endpoint, logger: logger, receivedAtUnix: Date().timeIntervalSince1970)
        context.principal = try await principal.get()
        context.deadline = .now + .seconds(300)
        return context
    }

    func run(flow: String, input: JSONValue, variant: EvalVariant) async -> EvalAnswer {
        var request = InferenceRequest(chat: ChatCompletionRequest(model: "flow:\(flow)", messages: []))
        var run = FlowRun(name: flow, version: variant.version, input: input)
        run.model = variant.model
        request.flow = run
        let flowRequest = request
        let start = ContinuousClock.now
        func elapsed() -> Double {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
        }
        let context: InferenceContext
        do {
            context = try await self.context(EvalJobs.endpoint)
        } catch {
            return EvalAnswer(output: "", latencyMs: 0, costUSD: 0, error: "the evaluations' key: \(error)")
        }
        do {
            let response = try await withTimeLimit(.seconds(300), timeoutError: { SluiceError(.upstreamTimeout, "The case took more than 300 s.") }) {
                try await pipeline.run(flowRequest, context: context)
            }
            guard case .completion(let result) = response else { return EvalAnswer(output: "", latencyMs: elapsed(), costUSD: 0, error: "not a completion") }
            let text = try result.answerText().first?.content ?? ""
            return EvalAnswer(output: text, latencyMs: elapsed(), costUSD: context.ledger.settlement?.costUSD ?? 0)
        } catch let error as SluiceError {
            return EvalAnswer(output: "", latencyMs: elapsed(), costUSD: context.ledger.settlement?.costUSD ?? 0, error: "\(error.httpStatus): \(error.message)")
        } catch {
            return EvalAnswer(output: "", latencyMs: elapsed(), costUSD: 0, error: "\(error)")
        }
    }

    func judge(_ name: String, _ c: JudgeCase) async throws -> (score: Double, reason: String) {
        let s = try await judges.score(judge: name, c, principal: try await principal.get())
        return (s.score, s.reason)
    }

    func embed(model: String, texts: [String]) async throws -> [[Double]] {
        let response = try await pipeline.run(
            InferenceRequest(embeddings: EmbeddingsRequest(model: model, input: .strings(texts))), context: try await context("evals.embeddings"))
        guard case .embeddings(let e) = response else { return [] }
        return e.data.sorted { $0.index < $1.index }.map { item in
            if case .float(let f) = item.embedding { return f.map(Double.init) }
            return []
        }
    }
}

/// A service key's principal, made on first use (a server that never runs an evaluation has no
/// evaluations' key).
final class LazyPrincipal: Sendable {
    private let made = Mutex<Principal?>(nil)
    private let make: @Sendable () async throws -> Principal?

    init(_ make: @escaping @Sendable () async throws -> Principal?) { self.make = make }

    func get() async throws -> Principal? {
        if let p = made.withLock({ $0 }) { return p }
        let p = try await make()
        made.withLock { $0 = p }
        return p
    }
}
