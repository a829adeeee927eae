import Foundation
import Logging
import SluiceCore
import SluiceEvaluation

/// This server's own pipeline as an evaluation's target (`POST /admin/evals`): each case is a
/// flow run through every stage, as `evals.run`, by the evaluations' own key; judges and
/// embeddings go through the pipeline too.
struct PipelineEvalTarget: EvalTarget {
    let pipeline: Pipeline
    let judges: Judges
    let principal: Principal?
    let logger: Logger

    func context(_ endpoint: String) -> InferenceContext {
        var context = InferenceContext(
            requestID: "eval-" + UUID().uuidString.lowercased(), endpoint: endpoint, logger: logger, receivedAtUnix: Date().timeIntervalSince1970)
        context.principal = principal
        context.deadline = .now + .seconds(300)
        return context
    }

    func run(flow: String, input: JSONValue, variant: EvalVariant) async -> EvalAnswer {
        var request = InferenceRequest(chat: ChatCompletionRequest(model: "flow:\(flow)", messages: []))
        var run = FlowRun(name: flow, version: variant.version, input: input)
        run.model = variant.model
        request.flow = run
        let flowRequest = request
        let context = context(EvalJobs.endpoint)
        let start = ContinuousClock.now
        func elapsed() -> Double {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
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
        let s = try await judges.score(judge: name, c, principal: principal)
        return (s.score, s.reason)
    }

    func embed(model: String, texts: [String]) async throws -> [[Double]] {
        let response = try await pipeline.run(
            InferenceRequest(embeddings: EmbeddingsRequest(model: model, input: .strings(texts))), context: context("evals.embeddings"))
        guard case .embeddings(let e) = response else { return [] }
        return e.data.sorted { $0.index < $1.index }.map { item in
            if case .float(let f) = item.embedding { return f.map(Double.init) }
            return []
        }
    }
}
