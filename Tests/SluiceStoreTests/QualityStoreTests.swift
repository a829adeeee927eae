import Logging
import SluiceCore
import SluiceStore
import Testing

/// Feedback, judgements, grouped metrics and experiments' state: the same contract on SQLite and PostgreSQL.
@Suite struct QualityStoreTests {
    func stores() async throws -> [(String, any QualityStore, any AuditLogStore)] {
        let sqlite = try SQLiteDatabase(path: ":memory:")
        var out: [(String, any QualityStore, any AuditLogStore)] = [("sqlite", SQLiteQualityStore(database: sqlite), SQLiteAuditLogStore(database: sqlite))]
        if let url = try await PostgresTestDatabase.fresh() {
            let db = try await PostgresDatabase(url: url, logger: Logger(label: "test"))
            out.append(("postgres", PostgresQualityStore(database: db), PostgresAuditLogStore(database: db)))
        }
        return out
    }

    func record(_ id: String, variant: String, status: Int = 200, latency: Double, cost: Double, time: Double = 100) -> AuditRecord {
        AuditRecord(
            id: id, time: time, endpoint: "flows.run", modelRequested: "flow:triage", deployment: variant == "control" ? "small" : "large", status: status,
            errorCode: nil, latencyMs: latency, ttftMs: nil, tokensIn: 1, tokensOut: 1, costUSD: cost, cacheStatus: "miss", stream: false, attempts: 1,
            teamID: "team-a", flow: "triage", flowVersion: variant == "control" ? 3 : 4, experiment: "triage-v4", variant: variant)
    }

    @Test func feedbackIsOnePerRequestAndUserAndFilters() async throws {
        for (name, store, _) in try await stores() {
            let subject = RequestSubject(flow: "triage", flowVersion: 3, model: "small", experiment: "triage-v4", variant: "control")
            try await store.putFeedback(Feedback(requestID: "r1", user: "ann", teamID: "t", score: 1, time: 10, subject: subject))
            try await store.putFeedback(Feedback(requestID: "r1", user: "ann", teamID: "t", score: 0, label: "wrong", comment: "no", time: 11, subject: subject))
            try await store.putFeedback(Feedback(requestID: "r1", user: "bob", teamID: "t", score: 0.5, time: 12, subject: subject))
            var other = subject
            other.variant = "treatment"
            other.flowVersion = 4
            try await store.putFeedback(Feedback(requestID: "r2", teamID: "t", score: 1, time: 13, subject: other))
            let r1 = try await store.feedback(requestID: "r1").sorted { $0.user < $1.user }
            #expect(r1.map(\.user) == ["ann", "bob"], "\(name): a later feedback by the same user replaces the first")
            #expect(r1.first?.score == 0 && r1.first?.label == "wrong" && r1.first?.comment == "no", "\(name)")
            #expect(try await store.feedback(QualityFilter(variant: "treatment")).map(\.requestID) == ["r2"], "\(name)")
            #expect(try await store.feedback(QualityFilter(flowVersion: 3)).count == 2, "\(name)")
            #expect(try await store.feedback(QualityFilter(from: 12)).map(\.time) == [13, 12], "\(name): newest first")
            #expect(try await store.feedback(QualityFilter(limit: 1)).count == 1, "\(name)")
        }
    }

    @Test func groupMetricsSumRequestsFeedbackAndJudges() async throws {
        for (name, store, log) in try await stores() {
            try await log.append([
                record("a1", variant: "control", latency: 100, cost: 0.01), record("a2", variant: "control", status: 502, latency: 300, cost: 0.03),
                record("b1", variant: "treatment", latency: 50, cost: 0.02),
                // Not in the experiment: left out.
                AuditRecord(
                    id: "x", time: 1, endpoint: "chat.completions", modelRequested: "small", deployment: "small", status: 200, errorCode: nil,
                    latencyMs: 9, ttftMs: nil, tokensIn: 1, tokensOut: 1, costUSD: 1, cacheStatus: "miss", stream: false, attempts: 1),
            ])
            let control = RequestSubject(flow: "triage", flowVersion: 3, model: "small", experiment: "triage-v4", variant: "control")
            let treatment = RequestSubject(flow: "triage", flowVersion: 4, model: "large", experiment: "triage-v4", variant: "treatment")
            try await store.putFeedback(Feedback(requestID: "a1", score: 1, time: 1, subject: control))
            try await store.putFeedback(Feedback(requestID: "a2", score: 0, time: 1, subject: control))
            try await store.putFeedback(Feedback(requestID: "b1", score: 1, time: 1, subject: treatment))
            try await store.putJudgement(Judgement(requestID: "a1", judge: "helpful", score: 4, reason: "ok", judgeModel: "big", costUSD: 0.001, time: 1, subject: control))
            try await store.putJudgement(Judgement(requestID: "a2", judge: "helpful", score: 2, reason: "meh", judgeModel: "big", costUSD: 0.001, time: 1, subject: control))
            let groups = try await store.groupMetrics(QualityFilter(experiment: "triage-v4"), by: .variant)
            #expect(Set(groups.keys) == ["control", "treatment"], "\(name)")
            let c = try #require(groups["control"], "\(name)")
            #expect(c.requests == 2 && c.successes == 1, "\(name)")
            #expect(c.latencyMs == Moments([100, 300]), "\(name)")
            #expect(abs(c.costUSD.sum - 0.04) < 1e-12 && abs(c.costUSD.sumOfSquares - 0.001) < 1e-12, "\(name)")
            #expect(c.feedback == Moments([1, 0]) && c.feedback.isBinary, "\(name)")
            #expect(c.judges["helpful"] == Moments([4, 2]), "\(name)")
            #expect(groups["treatment"]?.requests == 1 && groups["treatment"]?.judges.isEmpty == true, "\(name)")
            let byModel = try await store.groupMetrics(QualityFilter(flow: "triage"), by: .model)
            #expect(byModel["large"]?.requests == 1 && byModel["small"]?.feedback.count == 2, "\(name): the audit log's deployment is the model")
            let byVersion = try await store.groupMetrics(QualityFilter(flow: "triage", model: "small"), by: .flowVersion)
            #expect(Array(byVersion.keys) == ["3"], "\(name)")
            let judged = try await store.judgements(QualityFilter(), judge: "helpful")
            #expect(judged.count == 2 && judged.allSatisfy { $0.judgeModel == "big" }, "\(name)")
            #expect(try await store.judgements(requestID: "a2").first?.reason == "meh", "\(name)")
            #expect(try await log.record(id: "b1")?.variant == "treatment", "\(name): the audit log keeps the variant")
            #expect(try await log.search(AuditSearch(experiment: "triage-v4", variant: "control")).count == 2, "\(name)")
        }
    }

    @Test func experimentStateRoundTrips() async throws {
        for (name, store, _) in try await stores() {
            #expect(try await store.experimentState("e") == nil, "\(name)")
            try await store.putExperimentState(ExperimentState(name: "e", status: .paused, updatedAt: 5, minimumP: ["treatment": 0.25]))
            try await store.putExperimentState(ExperimentState(name: "e", status: .stopped, updatedAt: 6, minimumP: ["treatment": 0.01, "b": 1], promoted: "treatment"))
            let s = try #require(try await store.experimentState("e"), "\(name)")
            #expect(s.status == .stopped && s.updatedAt == 6 && s.promoted == "treatment", "\(name)")
            #expect(s.minimumP == ["treatment": 0.01, "b": 1], "\(name)")
        }
    }

    @Test func anEvaluationRunIsHeldByOneReplicaUntilItGoesQuiet() async throws {
        for (name, store, _) in try await stores() {
            try await store.putEvalRun(EvalRunRecord(id: "eval_1", status: .queued, createdAt: 1, updatedAt: 1, spec: "{}", total: 4))
            #expect(try await store.claimEvalRun(id: "eval_1", worker: "a", now: 10, staleBefore: 0), "\(name): free")
            #expect(try await store.claimEvalRun(id: "eval_1", worker: "b", now: 11, staleBefore: 5) == false, "\(name): a moved it at 10")
            #expect(try await store.claimEvalRun(id: "eval_1", worker: "a", now: 12, staleBefore: 5), "\(name): its own")
            #expect(try await store.claimEvalRun(id: "eval_1", worker: "b", now: 100, staleBefore: 50), "\(name): a went quiet")
            var run = try #require(try await store.evalRun(id: "eval_1"))
            #expect(run.worker == "b" && run.updatedAt == 100, "\(name)")
            run.status = .completed
            try await store.putEvalRun(run)
            #expect(try await store.claimEvalRun(id: "eval_1", worker: "c", now: 1000, staleBefore: 999) == false, "\(name): a finished run is nobody's")
            #expect(try await store.evalRun(id: "eval_1")?.worker == "b", "\(name): kept by a put")
        }
    }
}
