import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import SluiceCore
import SluiceEvaluation
import SluiceServer
import Synchronization

/// `sluice eval run`: every case of a dataset through each variant of a flow (versions ×
/// models), via a running Sluice or one started in process, scored, and written up as JSON and
/// a self-contained HTML report with a recommendation; `--gate` fails the command for CI.
struct EvalRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a dataset through a flow's versions and models; score, report and recommend.")

    @Option(help: "The flow to evaluate.")
    var flow: String

    @Option(help: "JSON Lines: {\"id\"?, \"input\": {…}, \"reference\"?} per line.")
    var dataset: String

    @Option(help: "Flow versions, comma-separated (default: the active one).")
    var versions: String?

    @Option(help: "Models or aliases to run on, comma-separated (default: the flow's).")
    var models: String?

    @Option(help: "Scorers, comma-separated: exact, contains:TEXT, not_contains:TEXT, regex:PATTERN, json_schema, similarity:MODEL, length, latency, cost, judge:NAME.")
    var scorers: String = "exact"

    @Option(help: "The scorer quality is judged by for the recommendation (default: the first of --scorers that measures quality).")
    var quality: String?

    @Option(help: "Cases run at once.")
    var concurrency: Int = 4

    @Option(help: "Where the journal and the reports go.")
    var out: String = "reports"

    @Option(help: "A running Sluice's base URL.")
    var url: String?

    @Option(help: "Start Sluice in process from this config instead of calling a running one.")
    var config: String?

    @Option(help: "The API key (default: $SLUICE_API_KEY).")
    var key: String?

    @Option(help: "A threshold every variant must meet, e.g. 'judge:helpfulness>=4.0' (repeatable); the command exits 1 when one is missed.")
    var gate: [String] = []

    @Option(help: "How far below the best quality (relative) a cheaper variant may be and still be recommended.")
    var margin: Double = 0.05

    @Option(help: "The p95 latency a recommended variant must meet (default: the flow's slo.p95_ms when --config is given).")
    var maxP95Ms: Double?

    @Option(help: "Times each judge is asked about each answer; its agreement with itself is reported.")
    var judgeRuns: Int = 1

    @Flag(help: "Start over instead of resuming the journal in --out.")
    var fresh = false

    func validate() throws {
        guard (url == nil) != (config == nil) else { throw ValidationError("Give --url (a running Sluice) or --config (start one in process), one of them.") }
        guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency must be from 1 to 256.") }
        guard (1...10).contains(judgeRuns) else { throw ValidationError("--judge-runs must be from 1 to 10.") }
        guard margin >= 0 && margin < 1 else { throw ValidationError("--margin must be in [0, 1).") }
    }

    func run() async throws {
        let scorerList = try scorers.split(separator: ",").map { try Scorer(parsing: String($0).trimmingCharacters(in: .whitespaces)) }
        if let quality, !scorerList.contains(where: { $0.name == quality }) {
            throw ValidationError("--quality \(quality) is not one of --scorers (\(scorerList.map(\.name).joined(separator: ", "))).")
        }
        let gates = try gate.map(EvalReport.Gate.init(parsing:))
        let versionList: [Int?] = try versions.map {
            try $0.split(separator: ",").map { text -> Int? in
                guard let v = Int(text.trimmingCharacters(in: .whitespaces)), v >= 1 else { throw ValidationError("--versions: '\(text)' is not a version number.") }
                return v
            }
        } ?? [nil]
        let modelList: [String?] = models.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } } ?? [nil]
        let variants = versionList.flatMap { v in modelList.map { m in EvalVariant(version: v, model: m) } }
        guard let text = try? String(contentsOfFile: dataset, encoding: .utf8) else { throw ValidationError("Cannot read the dataset \(dataset).") }
        let cases = try EvalCase.parse(jsonLines: text, source: dataset)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let journalPath = (out as NSString).appendingPathComponent("cases.jsonl")
        if fresh { try? FileManager.default.removeItem(atPath: journalPath) }
        var done: [String: EvalCaseResult] = [:]
        for r in Self.readJournal(journalPath) where r.error == nil { done[EvalPlan.key(r.caseID, r.variant)] = r }

        var schema: JSONValue?
        var p95 = maxP95Ms
        if let config {
            let loaded = try loadConfig(config)
            if let f = loaded.flows[flow] {
                if case .schema(let s) = f.output { schema = s }
                p95 = p95 ?? f.slo?.p95Ms
            }
        }
        let apiKey = key ?? ProcessInfo.processInfo.environment["SLUICE_API_KEY"]
        let started = Date().timeIntervalSince1970
        let journal = try Journal(path: journalPath)
        let plan = EvalPlan(
            flow: flow, cases: cases, variants: variants, scorers: scorerList, concurrency: concurrency, judgeRuns: judgeRuns, schema: schema)
        let skip = Set(done.keys)
        let remaining = cases.count * variants.count - plan.cases.flatMap { c in variants.map { EvalPlan.key(c.id, $0.name) } }.filter(skip.contains).count
        let progress = Progress(total: remaining, resumed: cases.count * variants.count - remaining)
        let body: @Sendable (String, String?) async throws -> [EvalCaseResult] = { base, key in
            try await Self.withClient { client in
                try await EvalRunner.run(plan, target: HTTPEvalTarget(client: client, base: base, key: key), done: skip) { r in
                    try journal.append(r)
                    progress.advance(error: r.error != nil)
                }
            }
        }
        let fresh: [EvalCaseResult]
        if let url {
            fresh = try await body(url.hasSuffix("/") ? String(url.dropLast()) : url, apiKey)
        } else {
            fresh = try await Self.inProcess(config: config!) { base, key in try await body(base, key) }
        }
        progress.finish()
        // A journal of an earlier plan may hold other variants or cases: only this plan's are reported.
        let planKeys = Set(cases.flatMap { c in variants.map { EvalPlan.key(c.id, $0.name) } })
        var all = done.filter { planKeys.contains($0.key) }.map(\.value) + fresh
        all.sort { ($0.caseID, $0.variant) < ($1.caseID, $1.variant) }
        let report = EvalReport(
            flow: flow, dataset: dataset, variants: variants.map(\.name), scorers: scorerList, results: all, margin: margin, maxP95Ms: p95, gates: gates,
            startedAt: started, finishedAt: Date().timeIntervalSince1970, quality: quality)
        var json = ByteBuffer()
        try JSONWriter.write(report.json, to: &json)
        let jsonPath = (out as NSString).appendingPathComponent("report.json")
        let htmlPath = (out as NSString).appendingPathComponent("report.html")
        try Data(json.readableBytesView).write(to: URL(fileURLWithPath: jsonPath))
        try Data(report.html.utf8).write(to: URL(fileURLWithPath: htmlPath))
        Self.printSummary(report)
        print("reports: \(jsonPath), \(htmlPath)")
        if !report.passed { throw ExitCode(1) }
    }

    /// A client shut down on every path.
    static func withClient<T: Sendable>(_ body: (HTTPClient) async throws -> T) async throws -> T {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    static func printSummary(_ r: EvalReport) {
        let names = r.scorers
        print("variant".padding(toLength: 28, withPad: " ", startingAt: 0) + " cases errors " + names.map { $0.prefix(18).padding(toLength: 18, withPad: " ", startingAt: 0) }.joined(separator: " ") + "  cost/case    p95 ms")
        for s in r.summaries {
            var line = s.variant.prefix(28).padding(toLength: 28, withPad: " ", startingAt: 0) + String(format: " %5d %6d ", s.cases, s.errors)
            line += names.map { (s.means[$0].map { String(format: "%.4g", $0) } ?? "–").padding(toLength: 18, withPad: " ", startingAt: 0) }.joined(separator: " ")
            line += String(format: "  %.6f  %8.1f", s.costPerCaseUSD, s.p95Ms ?? 0)
            print(line)
        }
        print("recommendation: \(r.recommendation.reason)")
        for g in r.gates { print("gate \(g.gate.text): " + (g.failed.isEmpty ? "passed" : "MISSED by \(g.failed.joined(separator: ", "))")) }
    }

    static func readJournal(_ path: String) -> [EvalCaseResult] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        // A line cut short by an interruption is skipped (its case runs again).
        return text.split(separator: "\n").compactMap { line in
            Array(line.utf8).withUnsafeBytes { JSONParser.parse($0) }.flatMap(EvalCaseResult.init(json:))
        }
    }

    /// Starts Sluice from a config on a free loopback port with a one-off admin key, runs `body`, and shuts it down.
    static func inProcess(config path: String, _ body: @Sendable (String, String?) async throws -> [EvalCaseResult]) async throws -> [EvalCaseResult] {
        var config = try loadConfig(path)
        config.server.host = "127.0.0.1"
        var logger = Logger(label: "sluice")
        logger.logLevel = .warning
        let adminKey = "sk-sluice-eval-" + UUID().uuidString.lowercased()
        let key = config.auth.enabled ? adminKey : nil
        return try await SluiceApplication.runOnFreePort(config: config, options: BuildOptions(logger: logger, adminKey: key)) { base, _, _ in
            try await body(base, key)
        }
    }
}

/// A running Sluice as an evaluation's target, over HTTP.
struct HTTPEvalTarget: EvalTarget {
    let client: HTTPClient
    let base: String
    let key: String?

    func post(_ path: String, _ body: JSONValue) async throws -> (Int, JSONValue) {
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        // Evaluation traffic: no experiment assigns it, no live judge samples it.
        request.headers.add(name: EvalJobs.header, value: "1")
        if let key { request.headers.add(name: "authorization", value: "Bearer \(key)") }
        var buffer = ByteBuffer()
        try JSONWriter.write(body, to: &buffer)
        request.body = .bytes(buffer)
        let response = try await client.execute(request, timeout: .seconds(300))
        let bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
        let value = Array(bytes.readableBytesView).withUnsafeBytes { JSONParser.parse($0) }
        return (Int(response.status.code), value ?? .string(String(buffer: bytes)))
    }

    static func errorText(_ status: Int, _ body: JSONValue) -> String {
        if case .object(let o) = body, case .object(let e)? = o["error"], let m = e["message"]?.stringValue { return "\(status): \(m)" }
        return "\(status): \(EvalRunner.text(body).prefix(300))"
    }

    func run(flow: String, input: JSONValue, variant: EvalVariant) async -> EvalAnswer {
        var body: [String: JSONValue] = ["input": input]
        if let version = variant.version { body["version"] = .int(version) }
        if let model = variant.model { body["model"] = .string(model) }
        let start = ContinuousClock.now
        do {
            let (status, answer) = try await post("/v1/flows/\(flow)/run", .object(body))
            let elapsed = ContinuousClock.now - start
            let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            guard status == 200, case .object(let o) = answer else { return EvalAnswer(output: "", latencyMs: ms, costUSD: 0, error: Self.errorText(status, answer)) }
            return EvalAnswer(output: EvalRunner.text(o["output"]), latencyMs: ms, costUSD: o["cost_usd"]?.doubleValue ?? 0)
        } catch {
            return EvalAnswer(output: "", latencyMs: 0, costUSD: 0, error: "request failed: \(error)")
        }
    }

    func judge(_ name: String, _ c: JudgeCase) async throws -> (score: Double, reason: String) {
        var request: [String: JSONValue] = ["input": .string(c.input), "output": .string(c.output)]
        if let r = c.reference { request["reference"] = .string(r) }
        let (status, answer) = try await post("/v1/judges/\(name)/score", .object(request))
        guard status == 200, let score = answer["score"]?.doubleValue else { throw SluiceError(.upstreamError, Self.errorText(status, answer)) }
        return (score, answer["reason"]?.stringValue ?? "")
    }

    func embed(model: String, texts: [String]) async throws -> [[Double]] {
        let (status, answer) = try await post("/v1/embeddings", .object(["model": .string(model), "input": .array(texts.map(JSONValue.string))]))
        guard status == 200, let data = answer["data"]?.arrayValue else { throw SluiceError(.upstreamError, Self.errorText(status, answer)) }
        return data.map { ($0["embedding"]?.arrayValue ?? []).compactMap(\.doubleValue) }
    }
}

/// The run's journal: one line per finished case and variant, appended as they finish, so an
/// interrupted run resumes where it stopped.
final class Journal: Sendable {
    private let handle: Mutex<FileHandle>

    init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { throw ValidationError("Cannot write \(path).") }
        h.seekToEndOfFile()
        handle = Mutex(h)
    }

    func append(_ r: EvalCaseResult) throws {
        var b = ByteBuffer()
        try JSONWriter.write(r.json, to: &b)
        b.writeString("\n")
        let data = Data(b.readableBytesView)
        handle.withLock { $0.write(data) }
    }
}

/// done/total, errors and the time left: a bar redrawn in place on a terminal, a line per tenth otherwise.
final class Progress: Sendable {
    struct State {
        var done = 0
        var errors = 0
        var lastTenth = -1
    }

    let total: Int
    let resumed: Int
    let started = ContinuousClock.now
    let terminal = isatty(2) != 0
    private let state = Mutex(State())

    init(total: Int, resumed: Int) {
        self.total = total
        self.resumed = resumed
        if resumed > 0 { FileHandle.standardError.write(Data("resuming: \(resumed) case runs already done\n".utf8)) }
    }

    func advance(error: Bool) {
        let line: String? = state.withLock { s in
            s.done += 1
            if error { s.errors += 1 }
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let eta = s.done > 0 ? seconds / Double(s.done) * Double(total - s.done) : 0
            if terminal {
                let width = 30
                let filled = total > 0 ? width * s.done / total : width
                let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
                return "\r[\(bar)] \(s.done)/\(total)  errors \(s.errors)  ETA \(Int(eta.rounded()))s"
            }
            let tenth = total > 0 ? 10 * s.done / total : 10
            guard tenth != s.lastTenth else { return nil }
            s.lastTenth = tenth
            return "progress: \(s.done)/\(total) done, \(s.errors) errors, ETA \(Int(eta.rounded()))s\n"
        }
        if let line { FileHandle.standardError.write(Data(line.utf8)) }
    }

    func finish() {
        if terminal && total > 0 { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
