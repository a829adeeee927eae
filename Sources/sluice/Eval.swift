import ArgumentParser
import Foundation
import SluiceCore
import SluiceObservability
import SluiceEmbeddings
import SluiceGuardrails

/// `sluice eval guardrails`: precision, recall and F1 of the PII and injection detectors on
/// labelled JSON Lines files, and the latency of a full input check (`make bench` runs it).
struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Sluice's detectors on labelled data.", subcommands: [EvalRun.self, GuardrailsEval.self, RoutingEval.self, CacheEval.self, RetrievalEval.self, GroundingEval.self])
}

struct GuardrailsEval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guardrails",
        abstract: "PII (per type) and prompt-injection precision/recall/F1 on JSONL files; latency of a full input check.")

    @Option(help: "PII file: {\"text\", \"spans\": [{\"type\", \"start\", \"end\"}]} per line.")
    var pii: String?

    @Option(help: "Injection file: {\"text\", \"label\": 0|1} per line.")
    var injection: String?

    @Option(help: "Print the misses and false alarms of one PII type, or INJECTION (for development).")
    var showErrors: String?

    @Option(help: "The injection threshold that --show-errors INJECTION and the per-source counts use.")
    var threshold: Double = 0.4

    @Flag(help: "Per source (the rows' \"source\" field): injection recall and false-positive rate at --threshold, and PII F1.")
    var bySource = false

    @Option(help: "Write each injection row's scores here as JSON Lines ({\"rules\", \"reasons\", \"label\", \"source\"}), in input order.")
    var scoresOut: String?

    @Flag(help: "Time a full input check (PII, secrets, injection, ban list) on 1 KB and 10 KB prompts.")
    var latency = false

    @Option(help: "all-MiniLM-L6-v2's folder: also score injection with the learned classifier shipped with Sluice, alone and with the rules.")
    var minilm: String?

    @Flag(help: "With --minilm: PII with the entity tagger on (names, addresses, dates by model), as `pii: {ner: true}` runs it.")
    var ner = false

    @Option(help: "The classifier's threshold (default: the one shipped with its head).")
    var classifierThreshold: Double?

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func run() async throws {
        var report: [String: Any] = [:]
        if let pii {
            let examples = try Self.readPII(pii)
            var entities: [[PIIFinding]]?
            if ner {
                guard let minilm else { throw ValidationError("--ner needs --minilm DIR (the tagger reads MiniLM's word states)") }
                let tagger = EntityTagger(encoder: try MiniLMEncoder(directory: URL(fileURLWithPath: minilm)))
                var found: [[PIIFinding]] = []
                for start in stride(from: 0, to: examples.count, by: 32) {
                    found += try await tagger.findings(examples[start..<min(start + 32, examples.count)].map(\.text))
                }
                entities = found
            }
            let scores = PIIEvaluation.evaluate(examples, scanner: PIIScanner(), entities: entities)
            var rows: [String: Any] = [:]
            if !json { print("PII on \(examples.count) texts (\(pii))\n  type            precision recall  f1     tp   fp   fn") }
            for type in PIIType.allCases {
                guard let s = scores[type] else { continue }
                rows[type.rawValue] = ["precision": s.precision, "recall": s.recall, "f1": s.f1, "tp": s.truePositives, "fp": s.falsePositives, "fn": s.falseNegatives]
                if !json {
                    let name = type.rawValue.padding(toLength: 15, withPad: " ", startingAt: 0)
                    print(String(format: "  \(name) %.3f     %.3f   %.3f  %4d %4d %4d", s.precision, s.recall, s.f1, s.truePositives, s.falsePositives, s.falseNegatives))
                }
            }
            // The issue's summary figures: micro-averaged over the structured types, and over
            // those plus names, addresses and dates.
            let structured: [PIIType] = [.email, .phone, .creditCard, .usSSN, .iban, .ipAddress]
            let groups = [("structured", structured), ("all_nine", structured + [.dateTime, .streetAddress, .person])]
            func micro(_ scores: [PIIType: DetectionScore], _ types: [PIIType]) -> DetectionScore {
                var total = DetectionScore()
                for t in types {
                    guard let s = scores[t] else { continue }
                    total.truePositives += s.truePositives
                    total.falsePositives += s.falsePositives
                    total.falseNegatives += s.falseNegatives
                }
                return total
            }
            for (name, types) in groups {
                let total = micro(scores, types)
                rows[name] = ["precision": total.precision, "recall": total.recall, "f1": total.f1]
                if !json { print(String(format: "  %@ types (micro): precision %.3f recall %.3f f1 %.3f", name.replacingOccurrences(of: "_", with: " "), total.precision, total.recall, total.f1)) }
            }
            if bySource {
                var perSource: [String: Any] = [:]
                let sources = Dictionary(grouping: examples.indices, by: { examples[$0].source })
                for source in sources.keys.sorted() {
                    let indices = sources[source]!
                    let part = PIIEvaluation.evaluate(indices.map { examples[$0] }, scanner: PIIScanner(), entities: entities.map { e in indices.map { e[$0] } })
                    var row: [String: Any] = ["texts": indices.count]
                    var line = "  source \(source.isEmpty ? "(none)" : source) (\(indices.count) texts):"
                    for (name, types) in groups {
                        let total = micro(part, types)
                        row[name + "_f1"] = total.f1
                        line += String(format: " %@ f1 %.3f", name.replacingOccurrences(of: "_", with: " "), total.f1)
                    }
                    perSource[source] = row
                    if !json { print(line) }
                }
                rows["by_source"] = perSource
            }
            report["pii"] = rows
            if let name = showErrors, let type = PIIType(rawValue: name) { Self.printErrors(examples, type: type) }
        }
        if let injection {
            let rows = try Self.lines(injection).compactMap { row -> (String, Int, String)? in
                guard let text = row["text"] as? String, let label = row["label"] as? Int else { return nil }
                return (text, label, row["source"] as? String ?? "")
            }
            let scorer = InjectionScorer()
            let scored = rows.map { (scorer.assess($0.0), $0.1, $0.2, $0.0) }
            var summary: [String: Any] = [:]
            // The learned classifier's verdicts, when asked for: decisions are "rules at
            // --threshold", "classifier at its threshold", and either of the two (what a policy
            // with the classifier on blocks).
            var classified: [InjectionClassifier.Verdict]?
            var classifierThreshold = self.classifierThreshold ?? InjectionHead.defaultThreshold
            if let minilm {
                let encoder = try MiniLMEncoder(directory: URL(fileURLWithPath: minilm))
                let classifier = InjectionClassifier(embed: { encoder.embed($0) }, threshold: classifierThreshold)
                classifierThreshold = classifier.threshold
                var verdicts: [InjectionClassifier.Verdict] = []
                for start in stride(from: 0, to: rows.count, by: 16) {
                    verdicts += try await classifier.score(rows[start..<min(start + 16, rows.count)].map(\.0))
                }
                classified = verdicts
                var decisions: [String: Any] = [:]
                for (name, flagged) in [
                    ("rules", { (i: Int) in scored[i].0.score >= threshold }), ("classifier", { (i: Int) in verdicts[i].score >= classifierThreshold }),
                    ("rules_or_classifier", { (i: Int) in scored[i].0.score >= threshold || verdicts[i].score >= classifierThreshold }),
                ] {
                    var caught = 0, attacks = 0, alarms = 0, benign = 0
                    for i in scored.indices {
                        if scored[i].1 == 1 { attacks += 1; if flagged(i) { caught += 1 } } else { benign += 1; if flagged(i) { alarms += 1 } }
                    }
                    let recall = Double(caught) / Double(max(attacks, 1))
                    let fpr = Double(alarms) / Double(max(benign, 1))
                    decisions[name] = ["recall": recall, "false_positive_rate": fpr]
                    if !json {
                        print(String(format: "Injection, %@: recall %.3f (%d/%d), false-positive rate %.3f (%d/%d)", name.replacingOccurrences(of: "_", with: " "), recall, caught, attacks, fpr, alarms, benign))
                    }
                }
                decisions["classifier_threshold"] = classifierThreshold
                decisions["classifier_auc"] = Self.auc(zip(verdicts, scored).map { ($0.0.score, $0.1.1 == 1) })
                if !json { print(String(format: "Injection classifier AUC %.3f (rules %.3f), threshold %.3f", decisions["classifier_auc"] as! Double, Self.auc(scored.map { ($0.0.score, $0.1 == 1) }), classifierThreshold)) }
                summary["decisions"] = decisions
            }
            for threshold in [0.3, 0.35, 0.4, 0.5, 0.6] {
                var s = DetectionScore()
                var benign = 0
                for (a, label, _, _) in scored {
                    let flagged = a.score >= threshold
                    if label == 1 { if flagged { s.truePositives += 1 } else { s.falseNegatives += 1 } }
                    else { benign += 1; if flagged { s.falsePositives += 1 } }
                }
                let fpr = benign == 0 ? 0 : Double(s.falsePositives) / Double(benign)
                summary[String(threshold)] = ["precision": s.precision, "recall": s.recall, "f1": s.f1, "false_positive_rate": fpr]
                if !json {
                    print(String(format: "Injection at threshold %.2f on %d texts: precision %.3f recall %.3f f1 %.3f false-positive rate %.3f", threshold, rows.count, s.precision, s.recall, s.f1, fpr))
                }
            }
            if bySource {
                // Per source at --threshold: attacks caught and benign texts flagged, so a figure
                // that holds only on the sources a rule was written against shows.
                var counts: [String: (caught: Int, attacks: Int, flagged: Int, benign: Int)] = [:]
                for (i, (a, label, source, _)) in scored.enumerated() {
                    var v = counts[source] ?? (0, 0, 0, 0)
                    let hit = a.score >= threshold || (classified.map { $0[i].score >= classifierThreshold } ?? false)
                    if label == 1 { v.attacks += 1; if hit { v.caught += 1 } } else { v.benign += 1; if hit { v.flagged += 1 } }
                    counts[source] = v
                }
                var rows: [String: Any] = [:]
                if !json {
                    let what = classified == nil ? String(format: "rules at %.2f", threshold) : String(format: "rules at %.2f or classifier at %.3f", threshold, classifierThreshold)
                    print("By source, \(what):\n  source                          recall          false positives")
                }
                for (source, v) in counts.sorted(by: { $0.key < $1.key }) {
                    var row: [String: Any] = ["attacks": v.attacks, "benign": v.benign]
                    if v.attacks > 0 { row["recall"] = Double(v.caught) / Double(v.attacks) }
                    if v.benign > 0 { row["false_positive_rate"] = Double(v.flagged) / Double(v.benign) }
                    rows[source.isEmpty ? "(none)" : source] = row
                    if !json {
                        let name = (source.isEmpty ? "(none)" : source).padding(toLength: 30, withPad: " ", startingAt: 0)
                        let recall = v.attacks > 0 ? String(format: "%.3f (%d/%d)", Double(v.caught) / Double(v.attacks), v.caught, v.attacks) : "-"
                        let fpr = v.benign > 0 ? String(format: "%.3f (%d/%d)", Double(v.flagged) / Double(v.benign), v.flagged, v.benign) : "-"
                        print("  \(name)  \(recall.padding(toLength: 16, withPad: " ", startingAt: 0))\(fpr)")
                    }
                }
                summary["by_source"] = rows
            }
            if !json {
                if showErrors == "INJECTION" {
                    for (a, label, source, text) in scored where (a.score >= threshold) != (label == 1) {
                        print("\(label == 1 ? "FN" : "FP") \(source) \(a.score) \(a.reasons) \(text.prefix(160).replacingOccurrences(of: "\n", with: "⏎"))")
                    }
                }
            }
            report["injection"] = summary
            if let scoresOut {
                var out = ""
                for (i, (a, label, source, _)) in scored.enumerated() {
                    var row: [String: Any] = ["rules": a.score, "reasons": a.reasons, "label": label, "source": source]
                    if let classified { row["classifier"] = classified[i].score }
                    out += String(decoding: try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]), as: UTF8.self) + "\n"
                }
                try out.write(toFile: scoresOut, atomically: true, encoding: .utf8)
            }
        }
        if latency {
            var rows: [String: Any] = [:]
            for size in [1024, 10240] {
                let micros = try Self.inputCheckMicros(bytes: size)
                rows["\(size / 1024)kb_median_us"] = micros.median
                rows["\(size / 1024)kb_p99_us"] = micros.p99
                if !json { print(String(format: "Full input check on %d KB: median %.1f µs, p99 %.1f µs", size / 1024, micros.median, micros.p99)) }
            }
            if let minilm {
                let encoder = try MiniLMEncoder(directory: URL(fileURLWithPath: minilm))
                // The learned injection classifier alone (the rules are in the check above): one
                // encoder pass per window, at most max_windows (8) of them.
                let classifier = InjectionClassifier(embed: { encoder.embed($0) })
                for size in [1024, 10240] {
                    let text = Self.prompt(bytes: size)
                    let median = try await Self.medianMilliseconds(runs: size > 4096 ? 12 : 40) { _ = try await classifier.score([text]) }
                    rows["classifier_\(size / 1024)kb_median_ms"] = median
                    if !json {
                        print(String(format: "Injection classifier on %d KB (%d windows): median %.1f ms", size / 1024, InjectionClassifier.windows(text, maxWindows: 8).count, median))
                    }
                }
                if ner {
                    let tagger = EntityTagger(encoder: encoder)
                    for size in [1024, 10240] {
                        let text = Self.prompt(bytes: size)
                        let median = try await Self.medianMilliseconds(runs: size > 4096 ? 12 : 40) { _ = try await tagger.findings([text]) }
                        rows["ner_\(size / 1024)kb_median_ms"] = median
                        if !json { print(String(format: "Entity tagger on %d KB: median %.1f ms", size / 1024, median)) }
                    }
                }
            }
            report["latency"] = rows
        }
        if json, let data = try? JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]) {
            print(String(decoding: data, as: UTF8.self))
        }
    }

    /// The median of `runs` timings of `body` in milliseconds, the first two left out (warm-up).
    static func medianMilliseconds(runs: Int, _ body: () async throws -> Void) async throws -> Double {
        var samples: [Double] = []
        let clock = ContinuousClock()
        for i in 0..<runs {
            let start = clock.now
            try await body()
            let elapsed = clock.now - start
            if i >= 2 { samples.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1e3) }
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    /// A prompt of about `bytes` UTF-8 bytes, with an e-mail address, a phone number and an IP address in it.
    static func prompt(bytes: Int) -> String {
        let sentences = [
            "Could you summarise the quarterly report for the operations team and list the three biggest risks? ",
            "My colleague can be reached at jordan.miller@example.com or on +1 415 555 0132 during office hours. ",
            "The shipment left the warehouse on Tuesday and should arrive before the end of the week. ",
            "Please keep the tone friendly, avoid jargon, and write no more than two short paragraphs. ",
            "Server 10.20.30.40 restarted twice last night; the logs mention a timeout in the payment service. ",
        ]
        var text = ""
        var k = 0
        while text.utf8.count < bytes { text += sentences[k % sentences.count]; k += 1 }
        return String(text.utf8.prefix(bytes))!
    }

    /// Median and p99 of a full input check (the built-in default policy plus a ban list) on a prompt of about `bytes`.
    static func inputCheckMicros(bytes: Int) throws -> (median: Double, p99: Double) {
        var config = GuardrailsConfig.builtInDefault
        config.input.banList = BanListCheckConfig(action: .block, words: ["forbidden phrase", "internal codename", "darn"])
        let policy = try GuardrailPolicy(name: "bench", config: config)
        let text = prompt(bytes: bytes)
        var samples: [Double] = []
        let clock = ContinuousClock()
        for i in 0..<(bytes > 4096 ? 300 : 2000) {
            let start = clock.now
            let outcome = policy.check(text, direction: .input, book: PlaceholderBook())
            let elapsed = clock.now - start
            if i >= 50 { samples.append(Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6) }
            precondition(outcome.blockedBy == nil)
        }
        if ProcessInfo.processInfo.environment["SLUICE_EVAL_BREAKDOWN"] != nil {
            let t = ScalarText(text)
            for type in PIIType.allCases {
                let scanner = PIIScanner(types: [type])
                let start = clock.now
                for _ in 0..<200 { _ = scanner.scan(t) }
                print("  \(type.rawValue): \((clock.now - start) / 200)")
            }
            let scorer = InjectionScorer()
            var start = clock.now
            for _ in 0..<200 { _ = scorer.assess(text) }
            print("  injection: \((clock.now - start) / 200)")
            start = clock.now
            for _ in 0..<200 { _ = ScalarText(text) }
            print("  scalars: \((clock.now - start) / 200)")
        }
        samples.sort()
        return (samples[samples.count / 2], samples[min(samples.count - 1, samples.count * 99 / 100)])
    }

    static func printErrors(_ examples: [LabelledPIIText], type: PIIType) {
        let scanner = PIIScanner()
        for example in examples {
            let text = ScalarText(example.text)
            let found = scanner.scan(text).filter { $0.type == type }
            let labelled = example.spans.filter { $0.type == type }
            func context(_ a: Int, _ b: Int) -> String {
                "\(text.slice(max(0, a - 25), a))⟦\(text.slice(a, b))⟧\(text.slice(b, min(text.count, b + 12)))".replacingOccurrences(of: "\n", with: "⏎")
            }
            for f in found where !labelled.contains(where: { min($0.end, f.end) > max($0.start, f.start) }) { print("FP  " + context(f.start, f.end)) }
            for l in labelled where !found.contains(where: { min(l.end, $0.end) > max(l.start, $0.start) }) { print("FN  " + context(l.start, l.end)) }
        }
    }

    /// The area under the ROC curve of scores against labels (ties count half).
    static func auc(_ pairs: [(Double, Bool)]) -> Double {
        let positives = pairs.filter(\.1).map(\.0).sorted()
        let negatives = pairs.filter { !$0.1 }.map(\.0).sorted()
        guard !positives.isEmpty, !negatives.isEmpty else { return 0.5 }
        var total = 0.0
        var below = 0, equal = 0
        for p in positives {
            while below < negatives.count && negatives[below] < p { below += 1 }
            equal = below
            while equal < negatives.count && negatives[equal] == p { equal += 1 }
            total += Double(below) + 0.5 * Double(equal - below)
        }
        return total / Double(positives.count * negatives.count)
    }

    static func lines(_ path: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }

    static func readPII(_ path: String) throws -> [LabelledPIIText] {
        try lines(path).compactMap { row in
            guard let text = row["text"] as? String else { return nil }
            let spans = (row["spans"] as? [[String: Any]] ?? []).compactMap { span -> LabelledPIIText.Span? in
                guard let name = span["type"] as? String, let type = PIIEvaluation.datasetTypes[name] ?? PIIType(rawValue: name),
                    let start = span["start"] as? Int, let end = span["end"] as? Int
                else { return nil }
                return LabelledPIIText.Span(type: type, start: start, end: end)
            }
            return LabelledPIIText(text: text, spans: spans, source: row["source"] as? String ?? "")
        }
    }
}
