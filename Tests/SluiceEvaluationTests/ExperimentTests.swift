import SluiceCore
import Testing

@testable import SluiceEvaluation

@Suite struct ExperimentTests {
    @Test func assignmentIsStickyAndFollowsTheSplit() {
        let split = ["control": 50.0, "treatment": 50.0]
        var counts: [String: Int] = [:]
        for i in 0..<10_000 {
            let v = Experiments.variant(experiment: "triage-v4", key: "user-\(i)", split: split)
            #expect(v == Experiments.variant(experiment: "triage-v4", key: "user-\(i)", split: split))
            counts[v, default: 0] += 1
        }
        #expect(abs(Double(counts["control"] ?? 0) / 10_000 - 0.5) < 0.02, "\(counts)")
        let uneven = (0..<10_000).filter { Experiments.variant(experiment: "x", key: "u\($0)", split: ["a": 9, "b": 1]) == "b" }.count
        #expect(abs(Double(uneven) / 10_000 - 0.1) < 0.015, "\(uneven)")
        // The same user lands independently in different experiments.
        let same = (0..<2000).filter {
            Experiments.variant(experiment: "e1", key: "u\($0)", split: split) == Experiments.variant(experiment: "e2", key: "u\($0)", split: split)
        }.count
        #expect(abs(Double(same) / 2000 - 0.5) < 0.05)
        // A fixed value: the hash is the same on every replica and platform.
        #expect(Experiments.stableHash("triage-v4\u{0}ann") == Experiments.stableHash("triage-v4\u{0}ann"))
        #expect(Experiments.variant(experiment: "e", key: "k", split: ["only": 1, "never": 0]) == "only")
    }

    func config(_ stopping: ExperimentConfig.Stopping, primary: String = "feedback", min: Int = 50) -> ExperimentConfig {
        var c = ExperimentConfig(
            flow: "triage", variants: ["control": .init(version: 3), "treatment": .init(version: 4, model: "mini")], split: ["control": 50, "treatment": 50])
        c.stopping = stopping
        c.primary = primary
        c.minSamples = min
        c.guardrailMetrics = ["latency_ms"]
        return c
    }

    func group(n: Int, successes: Int, feedbackUp: Int, latency: [Double]) -> GroupMetrics {
        GroupMetrics(
            requests: n, successes: successes, latencyMs: Moments(latency), costUSD: Moments(Array(repeating: 0.001, count: n)),
            feedback: Moments(count: n, sum: Double(feedbackUp), sumOfSquares: Double(feedbackUp)))
    }

    @Test func fixedHorizonDecides() {
        let latencies = (0..<200).map { 100 + Double($0 % 7) }
        let groups = ["control": group(n: 200, successes: 200, feedbackUp: 100, latency: latencies), "treatment": group(n: 200, successes: 200, feedbackUp: 140, latency: latencies)]
        let a = ExperimentAnalysis(name: "e", config: config(.fixed), groups: groups, judges: [], previousMinimumP: [:])
        #expect(a.decision == .winner("treatment"), "\(a.reason)")
        let feedback = a.comparisons.first { $0.metric == "feedback" }
        #expect(feedback?.test.test == "two_proportion_z" && feedback?.better == true)
        #expect(a.variants.map(\.name) == ["control", "treatment"] && a.variants[1].metrics["feedback"]?.mean == 0.7)
        let few = ExperimentAnalysis(
            name: "e", config: config(.fixed, min: 500), groups: groups, judges: [], previousMinimumP: [:])
        #expect(few.decision == .continueRunning)
        let equal = ExperimentAnalysis(
            name: "e", config: config(.fixed),
            groups: ["control": group(n: 200, successes: 200, feedbackUp: 100, latency: latencies), "treatment": group(n: 200, successes: 200, feedbackUp: 103, latency: latencies)],
            judges: [], previousMinimumP: [:])
        #expect(equal.decision == .noDifference)
    }

    @Test func aWinnerWorseOnAGuardrailMetricIsNotDeclared() {
        let fast = (0..<200).map { 100 + Double($0 % 7) }
        let slow = (0..<200).map { 300 + Double($0 % 7) }
        let groups = ["control": group(n: 200, successes: 200, feedbackUp: 100, latency: fast), "treatment": group(n: 200, successes: 200, feedbackUp: 150, latency: slow)]
        let a = ExperimentAnalysis(name: "e", config: config(.fixed), groups: groups, judges: [], previousMinimumP: [:])
        #expect(a.decision == .continueRunning)
        #expect(a.reason.contains("latency_ms"))
    }

    @Test func sequentialKeepsTheSmallestAlwaysValidP() {
        let latencies = (0..<400).map { 100 + Double($0 % 7) }
        let strong = ["control": group(n: 400, successes: 400, feedbackUp: 160, latency: latencies), "treatment": group(n: 400, successes: 400, feedbackUp: 260, latency: latencies)]
        let first = ExperimentAnalysis(name: "e", config: config(.sequential), groups: strong, judges: [], previousMinimumP: [:])
        #expect(first.decision == .winner("treatment"), "\(first.reason)")
        let p = first.minimumP["treatment"] ?? 1
        #expect(p < 0.05)
        // A later look with a weaker difference keeps the earlier minimum.
        let weak = ["control": group(n: 400, successes: 400, feedbackUp: 200, latency: latencies), "treatment": group(n: 400, successes: 400, feedbackUp: 205, latency: latencies)]
        let later = ExperimentAnalysis(name: "e", config: config(.sequential), groups: weak, judges: [], previousMinimumP: first.minimumP)
        #expect(later.minimumP["treatment"] == p)
        let fresh = ExperimentAnalysis(name: "e", config: config(.sequential), groups: weak, judges: [], previousMinimumP: [:])
        #expect(fresh.decision == .continueRunning)
        #expect(fresh.comparisons.first { $0.metric == "feedback" }?.alwaysValidP ?? 0 > 0.05)
    }

    @Test func configProblemsAreNamed() throws {
        let yaml = """
            providers: {sim: {kind: simulated}}
            models: [{name: small, provider: sim, upstream_model: s}]
            flows:
              triage: {model: small, messages: [{role: user, content: hi}], slo: {min_feedback: 1.5, min_judge: {nobody: 3}}}
            judges:
              helpful: {model: nope, rubric: r.mustache, scale: {min: 5, max: 1}, sample_rate: 2, flows: [ghost]}
            experiments:
              e1: {flow: triage, variants: {control: {version: 1}, t: {model: ghost}}, split: {control: 1}, primary: judge:other, alpha: 0.9}
              e2: {flow: triage, alias: x, variants: {only: {}}}
            """
        #expect {
            try SluiceConfig.load(yaml: yaml, environment: [:])
        } throws: { error in
            let text = "\(error)"
            return ["judges.helpful.model", "judges.helpful.scale", "judges.helpful.sample_rate", "judges.helpful.flows[0]",
                "experiments.e1.variants.t.model", "experiments.e1.split", "experiments.e1.primary", "experiments.e1.alpha",
                "experiments.e2", "experiments.e2.variants", "flows.triage.slo.min_feedback", "flows.triage.slo.min_judge.nobody"].allSatisfy { text.contains($0) }
        }
    }
}

@Suite struct EvaluationConfigTests {
    @Test func judgesAndExperimentsLoad() throws {
        let config = try SluiceConfig.load(
            yaml: """
                providers: {sim: {kind: simulated}}
                models: [{name: small, provider: sim, upstream_model: s}, {name: large, provider: sim, upstream_model: l}]
                aliases: {smart: {deployments: [small, large]}}
                judges:
                  strict: {model: large, rubric: r.mustache, scale: pass_fail}
                  helpful: {model: smart, rubric: r.mustache}
                experiments:
                  models: {alias: smart, variants: {a: {model: small}, b: {model: large}}, primary: "judge:strict", stopping: fixed, min_samples: 30, guardrail_metrics: [cost_usd]}
                """, environment: [:])
        #expect(config.judges["strict"]?.scale == .passFail && config.judges["strict"]!.bounds == (0, 1))
        #expect(config.judges["helpful"]!.bounds == (1, 5))
        let e = try #require(config.experiments["models"])
        #expect(e.split == ["a": 1, "b": 1] && e.controlVariant == "a" && e.sticky == .user)
        #expect(throws: (any Error).self) {
            try SluiceConfig.load(
                yaml: """
                    providers: {sim: {kind: simulated}}
                    models: [{name: small, provider: sim, upstream_model: s}]
                    judges: {j: {model: small, rubric: r.mustache, scale: thirds}}
                    """, environment: [:])
        }
    }
}
