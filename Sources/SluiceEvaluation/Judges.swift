import Foundation
import Logging
import Metrics
import Mustache
import NIOCore
import SluiceCore
import SluiceStore
import Synchronization

/// What a judge is asked about: the input, the answer, and optionally a reference answer and
/// the passages the answer was to rest on.
public struct JudgeCase: Sendable, Hashable {
    public var input: String
    public var output: String
    public var reference: String?
    public var passages: [String]

    public init(input: String, output: String, reference: String? = nil, passages: [String] = []) {
        self.input = input
        self.output = output
        self.reference = reference
        self.passages = passages
    }
}

/// A judge's answer: its score on its scale, and why.
public struct JudgeScore: Sendable, Hashable {
    public var score: Double
    public var reason: String
    public var model: String
    public var costUSD: Double
}

/// A pairwise comparison asked in both orders.
public struct PairwiseVerdict: Sendable, Hashable {
    /// `a`, `b`, `tie`, or `inconsistent` when the verdict flips with the order.
    public var winner: String
    /// The verdicts as asked: A first, then B first (each naming `a`, `b` or `tie`).
    public var verdicts: [String]
    public var reasons: [String]
    public var costUSD: Double
}

/// The configured judges: each a rubric (mustache) and a model, asked through the pipeline.
/// Live requests are judged from a bounded background queue, never on the request path.
public final class Judges: Sendable {
    public struct Definition: Sendable {
        public var name: String
        public var config: JudgeConfig
        let template: MustacheTemplate
    }

    public let definitions: [String: Definition]
    let store: any QualityStore
    let logger: Logger
    private let pipeline = Mutex<Pipeline?>(nil)
    /// Each judge's own key (nil with auth off): its calls are admitted, budgeted and audited as it.
    private let principals = Mutex<[String: Principal]>([:])
    /// One queue per judge, each with its bound and concurrency.
    public let queues: [String: BackgroundWork<JudgeJob>]
    private let judged: [String: Counter]
    private let failed: [String: Counter]

    /// Each judge's rubric read and compiled (`sluice validate` checks them the same way).
    public static func definitions(_ configs: [String: JudgeConfig], baseDirectory: String?) throws -> [String: Definition] {
        var definitions: [String: Definition] = [:]
        for (name, config) in configs {
            let path = config.rubric.hasPrefix("/") ? config.rubric : ((baseDirectory ?? ".") as NSString).appendingPathComponent(config.rubric)
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ConfigError(path: "judges.\(name).rubric", "cannot read \(path): \(error.localizedDescription)")
            }
            let template: MustacheTemplate
            do {
                template = try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + text)
            } catch {
                throw ConfigError(path: "judges.\(name).rubric", "\(path) is not a valid mustache template: \(error)")
            }
            definitions[name] = Definition(name: name, config: config, template: template)
        }
        return definitions
    }

    public init(configs: [String: JudgeConfig], baseDirectory: String?, store: any QualityStore, logger: Logger) throws {
        let definitions = try Self.definitions(configs, baseDirectory: baseDirectory)
        self.definitions = definitions
        self.store = store
        self.logger = logger
        var judged: [String: Counter] = [:]
        var failed: [String: Counter] = [:]
        for name in configs.keys {
            judged[name] = Counter(label: "sluice_judge_judgements_total", dimensions: [("judge", name)])
            failed[name] = Counter(label: "sluice_judge_failures_total", dimensions: [("judge", name)])
        }
        self.judged = judged
        self.failed = failed
        let box = JobRunner()
        var queues: [String: BackgroundWork<JudgeJob>] = [:]
        for (name, config) in configs {
            queues[name] = BackgroundWork(name: "judge:\(name)", capacity: config.queueCapacity, concurrency: config.concurrency, logger: logger) {
                await box.run($0)
            }
        }
        self.queues = queues
        box.judges.withLock { $0 = self }
    }

    /// Called once the pipeline exists (judges ask through it).
    public func attach(pipeline: Pipeline, principals: [String: Principal]) {
        self.pipeline.withLock { $0 = pipeline }
        self.principals.withLock { $0 = principals }
    }

    /// The judges that sample live runs of a flow.
    public func sampling(flow: String) -> [Definition] {
        definitions.values.filter { $0.config.sampleRate > 0 && $0.config.flows.contains(flow) }.sorted { $0.name < $1.name }
    }

    /// Whether a request is in a judge's sample: a hash of its id, so the share holds to within
    /// sampling error and a retried id is judged or not the same way.
    public static func isSampled(requestID: String, judge: String, rate: Double) -> Bool {
        rate >= 1 || Double(Experiments.stableHash(judge + "\u{0}" + requestID) % 1_000_000) / 1_000_000 < rate
    }

    /// Queues a sampled live request; never waits (a full queue skips it and counts it).
    func submit(_ job: JudgeJob) { queues[job.judge]?.submit(job) }

    /// Judged so far per judge; skipped because the queue was full.
    public func counts(_ judge: String) -> (backlog: Int, skipped: Int) {
        (queues[judge]?.backlog ?? 0, queues[judge]?.dropped ?? 0)
    }

    func perform(_ job: JudgeJob) async {
        do {
            let s = try await score(judge: job.judge, job.judgeCase, principal: principals.withLock { $0[job.judge] })
            try await store.putJudgement(
                Judgement(
                    requestID: job.requestID, judge: job.judge, score: s.score, reason: s.reason, judgeModel: s.model, costUSD: s.costUSD,
                    time: Date().timeIntervalSince1970, subject: job.subject))
            judged[job.judge]?.increment()
            // Bounded labels: judges and flows are configured names.
            Recorder(label: "sluice_judge_score", dimensions: [("judge", job.judge), ("flow", job.subject.flow ?? "")]).record(s.score)
        } catch {
            failed[job.judge]?.increment()
            logger.warning("judge failed", metadata: ["judge": "\(job.judge)", "request_id": "\(job.requestID)", "error": "\(error)"])
        }
    }

    /// The rubric's prompt for a case.
    public func prompt(_ definition: Definition, _ c: JudgeCase) -> String {
        let variables: [String: Any] = [
            "input": c.input, "output": c.output, "reference": c.reference ?? "",
            "passages": c.passages.enumerated().map { ["n": $0.offset + 1, "text": $0.element] as [String: Any] },
        ]
        let rubric = definition.template.render(variables)
        let scale: String =
            switch definition.config.scale {
            case .range(let lo, let hi): "a number from \(Self.plain(lo)) to \(Self.plain(hi)) (higher is better)"
            case .passFail: "1 (pass) or 0 (fail)"
            }
        return rubric + "\n\nReply with only a JSON object: {\"score\": \(scale), \"reason\": \"one sentence\"}."
    }

    /// Asks a judge about one case through the pipeline (as `principal`).
    public func score(judge: String, _ c: JudgeCase, principal: Principal?) async throws -> JudgeScore {
        guard let definition = definitions[judge] else { throw SluiceError(.notFound, "No judge named '\(judge)'.", param: "judge") }
        let (text, model, cost) = try await ask(definition, prompt(definition, c), principal: principal, tag: "judge")
        guard let (score, reason) = Self.parse(text, scale: definition.config.bounds) else {
            throw SluiceError(.upstreamError, "Judge '\(judge)' answered without a score on its scale: \(text.prefix(200))")
        }
        return JudgeScore(score: score, reason: reason, model: model, costUSD: cost)
    }

    /// Asks a judge which of two answers is better, in both orders; a verdict that flips with
    /// the order is `inconsistent`.
    public func compare(judge: String, input: String, a: String, b: String, reference: String?, principal: Principal?) async throws -> PairwiseVerdict {
        guard let definition = definitions[judge] else { throw SluiceError(.notFound, "No judge named '\(judge)'.", param: "judge") }
        let criteria = definition.template.render(["input": input, "output": "(the two answers below)", "reference": reference ?? "", "passages": [Any]()])
        var verdicts: [String] = []
        var reasons: [String] = []
        var cost = 0.0
        for (first, second, names) in [(a, b, ("a", "b")), (b, a, ("b", "a"))] {
            let prompt = criteria + "\n\nAnswer 1:\n\(first)\n\nAnswer 2:\n\(second)\n\n"
                + "Which answer is better by these criteria? Reply with only a JSON object: {\"winner\": 1, 2 or \"tie\", \"reason\": \"one sentence\"}."
            let (text, _, c) = try await ask(definition, prompt, principal: principal, tag: "judge.compare")
            cost += c
            let (pick, reason) = Self.parsePairwise(text)
            verdicts.append(pick == 1 ? names.0 : pick == 2 ? names.1 : "tie")
            reasons.append(reason)
        }
        let winner = verdicts[0] == verdicts[1] ? verdicts[0] : "inconsistent"
        return PairwiseVerdict(winner: winner, verdicts: verdicts, reasons: reasons, costUSD: cost)
    }

    private func ask(_ definition: Definition, _ prompt: String, principal: Principal?, tag: String) async throws -> (String, String, Double) {
        guard let pipeline = pipeline.withLock({ $0 }) else { throw SluiceError(.internalError, "The judges are not attached to the pipeline.") }
        var chat = ChatCompletionRequest(model: definition.config.model, messages: [ChatMessage(role: .user, text: prompt)])
        chat.temperature = 0
        var context = InferenceContext(
            requestID: "judge-" + UUID().uuidString.lowercased(), endpoint: tag, logger: logger, receivedAtUnix: Date().timeIntervalSince1970)
        context.principal = principal
        context.deadline = .now + .seconds(120)
        let response = try await pipeline.run(InferenceRequest(chat: chat), context: context)
        guard case .completion(let result) = response else { throw SluiceError(.internalError, "A judge's answer was not a completion.") }
        let text = try result.answerText().first?.content ?? ""
        return (text, context.facts[\.route].deployment ?? definition.config.model, context.ledger.settlement?.costUSD ?? 0)
    }

    /// The score and reason in a judge's reply: its JSON object (in a code fence or prose), else
    /// the first number on the scale; pass/fail words count for a pass/fail judge.
    public static func parse(_ text: String, scale: (min: Double, max: Double)) -> (Double, String)? {
        func onScale(_ x: Double) -> Double? { x >= scale.min && x <= scale.max ? x : nil }
        if let object = firstJSONObject(text) {
            let reason = object["reason"]?.stringValue ?? ""
            switch object["score"] {
            case .int(let i)?: if let s = onScale(Double(i)) { return (s, reason) }
            case .double(let d)?: if let s = onScale(d) { return (s, reason) }
            case .string(let s)?:
                if let d = Double(s), let v = onScale(d) { return (v, reason) }
                if scale == (0, 1), let word = passFail(s) { return (word, reason) }
            case .bool(let b)?: if scale == (0, 1) { return (b ? 1 : 0, reason) }
            default: break
            }
        }
        if scale == (0, 1), let word = passFail(text) { return (word, text) }
        var number = ""
        for ch in text + " " {
            if ch.isNumber || (ch == "." && !number.isEmpty) {
                number.append(ch)
            } else if !number.isEmpty {
                if let d = Double(number), let s = onScale(d) { return (s, text) }
                number = ""
            }
        }
        return nil
    }

    static func passFail(_ text: String) -> Double? {
        let lower = text.lowercased()
        let pass = lower.contains("pass")
        let fail = lower.contains("fail")
        return pass == fail ? nil : (pass ? 1 : 0)
    }

    static func parsePairwise(_ text: String) -> (Int?, String) {
        if let object = firstJSONObject(text) {
            let reason = object["reason"]?.stringValue ?? ""
            switch object["winner"] {
            case .int(let i)? where i == 1 || i == 2: return (i, reason)
            case .string(let s)?:
                if s.contains("1") { return (1, reason) }
                if s.contains("2") { return (2, reason) }
                return (nil, reason)
            default: return (nil, reason)
            }
        }
        let has1 = text.contains("1")
        let has2 = text.contains("2")
        return (has1 != has2 ? (has1 ? 1 : 2) : nil, text)
    }

    /// The first `{…}` in a text that parses as a JSON object.
    static func firstJSONObject(_ text: String) -> [String: JSONValue]? {
        let bytes = Array(text.utf8)
        var start = bytes.firstIndex(of: UInt8(ascii: "{"))
        while let s = start {
            var depth = 0
            var inString = false
            var escaped = false
            for i in s..<bytes.count {
                let b = bytes[i]
                if inString {
                    if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                    continue
                }
                if b == UInt8(ascii: "\"") { inString = true }
                if b == UInt8(ascii: "{") { depth += 1 }
                if b == UInt8(ascii: "}") {
                    depth -= 1
                    if depth == 0 {
                        if case .object(let o)? = Array(bytes[s...i]).withUnsafeBytes({ JSONParser.parse($0) }) { return o }
                        break
                    }
                }
            }
            start = bytes[(s + 1)...].firstIndex(of: UInt8(ascii: "{"))
        }
        return nil
    }

    static func plain(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(x) }
}

/// A sampled live request waiting for its judgement.
public struct JudgeJob: Sendable {
    var judge: String
    var requestID: String
    var judgeCase: JudgeCase
    var subject: RequestSubject
}

/// Lets the queues, made before `Judges` is whole, call back into it.
final class JobRunner: Sendable {
    let judges = Mutex<Judges?>(nil)
    func run(_ job: JudgeJob) async { await judges.withLock { $0 }?.perform(job) }
}

/// Samples live runs of the flows a judge covers and queues them for judging once their answer
/// is complete (after the stream's end); the request itself never waits for a judge.
public struct JudgeStage: InferenceStage {
    let judges: Judges

    public init(judges: Judges) { self.judges = judges }

    public func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        guard let run = request.flow, !EvalJobs.isEvaluation(context) else { return try await next(request, context) }
        let sampled = judges.sampling(flow: run.name).filter { Judges.isSampled(requestID: context.requestID, judge: $0.name, rate: $0.config.sampleRate) }
        guard !sampled.isEmpty else { return try await next(request, context) }
        let input = run.text ?? Self.text(run.input)
        let response = try await next(request, context)
        let judges = judges
        @Sendable func submit(_ output: String) {
            let facts = context.facts.snapshot
            let subject = RequestSubject(
                flow: facts.flow.name, flowVersion: facts.flow.version, model: facts.route.deployment, experiment: facts.experiment.name,
                variant: facts.experiment.variant)
            let c = JudgeCase(input: input, output: output, passages: facts.flow.passages.map(\.text))
            for d in sampled { judges.submit(JudgeJob(judge: d.name, requestID: context.requestID, judgeCase: c, subject: subject)) }
        }
        switch response {
        case .completion(let result):
            if let text = try? result.answerText().first?.content { submit(text) }
            return response
        case .stream(let stream):
            let text = Mutex("")
            return .stream(
                stream.observed(
                    onEvent: { event in if let d = try? event.firstDeltaContent() { text.withLock { $0 += d } } },
                    onFinish: { outcome in
                        if case .finished = outcome { submit(text.withLock { $0 }) }
                    }))
        case .embeddings:
            return response
        }
    }

    /// A flow's input as the judge sees it: its JSON.
    static func text(_ value: JSONValue) -> String {
        var out = ByteBuffer()
        guard (try? JSONWriter.write(value, to: &out)) != nil else { return "" }
        return String(buffer: out)
    }
}
