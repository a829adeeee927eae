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

    @Flag(help: "Start over instead of resuming the journal in --out.")
    var fresh = false

    func validate() throws {
        guard (url == nil) != (config == nil) else { throw ValidationError("Give --url (a running Sluice) or --config (start one in process), one of them.") }
        guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency must be from 1 to 256.") }
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
        let cases = try Self.readDataset(dataset)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let journalPath = (out as NSString).appendingPathComponent("cases.jsonl")
        if fresh { try? FileManager.default.removeItem(atPath: journalPath) }
        var done: [String: EvalCaseResult] = [:]
        for r in Self.readJournal(journalPath) where r.error == nil { done[r.caseID + "\u{0}" + r.variant] = r }

        var schema: JSONValue?
        var p95 = maxP95Ms
        if let config {
            let loaded = try loadConfig(config)
            if let f = loaded.flows[flow] {
                if case .schema(let s) = f.output { schema = s }
                p95 = p95 ?? f.slo?.p95Ms
            }
        }
        let flowSchema = schema
        let apiKey = key ?? ProcessInfo.processInfo.environment["SLUICE_API_KEY"]
        let started = Date().timeIntervalSince1970
        let flow = flow
        let journal = try Journal(path: journalPath)
        let work = cases.flatMap { c in variants.map { (c, $0) } }.filter { done[$0.0.id + "\u{0}" + $0.1.name] == nil }
        let progress = Progress(total: work.count, resumed: cases.count * variants.count - work.count)
        let body: @Sendable (String, String?) async throws -> [EvalCaseResult] = { base, key in
            try await Self.withClient { client in
                let caller = Caller(client: client, base: base, key: key)
                return try await withThrowingTaskGroup(of: EvalCaseResult.self) { group in
                    var results: [EvalCaseResult] = []
                    var next = 0
                    func start() {
                        let (c, v) = work[next]
                        next += 1
                        group.addTask {
                            await caller.run(flow: flow, c, v, scorers: scorerList, schema: flowSchema)
                        }
                    }
                    for _ in 0..<min(concurrency, work.count) { start() }
                    while let r = try await group.next() {
                        results.append(r)
                        try journal.append(r)
                        progress.advance(error: r.error != nil)
                        if next < work.count { start() }
                    }
                    return results
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
        var all = Array(done.values) + fresh
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

    struct Case: Sendable {
        var id: String
        var input: JSONValue
        var reference: String?
    }

    static func readDataset(_ path: String) throws -> [Case] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("Cannot read the dataset \(path).") }
        var out: [Case] = []
        var ids: Set<String> = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard case .object(let o)? = Array(trimmed.utf8).withUnsafeBytes({ JSONParser.parse($0) }) else {
                throw ValidationError("\(path):\(i + 1): not a JSON object.")
            }
            guard let input = o["input"], case .object = input else { throw ValidationError("\(path):\(i + 1): needs an \"input\" object.") }
            let id: String =
                switch o["id"] {
                case .string(let s)?: s
                case .int(let n)?: String(n)
                default: String(i + 1)
                }
            guard ids.insert(id).inserted else { throw ValidationError("\(path):\(i + 1): the id '\(id)' is used twice.") }
            var reference: String?
            switch o["reference"] {
            case .string(let s)?: reference = s
            case .object?, .array?:
                var b = ByteBuffer()
                try JSONWriter.write(o["reference"]!, to: &b)
                reference = String(buffer: b)
            default: break
            }
            out.append(Case(id: id, input: input, reference: reference))
        }
        guard !out.isEmpty else { throw ValidationError("\(path) has no cases.") }
        return out
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
        config.server.port = 0
        var logger = Logger(label: "sluice")
        logger.logLevel = .warning
        let adminKey = "sk-sluice-eval-" + UUID().uuidString.lowercased()
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = try await buildApplication(
            config: config,
            options: BuildOptions(logger: logger, adminKey: config.auth.enabled ? adminKey : nil) { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
            })
        let group = app.makeServiceGroup(signals: [])
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                defer { continuation.finish() }
                try await group.run()
            }
            var it = ports.makeAsyncIterator()
            guard let port = await it.next() else {
                try await tasks.waitForAll()
                throw ValidationError("Sluice did not start.")
            }
            let result: [EvalCaseResult]
            do {
                result = try await body("http://127.0.0.1:\(port)", config.auth.enabled ? adminKey : nil)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        }
    }
}

/// Calls a running Sluice for one case and variant, and scores the answer.
struct Caller: Sendable {
    let client: HTTPClient
    let base: String
    let key: String?

    func post(_ path: String, _ body: JSONValue) async throws -> (Int, JSONValue) {
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        if let key { request.headers.add(name: "authorization", value: "Bearer \(key)") }
        var buffer = ByteBuffer()
        try JSONWriter.write(body, to: &buffer)
        request.body = .bytes(buffer)
        let response = try await client.execute(request, timeout: .seconds(300))
        let bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
        let value = bytes.readableBytesView.withContiguousStorageIfAvailable { JSONParser.parse(UnsafeRawBufferPointer($0)) } ?? nil
        return (Int(response.status.code), value ?? .string(String(buffer: bytes)))
    }

    static func text(_ v: JSONValue?) -> String {
        switch v {
        case .string(let s)?: return s
        case nil, .null?: return ""
        case let other?:
            var b = ByteBuffer()
            try? JSONWriter.write(other, to: &b)
            return String(buffer: b)
        }
    }

    static func errorText(_ status: Int, _ body: JSONValue) -> String {
        if case .object(let o) = body, case .object(let e)? = o["error"], let m = e["message"]?.stringValue { return "\(status): \(m)" }
        return "\(status): \(text(body).prefix(300))"
    }

    func run(flow: String, _ c: EvalRun.Case, _ v: EvalVariant, scorers: [Scorer], schema: JSONValue?) async -> EvalCaseResult {
        let inputText = Self.text(c.input)
        var result = EvalCaseResult(caseID: c.id, variant: v.name, input: inputText, reference: c.reference, output: "", error: nil, latencyMs: 0, costUSD: 0)
        var body: [String: JSONValue] = ["input": c.input]
        if let version = v.version { body["version"] = .int(version) }
        if let model = v.model { body["model"] = .string(model) }
        let start = ContinuousClock.now
        do {
            let (status, answer) = try await post("/v1/flows/\(flow)/run", .object(body))
            let elapsed = ContinuousClock.now - start
            result.latencyMs = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            guard status == 200, case .object(let o) = answer else {
                result.error = Self.errorText(status, answer)
                return result
            }
            result.output = Self.text(o["output"])
            if case .double(let d)? = o["cost_usd"] { result.costUSD = d } else if case .int(let i)? = o["cost_usd"] { result.costUSD = Double(i) }
        } catch {
            result.error = "request failed: \(error)"
            return result
        }
        for scorer in scorers {
            if let s = scorer.score(output: result.output, reference: c.reference, latencyMs: result.latencyMs, costUSD: result.costUSD, schema: schema) {
                result.scores[scorer.name] = s
                continue
            }
            do {
                switch scorer {
                case .jsonSchema:
                    // No schema to hand: the flow's answer came back as JSON (the server checked it against its schema).
                    let parsed = Array(result.output.utf8).withUnsafeBytes { JSONParser.parse($0) }
                    if case .object? = parsed { result.scores[scorer.name] = 1 } else { result.scores[scorer.name] = 0 }
                case .similarity(let model):
                    guard let reference = c.reference else { continue }
                    let (status, answer) = try await post("/v1/embeddings", .object(["model": .string(model), "input": .array([.string(result.output), .string(reference)])]))
                    guard status == 200, case .object(let o) = answer, case .array(let data)? = o["data"], data.count == 2 else {
                        result.notes[scorer.name] = Self.errorText(status, answer)
                        continue
                    }
                    let vectors = data.map { item -> [Double] in
                        guard case .object(let e) = item, case .array(let xs)? = e["embedding"] else { return [] }
                        return xs.map { x in
                            switch x {
                            case .double(let d): d
                            case .int(let i): Double(i)
                            default: 0
                            }
                        }
                    }
                    result.scores[scorer.name] = Self.cosine(vectors[0], vectors[1])
                case .judge(let name):
                    var request: [String: JSONValue] = ["input": .string(inputText), "output": .string(result.output)]
                    if let r = c.reference { request["reference"] = .string(r) }
                    let (status, answer) = try await post("/v1/judges/\(name)/score", .object(request))
                    guard status == 200, case .object(let o) = answer else {
                        result.notes[scorer.name] = Self.errorText(status, answer)
                        continue
                    }
                    if case .double(let d)? = o["score"] { result.scores[scorer.name] = d } else if case .int(let i)? = o["score"] { result.scores[scorer.name] = Double(i) }
                    // The judge's cost is the evaluation's, not the variant's: it is not added to the case.
                    result.notes[scorer.name] = o["reason"]?.stringValue
                default: continue
                }
            } catch {
                result.notes[scorer.name] = "\(error)"
            }
        }
        return result
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
