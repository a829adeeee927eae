import ArgumentParser
import Foundation
import SluiceGuardrails

/// `sluice eval grounding`: the grounding detector on labelled answers (grounded or
/// hallucinated, with their context). The threshold is chosen on the first half of the
/// questions and reported on the second half, beside two baselines on the same rows; a second
/// file from another source (answers quoted from their passages) gives the false-flag rate.
struct GroundingEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grounding", abstract: "Accuracy of the grounding detector, threshold tuned on one half and reported on the other.")

    @Option(help: "Labelled answers: {\"context\", \"answer\", \"label\": 1 grounded | 0 hallucinated} per line.")
    var labelled: String

    @Option(help: "Answers from another source that are all grounded: {\"answers\": [...], \"passage_ids\"} with --corpus.")
    var grounded: String?

    @Option(help: "Passages for --grounded: {\"id\", \"text\"} per line.")
    var corpus: String?

    func run() throws {
        let rows = try GuardrailsEval.lines(labelled).compactMap { row -> (String, String, Bool)? in
            guard let context = row["context"] as? String, let answer = row["answer"] as? String, let label = row["label"] as? Int else { return nil }
            return (context, answer, label == 1)
        }
        // Rows come as pairs per question: halves split between questions, never inside a pair.
        let half = (rows.count / 2) & ~1
        let tune = Array(rows[..<half])
        let held = Array(rows[half...])
        func accuracy(_ set: [(String, String, Bool)], _ predict: ((String, String, Bool)) -> Bool) -> Double {
            Double(set.filter { predict($0) == $0.2 }.count) / Double(max(1, set.count))
        }
        func detector(_ threshold: Double) -> ((String, String, Bool)) -> Bool {
            let scorer = GroundingScorer(threshold: threshold)
            return { scorer.score(answer: $0.1, passages: [$0.0]).unsupported.isEmpty }
        }
        var best = (threshold: 0.5, accuracy: 0.0)
        for step in 1...19 {
            let t = Double(step) * 0.05
            let a = accuracy(tune, detector(t))
            if a > best.accuracy { best = (t, a) }
        }
        let words: ((String, String, Bool)) -> Bool = { $0.1.split(whereSeparator: { $0.isWhitespace }).count <= 3 }
        let every: ((String, String, Bool)) -> Bool = { row in
            let context = Set(row.0.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }))
            return row.1.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }).allSatisfy { context.contains($0) }
        }
        print("Grounding on \(labelled): threshold \(String(format: "%.2f", best.threshold)) chosen on the first \(tune.count) rows (accuracy \(String(format: "%.3f", best.accuracy)) there)")
        print("  on the other \(held.count) rows (not used for tuning):")
        print(String(format: "    Sluice's detector                        %.3f", accuracy(held, detector(best.threshold))))
        print(String(format: "    Sluice's detector at its default (0.60)  %.3f", accuracy(held, detector(0.6))))
        print(String(format: "    baseline: three words or fewer           %.3f", accuracy(held, words)))
        print(String(format: "    baseline: every answer word in context   %.3f", accuracy(held, every)))
        print(String(format: "  whole file: detector at 0.60 %.3f; baselines %.3f and %.3f", accuracy(rows, detector(0.6)), accuracy(rows, words), accuracy(rows, every)))
        if let grounded, let corpus {
            var passages: [String: String] = [:]
            for row in try GuardrailsEval.lines(corpus) { if let id = row["id"] as? String, let text = row["text"] as? String { passages[id] = text } }
            let answered = try GuardrailsEval.lines(grounded).flatMap { row -> [(String, [String])] in
                guard let answers = row["answers"] as? [String], let ids = row["passage_ids"] as? [String] else { return [] }
                return answers.filter { !$0.isEmpty }.map { ($0, ids.compactMap { passages[$0] }) }
            }
            for threshold in [best.threshold, 0.6] {
                let scorer = GroundingScorer(threshold: threshold)
                let flagged = answered.filter { !scorer.score(answer: $0.0, passages: $0.1).unsupported.isEmpty }.count
                print(
                    String(
                        format: "  another source (%@, answers quoted from their passages, all grounded), threshold %.2f: flagged %d of %d (%.3f)", grounded,
                        threshold, flagged, answered.count, Double(flagged) / Double(max(1, answered.count))))
            }
        }
    }
}
