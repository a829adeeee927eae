import Foundation
import SluiceCore
import Testing

@testable import SluiceEvaluation

@Suite struct JudgeAndReportTests {
    @Test func judgeRepliesAreReadOnTheirScale() {
        #expect(Judges.parse(#"Sure. {"score": 4, "reason": "clear"}"#, scale: (1, 5))! == (4, "clear"))
        #expect(Judges.parse("```json\n{\"score\": \"3.5\", \"reason\": \"ok\"}\n```", scale: (1, 5))! == (3.5, "ok"))
        #expect(Judges.parse(#"{"score": 9, "reason": "x"} I'd say 2"#, scale: (1, 5))?.0 == 2, "off-scale JSON falls back to the first number on the scale")
        #expect(Judges.parse("PASS: it answers", scale: (0, 1))?.0 == 1)
        #expect(Judges.parse(#"{"score": "fail", "reason": "wrong"}"#, scale: (0, 1))! == (0, "wrong"))
        #expect(Judges.parse("no idea", scale: (1, 5)) == nil)
        #expect(Judges.parsePairwise(#"{"winner": 2, "reason": "b"}"#).0 == 2)
        #expect(Judges.parsePairwise(#"{"winner": "tie", "reason": "same"}"#).0 == nil)
    }

    @Test func samplingHoldsItsRate() {
        let n = (0..<20_000).filter { Judges.isSampled(requestID: "req-\($0)", judge: "helpful", rate: 0.1) }.count
        #expect(abs(Double(n) / 20_000 - 0.1) < 0.01, "\(n)")
        #expect(Judges.isSampled(requestID: "r", judge: "j", rate: 1))
        #expect(!Judges.isSampled(requestID: "r", judge: "j", rate: 0))
    }

    @Test func scorersScore() throws {
        #expect(try Scorer(parsing: "exact").score(output: " Billing\n", reference: "billing", latencyMs: 0, costUSD: 0, schema: nil) == 1)
        #expect(try Scorer(parsing: "exact").score(output: #"{"a":1,"b":2}"#, reference: #"{"b": 2, "a": 1}"#, latencyMs: 0, costUSD: 0, schema: nil) == 1)
        #expect(try Scorer(parsing: "contains:refund").score(output: "A REFUND is due", reference: nil, latencyMs: 0, costUSD: 0, schema: nil) == 1)
        #expect(try Scorer(parsing: "not_contains:sorry").score(output: "Sorry!", reference: nil, latencyMs: 0, costUSD: 0, schema: nil) == 0)
        #expect(try Scorer(parsing: "regex:^[A-Z]{3}-\\d+$").score(output: "ABC-12", reference: nil, latencyMs: 0, costUSD: 0, schema: nil) == 1)
        let schema: JSONValue = .object(["type": "object", "required": .array(["team"]), "properties": .object(["team": .object(["type": "string"])])])
        #expect(Scorer.jsonSchema.score(output: #"{"team":"billing"}"#, reference: nil, latencyMs: 0, costUSD: 0, schema: schema) == 1)
        #expect(Scorer.jsonSchema.score(output: #"{"team":3}"#, reference: nil, latencyMs: 0, costUSD: 0, schema: schema) == 0)
        #expect(Scorer.latency.score(output: "", reference: nil, latencyMs: 12, costUSD: 0, schema: nil) == 12)
        #expect(try Scorer(parsing: "judge:helpful") == .judge("helpful"))
        #expect(throws: SluiceError.self) { try Scorer(parsing: "regex:(") }
        #expect(throws: SluiceError.self) { try Scorer(parsing: "bleu") }
    }

    func results() -> [EvalCaseResult] {
        var out: [EvalCaseResult] = []
        for i in 0..<10 {
            out.append(EvalCaseResult(caseID: "\(i)", variant: "strong", input: "in", reference: "r", output: "o", error: nil, latencyMs: 400, costUSD: 0.01, scores: ["judge:helpful": 4.6]))
            out.append(EvalCaseResult(caseID: "\(i)", variant: "cheap", input: "in", reference: "r", output: "o", error: nil, latencyMs: 100, costUSD: 0.001, scores: ["judge:helpful": 4.5]))
            out.append(EvalCaseResult(
                caseID: "\(i)", variant: "tiny", input: "in", reference: "r", output: i == 0 ? "" : "<b>o</b>", error: i == 0 ? "502: upstream" : nil, latencyMs: 50,
                costUSD: 0.0001, scores: i == 0 ? [:] : ["judge:helpful": 2.0]))
        }
        return out
    }

    @Test func recommendsTheCheapestVariantNearTheBest() throws {
        let gate = try EvalReport.Gate(parsing: "helpful>=4.0")
        let report = EvalReport(
            flow: "triage", dataset: "cases.jsonl", variants: ["strong", "cheap", "tiny"], scorers: [.judge("helpful"), .latency], results: results(),
            margin: 0.05, maxP95Ms: nil, gates: [gate], startedAt: 0, finishedAt: 1)
        #expect(report.recommendation.variant == "cheap", "\(report.recommendation.reason)")
        #expect(report.gates.first?.failed == ["tiny"])
        #expect(!report.passed)
        #expect(report.summaries.first { $0.variant == "tiny" }?.errors == 1)
        let slow = EvalReport(
            flow: "triage", dataset: "d", variants: ["strong", "cheap"], scorers: [.judge("helpful")], results: results().filter { $0.variant != "tiny" },
            margin: 0.01, maxP95Ms: 500, gates: [], startedAt: 0, finishedAt: 1)
        #expect(slow.recommendation.variant == "strong", "a 1% margin leaves only the best")
        let html = report.html
        #expect(html.hasPrefix("<!doctype html>") && html.contains("<svg") && html.contains("&lt;b&gt;o&lt;/b&gt;") && !html.contains("<b>o</b>"))
        #expect(!html.contains("<script") && !html.contains("src=\"http"))
        let back = try #require(EvalCaseResult(json: results()[2].json))
        #expect(back == results()[2])
        #expect(throws: SluiceError.self) { try EvalReport.Gate(parsing: "helpful") }
    }
}
