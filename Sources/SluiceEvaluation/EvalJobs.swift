import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import SluiceCore
import SluiceStore
import Synchronization

/// What `POST /admin/evals` asks for: the same plan as `sluice eval run`, with its cases inline.
public struct EvalSpec: Sendable {
    public var flow: String
    public var cases: [EvalCase]
    public var versions: [Int?]
    public var models: [String?]
    public var scorers: [Scorer]
    public var concurrency: Int
    public var judgeRuns: Int
    public var gates: [EvalReport.Gate]
    public var margin: Double
    public var quality: String?
    public var maxP95Ms: Double?

    public var variants: [EvalVariant] { versions.flatMap { v in models.map { EvalVariant(version: v, model: $0) } } }

    /// Reads and checks a request body; `cases` may instead come from `file` (the text of an uploaded JSON Lines file).
    public init(json: JSONValue, file: (String) async throws -> String?) async throws {
        guard case .object(let o) = json else { throw SluiceError(.invalidType, "The body must be a JSON object.") }
        let known = ["flow", "cases", "file_id", "versions", "models", "scorers", "concurrency", "judge_runs", "gates", "margin", "quality", "max_p95_ms"]
        for key in o.keys where !known.contains(key) {
            throw SluiceError(.invalidValue, "Unknown field '\(key)' (fields: \(known.joined(separator: ", "))).", param: key)
        }
        guard let flow = o["flow"]?.stringValue, !flow.isEmpty else { throw SluiceError(.missingParameter, "flow is required.", param: "flow") }
        self.flow = flow
        switch (o["cases"], o["file_id"]?.stringValue) {
        case (.array(let items)?, nil):
            var ids: Set<String> = []
            cases = try items.enumerated().map { i, item in
                let c = try EvalCase(json: item, fallbackID: String(i + 1), source: "cases[\(i)]")
                guard ids.insert(c.id).inserted else { throw SluiceError(.invalidValue, "cases[\(i)]: the id '\(c.id)' is used twice.", param: "cases") }
                return c
            }
            guard !cases.isEmpty else { throw SluiceError(.invalidValue, "cases is empty.", param: "cases") }
        case (nil, let id?):
            guard let text = try await file(id) else { throw SluiceError(.notFound, "No file with id '\(id)'.", param: "file_id") }
            cases = try EvalCase.parse(jsonLines: text, source: "file \(id)")
        default:
            throw SluiceError(.invalidValue, "Give the cases inline (cases: [{input, reference?}]) or as an uploaded JSON Lines file (file_id), one of them.", param: "cases")
        }
        guard cases.count <= 10_000 else { throw SluiceError(.invalidValue, "At most 10,000 cases per evaluation.", param: "cases") }
        func list(_ name: String) throws -> [JSONValue]? {
            switch o[name] {
            case nil, .null?: return nil
            case .array(let a)?: return a
            default: throw SluiceError(.invalidType, "\(name) must be an array.", param: name)
            }
        }
        // null: the flow's active version (or its own model).
        versions = try list("versions").map { try $0.map { v -> Int? in
            if v == .null { return nil }
            guard let n = v.intValue, n >= 1 else { throw SluiceError(.invalidValue, "versions holds version numbers (1 or more).", param: "versions") }
            return n
        } } ?? [nil]
        models = try list("models").map { try $0.map { v -> String? in
            if v == .null { return nil }
            guard let m = v.stringValue, !m.isEmpty else { throw SluiceError(.invalidValue, "models holds model or alias names.", param: "models") }
            return m
        } } ?? [nil]
        guard !versions.isEmpty, !models.isEmpty else { throw SluiceError(.invalidValue, "versions and models must not be empty.", param: "versions") }
        scorers = try (list("scorers") ?? [.string("exact")]).map { v in
            guard let s = v.stringValue else { throw SluiceError(.invalidType, "scorers holds names such as exact or judge:NAME.", param: "scorers") }
            return try Scorer(parsing: s)
        }
        concurrency = o["concurrency"]?.intValue ?? 4
        guard (1...64).contains(concurrency) else { throw SluiceError(.invalidValue, "concurrency must be from 1 to 64.", param: "concurrency") }
        judgeRuns = o["judge_runs"]?.intValue ?? 1
        guard (1...10).contains(judgeRuns) else { throw SluiceError(.invalidValue, "judge_runs must be from 1 to 10.", param: "judge_runs") }
        gates = try (list("gates") ?? []).map { v in
            guard let s = v.stringValue else { throw SluiceError(.invalidType, "gates holds texts such as 'judge:helpful>=4'.", param: "gates") }
            return try EvalReport.Gate(parsing: s)
        }
        margin = o["margin"]?.doubleValue ?? 0.05
        guard margin >= 0 && margin < 1 else { throw SluiceError(.invalidValue, "margin must be in [0, 1).", param: "margin") }
        quality = o["quality"]?.stringValue
        if let quality, !scorers.contains(where: { $0.name == quality }) {
            throw SluiceError(.invalidValue, "quality must be one of the scorers.", param: "quality")
        }
        maxP95Ms = o["max_p95_ms"]?.doubleValue
        if let m = maxP95Ms, !(m > 0) { throw SluiceError(.invalidValue, "max_p95_ms must be more than 0.", param: "max_p95_ms") }
    }

    /// As stored with the run (cases inline), and read back when it resumes.
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "flow": .string(flow),
            "cases": .array(
                cases.map { c in .object(["id": .string(c.id), "input": c.input, "reference": c.reference.map(JSONValue.string) ?? .null]) }),
            "versions": .array(versions.map { $0.map(JSONValue.int) ?? .null }), "models": .array(models.map { $0.map(JSONValue.string) ?? .null }),
            "scorers": .array(scorers.map { .string($0.name) }), "concurrency": .int(concurrency), "judge_runs": .int(judgeRuns),
            "gates": .array(gates.map { .string($0.text) }), "margin": .double(margin),
        ]
        if let quality { o["quality"] = .string(quality) }
        if let maxP95Ms { o["max_p95_ms"] = .double(maxP95Ms) }
        return .object(o)
    }
}

/// Offline evaluations run by the server, one at a time, through its own pipeline: each finished
/// case is stored as it comes, so a run interrupted by a restart (or left by a replica that went
/// away) resumes where it stopped; progress and the report are read from the store.
public final class EvalJobs: Service, Sendable {
    /// The endpoint evaluation runs are recorded under; experiments and live judging leave them out.
    public static let endpoint = "evals.run"
    /// The header `sluice eval run` sends, for the same reason.
    public static let header = "x-sluice-evaluation"

    /// Whether a request is evaluation traffic (never assigned to an experiment nor sampled by a judge).
    public static func isEvaluation(_ context: InferenceContext) -> Bool {
        context.endpoint == endpoint || context.headers[header] != nil
    }

    let store: any QualityStore
    let target: any EvalTarget
    /// A flow's output schema and p95 objective, for `json_schema` and the recommendation.
    let flowFacts: @Sendable (String) -> (schema: JSONValue?, p95Ms: Double?)
    let logger: Logger
    private let queue: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation
    private let cancelled = Mutex<Set<String>>([])
    /// A running run not updated for this long is taken over (its replica is gone).
    let staleAfter: Double
    /// This replica's name on the runs it takes.
    let worker = "w-" + UUID().uuidString.prefix(8).lowercased()

    public init(
        store: any QualityStore, target: any EvalTarget, flowFacts: @escaping @Sendable (String) -> (schema: JSONValue?, p95Ms: Double?),
        staleAfter: Double = 60, logger: Logger
    ) {
        self.store = store
        self.target = target
        self.flowFacts = flowFacts
        self.staleAfter = staleAfter
        self.logger = logger
        (queue, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingOldest(1000))
    }

    public func submit(_ spec: EvalSpec) async throws -> EvalRunRecord {
        let now = Date().timeIntervalSince1970
        var text = ByteBuffer()
        try JSONWriter.write(spec.json, to: &text)
        let record = EvalRunRecord(
            id: "eval_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased(), status: .queued, createdAt: now, updatedAt: now,
            spec: String(buffer: text), total: spec.cases.count * spec.variants.count)
        try await store.putEvalRun(record)
        continuation.yield(record.id)
        return record
    }

    public func cancel(_ id: String) async throws -> EvalRunRecord {
        guard var run = try await store.evalRun(id: id) else { throw SluiceError(.notFound, "No evaluation with id '\(id)'.", param: "id") }
        guard !run.status.isFinal else { return run }
        cancelled.withLock { _ = $0.insert(id) }
        run.status = .cancelled
        run.updatedAt = Date().timeIntervalSince1970
        try await store.putEvalRun(run)
        return run
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [continuation] in
                try? await gracefulShutdown()
                continuation.finish()
            }
            group.addTask { [self] in
                // Runs left unfinished (a restart, or a replica that went away) come first.
                await resumeStale()
                for await id in queue {
                    if Task.isShuttingDownGracefully { break }
                    await perform(id)
                }
            }
            group.addTask { [self] in
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    try? await gracefulShutdownSleep(for: .seconds(30))
                    guard !Task.isShuttingDownGracefully && !Task.isCancelled else { break }
                    await resumeStale()
                }
            }
        }
    }

    /// Runs nobody has moved for `staleAfter` (left by a restart or a replica that went away) are
    /// offered to this replica; `perform` takes one only if it is still free.
    func resumeStale() async {
        let now = Date().timeIntervalSince1970
        guard let runs = try? await store.evalRuns(limit: 100) else { return }
        for run in runs where !run.status.isFinal && now - run.updatedAt > staleAfter {
            logger.notice("evaluation resumed", metadata: ["eval_id": "\(run.id)", "done": "\(run.done)", "total": "\(run.total)"])
            continuation.yield(run.id)
        }
    }

    func perform(_ id: String) async {
        do {
            let now = Date().timeIntervalSince1970
            // Another replica running it (and moving it) keeps it.
            guard try await store.claimEvalRun(id: id, worker: worker, now: now, staleBefore: now - staleAfter) else { return }
            guard var run = try await store.evalRun(id: id), !run.status.isFinal else { return }
            guard let specJSON = Array(run.spec.utf8).withUnsafeBytes({ JSONParser.parse($0) }) else { throw SluiceError(.internalError, "unreadable spec") }
            let spec = try await EvalSpec(json: specJSON, file: { _ in nil })
            let facts = flowFacts(spec.flow)
            let plan = EvalPlan(
                flow: spec.flow, cases: spec.cases, variants: spec.variants, scorers: spec.scorers, concurrency: spec.concurrency,
                judgeRuns: spec.judgeRuns, schema: facts.schema)
            var earlier: [EvalCaseResult] = []
            for text in try await store.evalResults(runID: id) {
                if let r = Array(text.utf8).withUnsafeBytes({ JSONParser.parse($0) }).flatMap(EvalCaseResult.init(json:)), r.error == nil { earlier.append(r) }
            }
            run.status = .running
            run.done = earlier.count
            run.errors = 0
            run.updatedAt = Date().timeIntervalSince1970
            try await store.putEvalRun(run)
            let progress = RunProgress(run)
            let store = store
            let fresh = try await EvalRunner.run(plan, target: target, done: Set(earlier.map { EvalPlan.key($0.caseID, $0.variant) })) { r in
                var b = ByteBuffer()
                try JSONWriter.write(r.json, to: &b)
                try await store.putEvalResult(runID: id, key: EvalPlan.key(r.caseID, r.variant), json: String(buffer: b))
                let snapshot = progress.record.withLock { p -> EvalRunRecord in
                    p.done += 1
                    if r.error != nil { p.errors += 1 }
                    p.updatedAt = Date().timeIntervalSince1970
                    return p
                }
                // A cancel on another replica is seen within two seconds.
                let check = progress.lastCheck.withLock { last -> Bool in
                    guard ContinuousClock.now - last > .seconds(2) else { return false }
                    last = .now
                    return true
                }
                if check, try await store.evalRun(id: id)?.status == .cancelled { self.cancelled.withLock { _ = $0.insert(id) } }
                if self.cancelled.withLock({ $0.contains(id) }) { throw CancellationError() }
                try await store.putEvalRun(snapshot)
            }
            let report = EvalReport(
                flow: spec.flow, dataset: "POST /admin/evals", variants: spec.variants.map(\.name), scorers: spec.scorers, results: earlier + fresh,
                margin: spec.margin, maxP95Ms: spec.maxP95Ms ?? facts.p95Ms, gates: spec.gates, startedAt: run.createdAt,
                finishedAt: Date().timeIntervalSince1970, quality: spec.quality)
            var summary = report.json
            if case .object(var o) = summary {
                o["results"] = nil
                summary = .object(o)
            }
            var text = ByteBuffer()
            try JSONWriter.write(summary, to: &text)
            var finished = progress.record.withLock { $0 }
            finished.status = .completed
            finished.report = String(buffer: text)
            finished.updatedAt = Date().timeIntervalSince1970
            try await store.putEvalRun(finished)
        } catch is CancellationError {
            if var run = try? await store.evalRun(id: id) {
                run.status = .cancelled
                run.updatedAt = Date().timeIntervalSince1970
                try? await store.putEvalRun(run)
            }
        } catch {
            logger.warning("evaluation failed", metadata: ["eval_id": "\(id)", "error": "\(error)"])
            if var run = try? await store.evalRun(id: id) {
                run.status = .failed
                run.error = (error as? SluiceError)?.message ?? "\(error)"
                run.updatedAt = Date().timeIntervalSince1970
                try? await store.putEvalRun(run)
            }
        }
    }

    /// The report of a run so far (or finished), from its stored cases.
    public func report(_ id: String) async throws -> (EvalRunRecord, EvalReport) {
        guard let run = try await store.evalRun(id: id) else { throw SluiceError(.notFound, "No evaluation with id '\(id)'.", param: "id") }
        guard let specJSON = Array(run.spec.utf8).withUnsafeBytes({ JSONParser.parse($0) }) else { throw SluiceError(.internalError, "unreadable spec") }
        let spec = try await EvalSpec(json: specJSON, file: { _ in nil })
        let results = try await store.evalResults(runID: id).compactMap {
            Array($0.utf8).withUnsafeBytes { JSONParser.parse($0) }.flatMap(EvalCaseResult.init(json:))
        }
        let report = EvalReport(
            flow: spec.flow, dataset: "POST /admin/evals \(id)", variants: spec.variants.map(\.name), scorers: spec.scorers, results: results,
            margin: spec.margin, maxP95Ms: spec.maxP95Ms ?? flowFacts(spec.flow).p95Ms, gates: spec.gates, startedAt: run.createdAt,
            finishedAt: run.updatedAt, quality: spec.quality)
        return (run, report)
    }
}

/// A run's progress as its cases finish, and when the store was last asked whether it was cancelled.
final class RunProgress: Sendable {
    let record: Mutex<EvalRunRecord>
    let lastCheck = Mutex(ContinuousClock.now)

    init(_ record: EvalRunRecord) { self.record = Mutex(record) }
}
