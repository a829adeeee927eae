import Foundation
import NIOCore
import SluiceCore

/// One case of an evaluation dataset.
public struct EvalCase: Sendable, Hashable {
    public var id: String
    public var input: JSONValue
    public var reference: String?

    public init(id: String, input: JSONValue, reference: String? = nil) {
        self.id = id
        self.input = input
        self.reference = reference
    }

    /// Cases from JSON Lines: `{"id"?, "input": {…}, "reference"?}` per line (ids default to the line number).
    public static func parse(jsonLines text: String, source: String) throws -> [EvalCase] {
        var out: [EvalCase] = []
        var ids: Set<String> = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            guard let value = Array(trimmed.utf8).withUnsafeBytes({ JSONParser.parse($0) }) else {
                throw SluiceError(.invalidValue, "\(source) line \(i + 1): not JSON.")
            }
            let c = try EvalCase(json: value, fallbackID: String(i + 1), source: "\(source) line \(i + 1)")
            guard ids.insert(c.id).inserted else { throw SluiceError(.invalidValue, "\(source) line \(i + 1): the id '\(c.id)' is used twice.") }
            out.append(c)
        }
        guard !out.isEmpty else { throw SluiceError(.invalidValue, "\(source) has no cases.") }
        return out
    }

    public init(json: JSONValue, fallbackID: String, source: String) throws {
        guard case .object(let o) = json else { throw SluiceError(.invalidValue, "\(source): a case is a JSON object.") }
        for key in o.keys where !["id", "input", "reference"].contains(key) {
            throw SluiceError(.invalidValue, "\(source): unknown field '\(key)' (a case has id, input and reference).")
        }
        guard let input = o["input"], case .object = input else { throw SluiceError(.invalidValue, "\(source): needs an \"input\" object.") }
        let id: String
        switch o["id"] {
        case .string(let s)? where !s.isEmpty: id = s
        case .int(let n)?: id = String(n)
        case nil: id = fallbackID
        default: throw SluiceError(.invalidValue, "\(source): id must be a non-empty string or a number.")
        }
        var reference: String?
        switch o["reference"] {
        case .string(let s)?: reference = s
        case .object?, .array?: reference = EvalRunner.text(o["reference"])
        case nil, .null?: break
        default: reference = EvalRunner.text(o["reference"])
        }
        self.init(id: id, input: input, reference: reference)
    }
}

/// A flow run's outcome as an evaluation sees it.
public struct EvalAnswer: Sendable {
    public var output: String
    public var latencyMs: Double
    public var costUSD: Double
    /// Status and message, when the run failed.
    public var error: String?

    public init(output: String, latencyMs: Double, costUSD: Double, error: String? = nil) {
        self.output = output
        self.latencyMs = latencyMs
        self.costUSD = costUSD
        self.error = error
    }
}

/// What an evaluation runs against: a Sluice over HTTP (the CLI) or this server's own pipeline
/// (`POST /admin/evals`).
public protocol EvalTarget: Sendable {
    func run(flow: String, input: JSONValue, variant: EvalVariant) async -> EvalAnswer
    func judge(_ name: String, _ c: JudgeCase) async throws -> (score: Double, reason: String)
    func embed(model: String, texts: [String]) async throws -> [[Double]]
}

/// What to evaluate: the cases, the variants (versions × models), how to score, how many at once.
public struct EvalPlan: Sendable {
    public var flow: String
    public var cases: [EvalCase]
    public var variants: [EvalVariant]
    public var scorers: [Scorer]
    public var concurrency: Int
    /// Times each judge is asked about each answer (its agreement with itself is reported).
    public var judgeRuns: Int
    /// The flow's output schema, for `json_schema`.
    public var schema: JSONValue?

    public init(
        flow: String, cases: [EvalCase], variants: [EvalVariant], scorers: [Scorer], concurrency: Int = 4, judgeRuns: Int = 1, schema: JSONValue? = nil
    ) {
        self.flow = flow
        self.cases = cases
        self.variants = variants
        self.scorers = scorers
        self.concurrency = concurrency
        self.judgeRuns = judgeRuns
        self.schema = schema
    }

    /// A case and variant's key in a journal.
    public static func key(_ caseID: String, _ variant: String) -> String { caseID + "\u{1F}" + variant }
}

/// Runs every case through every variant, `concurrency` at a time, and scores each answer;
/// `done` are the keys already finished (a resumed run skips them), `onResult` sees each result
/// as it comes (the journal, the progress).
public enum EvalRunner {
    public static func run(
        _ plan: EvalPlan, target: any EvalTarget, done: Set<String> = [], onResult: @escaping @Sendable (EvalCaseResult) async throws -> Void
    ) async throws -> [EvalCaseResult] {
        let work = plan.cases.flatMap { c in plan.variants.map { (c, $0) } }.filter { !done.contains(EvalPlan.key($0.0.id, $0.1.name)) }
        return try await withThrowingTaskGroup(of: EvalCaseResult.self) { group in
            var results: [EvalCaseResult] = []
            var next = 0
            func start() {
                let (c, v) = work[next]
                next += 1
                group.addTask { await score(plan, c, v, target: target) }
            }
            for _ in 0..<min(max(1, plan.concurrency), work.count) { start() }
            while let r = try await group.next() {
                results.append(r)
                try await onResult(r)
                if next < work.count { start() }
            }
            return results
        }
    }

    static func score(_ plan: EvalPlan, _ c: EvalCase, _ v: EvalVariant, target: any EvalTarget) async -> EvalCaseResult {
        let inputText = text(c.input)
        let answer = await target.run(flow: plan.flow, input: c.input, variant: v)
        var result = EvalCaseResult(
            caseID: c.id, variant: v.name, input: inputText, reference: c.reference, output: answer.output, error: answer.error,
            latencyMs: answer.latencyMs, costUSD: answer.costUSD)
        guard answer.error == nil else { return result }
        for scorer in plan.scorers {
            if let s = scorer.score(output: answer.output, reference: c.reference, latencyMs: answer.latencyMs, costUSD: answer.costUSD, schema: plan.schema) {
                result.scores[scorer.name] = s
                continue
            }
            do {
                switch scorer {
                case .jsonSchema:
                    // Without the schema at hand: the flow answered JSON (the server checked it against its schema).
                    let parsed = Array(answer.output.utf8).withUnsafeBytes { JSONParser.parse($0) }
                    if case .object? = parsed { result.scores[scorer.name] = 1 } else { result.scores[scorer.name] = 0 }
                case .similarity(let model):
                    guard let reference = c.reference else { continue }
                    let vectors = try await target.embed(model: model, texts: [answer.output, reference])
                    guard vectors.count == 2 else { continue }
                    result.scores[scorer.name] = cosine(vectors[0], vectors[1])
                case .judge(let name):
                    var scores: [Double] = []
                    var reason = ""
                    for _ in 0..<max(1, plan.judgeRuns) {
                        let s = try await target.judge(name, JudgeCase(input: inputText, output: answer.output, reference: c.reference))
                        scores.append(s.score)
                        reason = s.reason
                    }
                    result.scores[scorer.name] = scores.reduce(0, +) / Double(scores.count)
                    if scores.count > 1 { result.repeats[scorer.name] = scores }
                    result.notes[scorer.name] = reason
                default: continue
                }
            } catch let error as SluiceError {
                result.notes[scorer.name] = "not scored: \(error.message)"
            } catch {
                result.notes[scorer.name] = "not scored: \(error)"
            }
        }
        return result
    }

    /// A JSON value as text (strings as they are).
    public static func text(_ v: JSONValue?) -> String {
        switch v {
        case .string(let s)?: return s
        case nil, .null?: return ""
        case let other?:
            var b = ByteBuffer()
            try? JSONWriter.write(other, to: &b)
            return String(buffer: b)
        }
    }

    static func cosine(_ a: [Double], _ b: [Double]) -> Double {
        guard a.count == b.count, !a.isEmpty else { return 0 }
        var dot = 0.0
        var na = 0.0
        var nb = 0.0
        for i in a.indices {
            dot += a[i] * b[i]
            na += a[i] * a[i]
            nb += b[i] * b[i]
        }
        return na > 0 && nb > 0 ? dot / (na.squareRoot() * nb.squareRoot()) : 0
    }
}
