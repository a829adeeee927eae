import ArgumentParser
import Foundation
import SluiceCache
import SluiceCore
import SluiceObservability
import SluiceEmbeddings
import SluiceRetrieval
import SluiceRouting

/// `sluice eval routing`: accuracy of cheap-vs-strong routing on a labelled set, with the
/// features alone and with the nearest-example vote (MiniLM) holding out each request's whole
/// template group, and the cost saved against always using the strong model.
struct RoutingEval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routing", abstract: "Complexity-routing accuracy and cost saved on a labelled JSONL set.")

    @Option(help: "Labelled set: {\"text\", \"label\": simple|strong, \"group\"} per line.")
    var set: String

    @Option(help: "all-MiniLM-L6-v2 directory, for the nearest-example vote.")
    var minilm: String?

    @Option(help: "The routing threshold.")
    var threshold = 0.5

    @Option(help: "Weight of the nearest-example vote against the features.")
    var exampleWeight = 0.6

    @Option(help: "Prices per million input/output tokens: cheap then strong (default gpt-4o-mini vs gpt-4o list prices).")
    var prices: [Double] = [0.15, 0.60, 2.50, 10.00]

    @Option(help: "Output tokens assumed per answer when pricing.")
    var outputTokens = 400

    @Flag(help: "Print the misrouted requests of the features-only classifier (for development).")
    var showErrors = false

    @Flag(help: "Report each source (the rows' \"source\") apart, and hold a whole source out of the neighbours' examples.")
    var bySource = false

    func run() async throws {
        let rows = try GuardrailsEval.lines(set).compactMap { row -> (text: String, strong: Bool, group: String)? in
            guard let text = row["text"] as? String, let label = row["label"] as? String else { return nil }
            let group = bySource ? row["source"] as? String : row["group"] as? String
            return (text, label == "strong", group ?? "")
        }
        guard prices.count == 4 else { throw ValidationError("--prices takes four numbers") }
        let cheap = Price(inputPerMTok: prices[0], outputPerMTok: prices[1])
        let strong = Price(inputPerMTok: prices[2], outputPerMTok: prices[3])
        print("Complexity routing on \(rows.count) labelled requests (\(set)), threshold \(threshold)")

        let featuresOnly = try await ComplexityClassifier(threshold: threshold, exampleWeight: 0, examples: [], embedder: nil)
        var decisions: [Bool] = []
        for row in rows {
            let d = await featuresOnly.decide(Self.request(row.text))
            decisions.append(d.strong)
            if showErrors && d.strong != row.strong { print(String(format: "  %.3f %@ [%@] %@", d.score, row.strong ? "strong" : "simple", row.group, String(row.text.prefix(90)))) }
        }
        report("features only", rows: rows, decisions: decisions, cheap: cheap, strong: strong)
        if bySource { reportBySource(rows: rows, decisions: decisions, cheap: cheap, strong: strong) }

        guard let minilm else { return }
        let encoder = try MiniLMEncoder(directory: URL(fileURLWithPath: minilm))
        let vectors = encoder.embed(rows.map(\.text))
        let lookup = Dictionary(zip(rows.map(\.text), vectors), uniquingKeysWith: { a, _ in a })
        let embedder: ComplexityClassifier.Embedder = { texts in texts.map { lookup[$0] ?? encoder.embed([$0])[0] } }
        // The head shipped with Sluice, with no examples: trained by scripts/train-routing-head.py,
        // so on its own training files this figure is optimistic (the script prints held-out ones).
        let headed = try await ComplexityClassifier(threshold: threshold, exampleWeight: exampleWeight, examples: [], embedder: embedder)
        var headDecisions: [Bool] = []
        for row in rows { headDecisions.append(await headed.decide(Self.request(row.text)).strong) }
        report("features + the trained head (no examples)", rows: rows, decisions: headDecisions, cheap: cheap, strong: strong)
        if bySource { reportBySource(rows: rows, decisions: headDecisions, cheap: cheap, strong: strong) }

        if bySource {
            // The honest figure for a head: for each source, one trained on the other sources only.
            var heldHead = [Bool](repeating: false, count: rows.count)
            for source in Set(rows.map(\.group)) {
                let train = rows.indices.filter { rows[$0].group != source }
                let head = ComplexityHead.train(
                    vectors: train.map { SemanticIndex.normalised(vectors[$0]) }, strong: train.map { rows[$0].strong })
                let classifier = try await ComplexityClassifier(
                    threshold: threshold, exampleWeight: exampleWeight, examples: [], embedder: embedder, head: head)
                for i in rows.indices where rows[i].group == source { heldHead[i] = await classifier.decide(Self.request(rows[i].text)).strong }
            }
            report("features + a head trained without the request's source", rows: rows, decisions: heldHead, cheap: cheap, strong: strong)
            reportBySource(rows: rows, decisions: heldHead, cheap: cheap, strong: strong)
        }

        // Leave one template group out: the examples never include the request's own template.
        var held: [Bool] = []
        let groups = Set(rows.map(\.group))
        var byGroup: [String: ComplexityClassifier] = [:]
        for group in groups {
            let examples = rows.filter { $0.group != group }.map { ComplexityRoutingConfig.LabelledExample(text: $0.text, label: $0.strong ? "strong" : "simple") }
            byGroup[group] = try await ComplexityClassifier(threshold: threshold, exampleWeight: exampleWeight, examples: examples, embedder: embedder)
        }
        for row in rows { held.append(await byGroup[row.group]!.decide(Self.request(row.text)).strong) }
        report("features + MiniLM neighbours (\(bySource ? "source" : "template") held out)", rows: rows, decisions: held, cheap: cheap, strong: strong)
        if bySource { reportBySource(rows: rows, decisions: held, cheap: cheap, strong: strong) }
    }

    func reportBySource(rows: [(text: String, strong: Bool, group: String)], decisions: [Bool], cheap: Price, strong: Price) {
        for source in Set(rows.map(\.group)).sorted() {
            let indices = rows.indices.filter { rows[$0].group == source }
            report("  \(source)", rows: indices.map { rows[$0] }, decisions: indices.map { decisions[$0] }, cheap: cheap, strong: strong)
        }
    }

    static func request(_ text: String) -> ChatCompletionRequest {
        ChatCompletionRequest(model: "m", messages: [.init(role: .user, text: text)])
    }

    func report(_ name: String, rows: [(text: String, strong: Bool, group: String)], decisions: [Bool], cheap: Price, strong: Price) {
        var correct = 0
        var strongToCheap = 0
        var simpleToStrong = 0
        var routedCost = 0.0
        var strongCost = 0.0
        for (row, toStrong) in zip(rows, decisions) {
            if row.strong == toStrong { correct += 1 }
            if row.strong && !toStrong { strongToCheap += 1 }
            if !row.strong && toStrong { simpleToStrong += 1 }
            let usage = Usage(promptTokens: TokenEstimator.tokens(in: row.text) + 8, completionTokens: outputTokens)
            strongCost += strong.cost(of: usage)
            routedCost += (toStrong ? strong : cheap).cost(of: usage)
        }
        let strongCount = rows.filter(\.strong).count
        print(
            String(
                format: "  %@\n    accuracy %.3f (%d/%d); strong requests sent to the cheap model %d/%d, simple sent to the strong %d/%d\n    cost %.4f USD vs %.4f always-strong: %.1f%% saved; %.1f%% of requests on the cheap model",
                name, Double(correct) / Double(rows.count), correct, rows.count, strongToCheap, strongCount, simpleToStrong, rows.count - strongCount,
                routedCost, strongCost, 100 * (1 - routedCost / strongCost), 100 * Double(decisions.filter { !$0 }.count) / Double(rows.count)))
    }
}

/// `sluice eval cache`: the semantic cache's hit rate on true paraphrases and false-hit rate on
/// non-paraphrases at several thresholds (MiniLM), and the index's lookup latency at a given size.
struct CacheEval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache", abstract: "Semantic-cache hit and false-hit rates on a paraphrase set; index lookup latency.")

    @Option(help: "Paraphrase pairs: {\"a\", \"b\", \"label\": 1|0, \"source\"} per line (repeat for several files).")
    var paraphrase: [String] = []

    @Option(help: "all-MiniLM-L6-v2 directory.")
    var minilm: String?

    @Option(help: "Entries in the index for the latency run (0 skips it).")
    var indexSize = 100_000

    @Option(help: "Lookups timed.")
    var lookups = 2000

    @Option(help: "Write each pair with its similarity and the question check's verdict here (JSON Lines), for analysis.")
    var pairsOut: String?

    @Flag(help: "Report each source of the pairs (their \"source\" field) apart.")
    var bySource = false

    @Flag(help: "Also score every pair with the paraphrase verifier (verify: model; minutes on a large set).")
    var modelCheck = false

    struct Pair {
        var a: String
        var b: String
        var same: Bool
        var source: String
    }

    func run() async throws {
        if !paraphrase.isEmpty, let minilm {
            let rows = try paraphrase.flatMap { try GuardrailsEval.lines($0) }.compactMap { row -> Pair? in
                guard let a = row["a"] as? String, let b = row["b"] as? String, let label = row["label"] as? Int else { return nil }
                return Pair(a: a, b: b, same: label == 1, source: row["source"] as? String ?? "all")
            }
            let encoder = try MiniLMEncoder(directory: URL(fileURLWithPath: minilm))
            let started = ContinuousClock.now
            var similarities: [Float] = []
            let batch = 64
            for start in stride(from: 0, to: rows.count, by: batch) {
                let slice = rows[start..<min(start + batch, rows.count)]
                let a = encoder.embed(slice.map(\.a))
                let b = encoder.embed(slice.map(\.b))
                for i in slice.indices {
                    let x = SemanticIndex.normalised(a[i - start])
                    let y = SemanticIndex.normalised(b[i - start])
                    similarities.append(zip(x, y).reduce(0) { $0 + $1.0 * $1.1 })
                }
            }
            let checked = rows.map { QuestionMatch.matches($0.a, $0.b) }
            var verified: [Bool]?
            var probabilities: [Double] = []
            if modelCheck {
                let verifier = try MiniLMPairClassifier.paraphrase(base: encoder)
                let t0 = ContinuousClock.now
                for start in stride(from: 0, to: rows.count, by: 32) {
                    probabilities += verifier.probabilities(rows[start..<min(start + 32, rows.count)].map { ($0.a, $0.b) })
                }
                verified = probabilities.map { $0 >= verifier.threshold }
                print("The paraphrase verifier (threshold \(verifier.threshold)) read \(rows.count) pairs in \(ContinuousClock.now - t0)")
                // A cache lookup verifies one candidate at a time.
                var times: [Double] = []
                for row in rows.prefix(200) {
                    let t = ContinuousClock.now
                    _ = verifier.probabilities([(row.a, row.b)])
                    times.append((ContinuousClock.now - t).seconds * 1000)
                }
                times.sort()
                if !times.isEmpty {
                    print(String(format: "One pair at a time (%d pairs): p50 %.1f ms, p99 %.1f ms", times.count, times[times.count / 2], times[times.count * 99 / 100]))
                }
            }
            if let pairsOut {
                var out = ""
                for (i, row) in rows.enumerated() {
                    let line = try JSONSerialization.data(withJSONObject: [
                        "a": row.a, "b": row.b, "label": row.same ? 1 : 0, "source": row.source, "similarity": Double(similarities[i]),
                        "question_match": checked[i],
                    ].merging(probabilities.isEmpty ? [:] : ["verifier": probabilities[i]]) { a, _ in a })
                    out += String(decoding: line, as: UTF8.self) + "\n"
                }
                try out.write(toFile: pairsOut, atomically: true, encoding: .utf8)
            }
            print("Semantic cache on \(rows.count) pairs from \(paraphrase.joined(separator: ", ")); embedded in \(ContinuousClock.now - started)")
            let groups = bySource ? Dictionary(grouping: rows.indices, by: { rows[$0].source }).sorted { $0.key < $1.key } : [("all", Array(rows.indices))]
            for (source, indices) in groups {
                let positives = indices.filter { rows[$0].same }
                let negatives = indices.filter { !rows[$0].same }
                print("\n  \(source): \(positives.count) paraphrases, \(negatives.count) not")
                let checks: [(name: String, passes: [Bool])] =
                    [("similarity only", rows.map { _ in true }), ("question check", checked)] + (verified.map { [("verifier", $0)] } ?? [])
                print("  threshold  hit rate on paraphrases, false hits on non-paraphrases: " + checks.map(\.name).joined(separator: " | "))
                func rate(_ set: [Int], _ threshold: Float, _ passes: [Bool]) -> String {
                    let n = set.filter { similarities[$0] >= threshold && passes[$0] }.count
                    return String(format: "%.3f (%d/%d)", Double(n) / Double(max(set.count, 1)), n, set.count)
                }
                for threshold: Float in [0.80, 0.85, 0.90, 0.92, 0.95, 0.97] {
                    print(
                        String(format: "  %.2f     ", threshold)
                            + checks.map { "\(rate(positives, threshold, $0.passes)), \(rate(negatives, threshold, $0.passes))" }.joined(separator: " | "))
                }
            }
        }
        guard indexSize > 0 else { return }
        // Latency: MiniLM-like vectors (a shared offset plus noise, so that signs are not
        // independent) in one partition, the worst case; queries near stored entries and far from all.
        let dimensions = 384
        var generator = SplitMix(seed: 42)
        let offset = (0..<dimensions).map { _ in Float(generator.unit() - 0.5) * 0.6 }
        func sample() -> [Float] { offset.map { $0 + Float(generator.unit() - 0.5) } }
        var index = SemanticIndex(dimensions: dimensions, capacity: indexSize)
        var stored: [[Float]] = []
        for i in 0..<indexSize {
            let v = sample()
            if i % (indexSize / 100 + 1) == 0 { stored.append(v) }
            index.insert(key: "k\(i)", partition: "tenant", vector: v, expiresAt: .infinity)
        }
        var times: [Double] = []
        var found = 0
        for i in 0..<lookups {
            let query: [Float]
            if i % 2 == 0 {
                let base = stored[i / 2 % stored.count]
                query = base.map { $0 + Float(generator.unit() - 0.5) * 0.05 }
            } else {
                query = sample()
            }
            let t0 = ContinuousClock.now
            let match = index.nearest(to: query, partition: "tenant", threshold: 0.95, now: 0)
            times.append((ContinuousClock.now - t0).seconds * 1000)
            if match != nil { found += 1 }
        }
        times.sort()
        func pct(_ p: Double) -> Double { times[min(times.count - 1, Int(Double(times.count) * p))] }
        print(
            String(
                format: "Semantic index lookup, %d entries in one partition, %d lookups (%d hits): p50 %.3f ms, p99 %.3f ms, max %.3f ms",
                indexSize, lookups, found, pct(0.5), pct(0.99), times.last ?? 0))
    }
}

/// A small deterministic generator for the benchmark's vectors.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
