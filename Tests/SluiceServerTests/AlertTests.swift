import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SluiceCore
import SluiceRouting
import SluiceStore
import Synchronization
import Testing
@testable import SluiceObservability
@testable import SluiceServer

/// Alert rules: latency, error rate, breaker and budget rules fire and resolve; the webhook gets
/// each change, retried; `/admin/alerts` shows the states.
@Suite struct AlertTests {
    final class Recorder: AlertNotifier {
        let events = Mutex<[AlertEvent]>([])
        func send(_ event: AlertEvent) async { events.withLock { $0.append(event) } }
    }

    func sample(_ time: Double, model: String = "m", status: Int = 200, ms: Double) -> AuditRecord {
        AuditRecord(
            id: UUID().uuidString, time: time, endpoint: "chat.completions", modelRequested: model, deployment: model, status: status, errorCode: nil,
            latencyMs: ms, ttftMs: nil, tokensIn: 1, tokensOut: 1, costUSD: 0, cacheStatus: "miss", stream: false, attempts: 1)
    }

    func evaluator(_ rules: [AlertRule], recent: RecentRequests, board: DeploymentBoard = DeploymentBoard(names: ["m"], breaker: .init()))
        throws -> AlertEvaluator
    {
        let db = try SQLiteDatabase(path: ":memory:")
        return AlertEvaluator(
            config: AlertsConfig(rules: rules), recent: recent, board: board, access: SQLiteAccessStore(database: db),
            ledger: SQLiteAuditLogStore(database: db), notifier: nil, logger: Logger(label: "test"))
    }

    @Test func latencyAndErrorRateFireAndResolve() async throws {
        var latency = AlertRule(name: "slow", kind: .latency)
        latency.model = "m"
        latency.thresholdMs = 500
        latency.windowS = 60
        latency.minRequests = 10
        var errors = AlertRule(name: "errors", kind: .errorRate)
        errors.threshold = 0.2
        errors.windowS = 60
        errors.minRequests = 10
        let recent = RecentRequests(capacity: 1000)
        let alerts = try evaluator([latency, errors], recent: recent)
        // Too few requests: nothing is decided.
        for i in 0..<5 { recent.add(sample(1000 + Double(i), ms: 900)) }
        #expect(await alerts.evaluate(now: 1010).isEmpty)
        // 20 requests, 90% of them slow, 5 of 20 failing: both fire.
        for i in 0..<15 { recent.add(sample(1005 + Double(i), status: i < 5 ? 503 : 200, ms: i < 2 ? 50 : 900)) }
        let fired = await alerts.evaluate(now: 1030)
        #expect(Set(fired.map(\.rule.name)) == ["slow", "errors"])
        #expect(fired.allSatisfy { $0.status == "firing" })
        let slow = try #require(fired.first { $0.rule.name == "slow" })
        #expect(slow.value == 900 && slow.threshold == 500)
        #expect(slow.message.contains("p95 latency of m"))
        // Still firing: no new event.
        #expect(await alerts.evaluate(now: 1031).isEmpty)
        // A minute later only fast, successful requests are in the window: both resolve.
        for i in 0..<20 { recent.add(sample(1100 + Double(i), ms: 40)) }
        let resolved = await alerts.evaluate(now: 1125)
        #expect(Set(resolved.map(\.rule.name)) == ["slow", "errors"])
        #expect(resolved.allSatisfy { $0.status == "resolved" })
        #expect(alerts.snapshot().allSatisfy { !$0.1.firing && $0.1.lastEvaluated == 1125 })
    }

    @Test func anSLOBurnFiresOnlyWhenBothWindowsBurn() async throws {
        var rule = AlertRule(name: "triage-burn", kind: .sloBurn)
        rule.flow = "triage"
        rule.objective = "success_rate"
        rule.burnRate = 10
        rule.windowS = 3600
        rule.shortWindowS = 300
        rule.minRequests = 20
        let recent = RecentRequests(capacity: 10_000)
        let db = try SQLiteDatabase(path: ":memory:")
        let alerts = AlertEvaluator(
            config: AlertsConfig(rules: [rule]), recent: recent, board: DeploymentBoard(names: ["m"], breaker: .init()),
            access: SQLiteAccessStore(database: db), ledger: SQLiteAuditLogStore(database: db), notifier: nil, logger: Logger(label: "test"),
            flowObjectives: ["triage": FlowConfig.SLO(successRate: 0.99)])
        func run(_ time: Double, failed: Bool) -> AuditRecord {
            var r = sample(time, status: failed ? 502 : 200, ms: 100)
            r.flow = "triage"
            r.flowVersion = 1
            return r
        }
        // An hour at 0.5% failures: half the allowed rate, no alert.
        for i in 0..<200 { recent.add(run(10_000 + Double(i) * 17, failed: i % 200 == 0)) }
        #expect(await alerts.evaluate(now: 13_500).isEmpty)
        // A burst of failures in the last 5 minutes: the short window burns at about 53x, the hour at about 13x.
        for i in 0..<40 { recent.add(run(13_300 + Double(i), failed: i < 30)) }
        let fired = await alerts.evaluate(now: 13_400)
        #expect(fired.map(\.status) == ["firing"])
        #expect((fired.first?.value ?? 0) > 10)
        #expect(fired.first?.message.contains("success_rate error budget") == true)
        // Five quiet minutes later the short window has recovered: resolved, though the hour still burns.
        for i in 0..<30 { recent.add(run(13_450 + Double(i) * 10, failed: false)) }
        let resolved = await alerts.evaluate(now: 13_760)
        #expect(resolved.map(\.status) == ["resolved"])
        // Other flows' runs never count.
        var other = run(13_761, failed: true)
        other.flow = "summarize"
        recent.add(other)
        #expect(await alerts.evaluate(now: 13_762).isEmpty)
    }

    @Test func anOpenBreakerFiresAfterItsGrace() async throws {
        let board = DeploymentBoard(names: ["m"], breaker: BreakerConfig(failures: 2, cooldownMs: 600_000))
        var rule = AlertRule(name: "breaker", kind: .breakerOpen)
        rule.deployment = "m"
        rule.forS = 30
        let alerts = try evaluator([rule], recent: RecentRequests(), board: board)
        #expect(await alerts.evaluate(now: 100).isEmpty)
        let status = try #require(board.statuses["m"])
        for _ in 0..<2 {
            _ = status.begin()
            status.finish(.failure)
        }
        #expect(status.breakerState == .open)
        #expect(await alerts.evaluate(now: 200).isEmpty, "open, but not yet for 30 s")
        let fired = await alerts.evaluate(now: 231)
        #expect(fired.map(\.status) == ["firing"])
        #expect(fired.first?.value == 31)
    }

    @Test func budgetRulesReadTheLedgerAndTheWebhookIsRetried() async throws {
        // A webhook that fails once, then accepts.
        let received = Mutex<[JSONValue]>([])
        let calls = Mutex(0)
        let router = Router()
        router.post("/hook") { request, _ -> HTTPResponse.Status in
            let n = calls.withLock { $0 += 1; return $0 }
            if n == 1 { return .internalServerError }
            let body = try await request.body.collect(upTo: 65536)
            if let json = try? JSONCoding.decode(JSONValue.self, from: body) { received.withLock { $0.append(json) } }
            return .ok
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let hook = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: Logger(label: "hook"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await hook.runService() }
            var it = ports.makeAsyncIterator()
            let port = try #require(await it.next())

            let db = try SQLiteDatabase(path: ":memory:")
            let access = SQLiteAccessStore(database: db)
            let ledger = SQLiteAuditLogStore(database: db)
            try await access.insertTeam(TeamRecord(id: "team_1", name: "search", limits: Limits(budgetUSDDay: 10), createdAt: 0))
            let now = 20_000 * 86_400.0 + 3_600
            var spend = sample(now - 60, ms: 1)
            spend.teamID = "team_1"
            spend.costUSD = 9
            try await ledger.append([spend])
            var rule = AlertRule(name: "budget", kind: .budget)
            rule.team = "search"
            rule.fraction = 0.8
            let notifier = WebhookNotifier(config: WebhookConfig(url: "http://127.0.0.1:\(port)/hook", timeoutMs: 2000, retries: 2), logger: Logger(label: "test"))
            let alerts = AlertEvaluator(
                config: AlertsConfig(rules: [rule]), recent: RecentRequests(), board: DeploymentBoard(names: [], breaker: .init()), access: access,
                ledger: ledger, notifier: notifier, logger: Logger(label: "test"))
            let fired = await alerts.evaluate(now: now)
            #expect(fired.map(\.status) == ["firing"])
            #expect(fired.first?.value == 0.9)
            for event in fired { await notifier.send(event) }
            #expect(calls.withLock { $0 } == 2, "one failure, one retry")
            let payload = try #require(received.withLock { $0.first })
            #expect(payload["alert"] == "budget" && payload["status"] == "firing" && payload["team"] == "search")
            #expect(payload["message"]?.stringValue?.contains("90% of its daily budget") == true)
            // Spend from yesterday does not count today.
            #expect(AlertEvaluator.periodStart(.day, now: now) == 20_000 * 86_400)
            group.cancelAll()
        }
    }

    @Test func adminAlertsListsEveryRule() async throws {
        let yaml = AccessTests.yaml + """

            alerts:
              interval_s: 60
              rules:
                - { name: slow-sim, kind: latency, model: sim-small, threshold_ms: 1000 }
                - { name: sim-breaker, kind: breaker_open, deployment: sim-small, for_s: 10 }
            """
        let app = try await TestApp.build(yaml: yaml, adminKey: AccessTests.adminKey)
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/admin/alerts", method: .get, headers: AccessTests.headers(AccessTests.adminKey)) { response in
                #expect(response.status == .ok)
                let data = response.body.json?["data"]?.arrayValue ?? []
                #expect(data.map { $0["name"]?.stringValue ?? "" } == ["slow-sim", "sim-breaker"])
                #expect(data.allSatisfy { $0["status"] == "ok" })
                #expect(data.first?["threshold"]?.doubleValue == 1000)
            }
        }
        for (bad, path) in [
            ("{ name: x, kind: latency }", "alerts.rules[0].threshold_ms"), ("{ name: x, kind: breaker_open, deployment: nope }", "alerts.rules[0].deployment"),
            ("{ name: x, kind: budget, fraction: 0.8 }", "alerts.rules[0]"), ("{ name: x, kind: error_rate, threshold: 2 }", "alerts.rules[0].threshold"),
        ] {
            #expect(throws: (any Error).self, "\(bad)") { try SluiceConfig.load(yaml: TestApp.yaml + "\nalerts: { rules: [\(bad)] }", environment: [:]) }
            do { _ = try SluiceConfig.load(yaml: TestApp.yaml + "\nalerts: { rules: [\(bad)] }", environment: [:]) } catch {
                #expect("\(error)".contains(path), "\(error)")
            }
        }
    }
}
