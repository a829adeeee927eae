import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import SluiceCore
import SluiceStore
import SluiceRouting
import Synchronization

/// The last finished requests (time, model asked for, deployment, status, latency) for alert
/// windows: a ring buffer, so memory is bounded whatever the traffic.
package final class RecentRequests: Sendable {
    package struct Sample: Sendable {
        var time: Double
        var model: String
        var deployment: String?
        var status: Int
        var latencyMs: Double
        var flow: String?
    }

    private let state: Mutex<(samples: [Sample], next: Int)>
    package let capacity: Int

    package init(capacity: Int = 100_000) {
        self.capacity = capacity
        state = Mutex(([], 0))
    }

    package func add(_ r: AuditRecord) {
        let s = Sample(time: r.time + r.latencyMs / 1000, model: r.modelRequested, deployment: r.deployment, status: r.status, latencyMs: r.latencyMs, flow: r.flow)
        state.withLock { state in
            if state.samples.count < capacity {
                state.samples.append(s)
            } else {
                state.samples[state.next] = s
                state.next = (state.next + 1) % capacity
            }
        }
    }

    /// A flow's samples that finished at or after `since`.
    package func samples(since: Double, flow: String) -> [Sample] {
        state.withLock { state in state.samples.filter { $0.time >= since && $0.flow == flow } }
    }

    /// Samples that finished at or after `since` and concern `model` (asked for or served by it; every one when nil).
    package func samples(since: Double, model: String?) -> [Sample] {
        state.withLock { state in
            state.samples.filter { $0.time >= since && (model == nil || $0.model == model || $0.deployment == model) }
        }
    }
}

/// One transition of a rule, as logged and sent to the webhook.
package struct AlertEvent: Sendable {
    package var rule: AlertRule
    /// `firing` or `resolved`.
    package var status: String
    package var value: Double
    package var threshold: Double
    package var message: String
    package var since: Double
    package var at: Double

    package var json: JSONValue {
        var o: [String: JSONValue] = [
            "alert": .string(rule.name), "status": .string(status), "kind": .string(rule.kind.rawValue), "value": .double(value),
            "threshold": .double(threshold), "message": .string(message), "since": .double(since), "at": .double(at),
        ]
        if let m = rule.model { o["model"] = .string(m) }
        if let d = rule.deployment { o["deployment"] = .string(d) }
        if let t = rule.team { o["team"] = .string(t) }
        if let k = rule.key { o["key"] = .string(k) }
        return .object(o)
    }
}

/// Where alert events go.
package protocol AlertNotifier: Sendable {
    func send(_ event: AlertEvent) async
}

/// POSTs each event as JSON to the configured webhook, retrying failures with backoff.
package struct WebhookNotifier: AlertNotifier {
    package let config: WebhookConfig
    package let logger: Logger

    package init(config: WebhookConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    package func send(_ event: AlertEvent) async {
        var request = HTTPClientRequest(url: config.url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        for (name, value) in config.headers { request.headers.add(name: name, value: value) }
        guard let body = try? JSONCoding.encode(event.json) else { return }
        request.body = .bytes(body)
        var delay = Duration.milliseconds(500)
        for attempt in 0...config.retries {
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(config.timeoutMs)))
                _ = try? await response.body.collect(upTo: 64 * 1024)
                if (200..<300).contains(response.status.code) { return }
                logger.warning("alert webhook answered \(response.status.code)", metadata: ["alert": "\(event.rule.name)", "attempt": "\(attempt + 1)"])
            } catch {
                logger.warning("alert webhook failed", metadata: ["alert": "\(event.rule.name)", "attempt": "\(attempt + 1)", "error": "\(error)"])
            }
            guard attempt < config.retries else { break }
            try? await Task.sleep(for: delay)
            delay *= 2
        }
        logger.error("alert webhook gave up", metadata: ["alert": "\(event.rule.name)", "status": "\(event.status)"])
    }
}

/// Evaluates the alert rules every `interval_s`: a rule fires when its condition holds and
/// resolves when it no longer does; each change is logged and sent to the webhook.
/// `GET /admin/alerts` shows every rule's state.
package final class AlertEvaluator: Service, Sendable {
    /// A rule's state as `/admin/alerts` shows it.
    package struct State: Sendable {
        package var firing = false
        /// The last measured value (ms, a fraction, seconds open); nil before a decision.
        package var value: Double?
        /// When the current state began.
        package var since: Double?
        package var lastEvaluated: Double?
        /// When the breaker was first seen open (breaker rules).
        var openSince: Double?
    }

    package let config: AlertsConfig
    package let recent: RecentRequests
    package let board: DeploymentBoard
    package let access: any AccessStore
    package let ledger: any SpendLedger
    package let notifier: (any AlertNotifier)?
    package let logger: Logger
    /// Each flow's objectives (`slo_burn` rules).
    package let flowObjectives: [String: FlowConfig.SLO]
    private let states = Mutex<[String: State]>([:])

    package init(
        config: AlertsConfig, recent: RecentRequests, board: DeploymentBoard, access: any AccessStore, ledger: any SpendLedger,
        notifier: (any AlertNotifier)?, logger: Logger, flowObjectives: [String: FlowConfig.SLO] = [:]
    ) {
        self.flowObjectives = flowObjectives
        self.config = config
        self.recent = recent
        self.board = board
        self.access = access
        self.ledger = ledger
        self.notifier = notifier
        self.logger = logger
    }

    package func run() async throws {
        // With no rules there is nothing to do, but a service that returns early stops the group.
        guard !config.rules.isEmpty else { return try await gracefulShutdown() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do { try await gracefulShutdownSleep(for: .milliseconds(Int64(config.intervalS * 1000))) } catch { return }
            for event in await evaluate(now: Date().timeIntervalSince1970) {
                await notifier?.send(event)
            }
        }
    }

    /// Every rule with its state, in configuration order.
    package func snapshot() -> [(AlertRule, State)] {
        let s = states.withLock { $0 }
        return config.rules.map { ($0, s[$0.name] ?? State()) }
    }

    /// One round: measures every rule and answers the transitions (already logged).
    package func evaluate(now: Double) async -> [AlertEvent] {
        var events: [AlertEvent] = []
        for rule in config.rules {
            let measured = await measure(rule, now: now)
            let event = states.withLock { states -> AlertEvent? in
                var s = states[rule.name] ?? State()
                defer { states[rule.name] = s }
                s.lastEvaluated = now
                if rule.kind == .breakerOpen { s.openSince = measured.openSince }
                guard let value = measured.value else { return nil }
                s.value = value
                let threshold = Self.threshold(rule)
                let holds = rule.kind == .breakerOpen ? value >= rule.forS : value > threshold
                guard holds != s.firing else { return nil }
                s.firing = holds
                s.since = now
                return AlertEvent(
                    rule: rule, status: holds ? "firing" : "resolved", value: value, threshold: threshold,
                    message: Self.describe(rule, value: value), since: now, at: now)
            }
            if let event {
                events.append(event)
                let metadata: Logger.Metadata = ["alert": "\(rule.name)", "value": "\(event.value)", "threshold": "\(event.threshold)"]
                if event.status == "firing" { logger.warning("alert firing: \(event.message)", metadata: metadata) } else {
                    logger.info("alert resolved: \(event.message)", metadata: metadata)
                }
            }
        }
        return events
    }

    package static func threshold(_ rule: AlertRule) -> Double {
        switch rule.kind {
        case .latency: rule.thresholdMs ?? 0
        case .errorRate: rule.threshold ?? 0
        case .budget: rule.fraction ?? 0
        case .breakerOpen: rule.forS
        case .sloBurn: rule.burnRate
        }
    }

    package static func describe(_ rule: AlertRule, value: Double) -> String {
        let scope = rule.model.map { " of \($0)" } ?? ""
        switch rule.kind {
        case .latency:
            return "p\(Int(rule.percentile)) latency\(scope) over \(Int(rule.windowS)) s is \(Int(value.rounded())) ms (threshold \(Int(rule.thresholdMs ?? 0)) ms)"
        case .errorRate:
            return "error rate\(scope) over \(Int(rule.windowS)) s is \(String(format: "%.1f", value * 100))% (threshold \(String(format: "%.1f", (rule.threshold ?? 0) * 100))%)"
        case .budget:
            let who = rule.team.map { "team \($0)" } ?? "key \(rule.key ?? "")"
            return "\(who) has spent \(Int((value * 100).rounded()))% of its \(rule.period == .day ? "daily" : "monthly") budget (threshold \(Int(((rule.fraction ?? 0) * 100).rounded()))%)"
        case .breakerOpen:
            return "the circuit breaker of \(rule.deployment ?? "") has been open \(Int(value)) s (threshold \(Int(rule.forS)) s)"
        case .sloBurn:
            return "flow \(rule.flow ?? "") spends its \(rule.objective ?? "") error budget \(String(format: "%.1f", value))× as fast as it allows over \(Int(rule.windowS)) s and \(Int(rule.shortWindow)) s (threshold \(String(format: "%.1f", rule.burnRate))×)"
        }
    }

    /// The rule's value now; nil when there is too little to decide.
    package func measure(_ rule: AlertRule, now: Double) async -> (value: Double?, openSince: Double?) {
        switch rule.kind {
        case .latency:
            let latencies = recent.samples(since: now - rule.windowS, model: rule.model).filter { $0.status < 400 }.map(\.latencyMs).sorted()
            guard latencies.count >= max(1, rule.minRequests) else { return (nil, nil) }
            // Nearest rank.
            let rank = Int((rule.percentile / 100 * Double(latencies.count)).rounded(.up))
            return (latencies[min(latencies.count, max(1, rank)) - 1], nil)
        case .errorRate:
            let samples = recent.samples(since: now - rule.windowS, model: rule.model)
            guard samples.count >= max(1, rule.minRequests) else { return (nil, nil) }
            let failed = samples.filter { $0.status >= 500 || $0.status == 429 }.count
            return (Double(failed) / Double(samples.count), nil)
        case .budget:
            return (await budgetUse(rule, now: now), nil)
        case .sloBurn:
            return (burnRate(rule, now: now), nil)
        case .breakerOpen:
            guard let name = rule.deployment, let status = board.statuses[name] else { return (nil, nil) }
            guard status.breakerState == .open else { return (0, nil) }
            let since = states.withLock { $0[rule.name]?.openSince } ?? now
            return (now - since, since)
        }
    }

    /// How many times faster than allowed a flow spends an objective's error budget: the smaller of
    /// the long and the short window's rates, so that both must exceed the threshold (a brief
    /// spike does not fire; an old one that has stopped resolves). Nil with too few runs.
    package func burnRate(_ rule: AlertRule, now: Double) -> Double? {
        guard let flow = rule.flow, let objective = rule.objective, let slo = flowObjectives[flow] else { return nil }
        func rate(_ window: Double) -> Double? {
            let samples = recent.samples(since: now - window, flow: flow)
            guard !samples.isEmpty else { return nil }
            let n = Double(samples.count)
            switch objective {
            case "success_rate":
                guard let target = slo.successRate else { return nil }
                let failed = Double(samples.filter { !(200..<300).contains($0.status) }.count)
                return (failed / n) / (1 - target)
            default:
                let quantiles = ["p50_ms": (0.50, slo.p50Ms), "p95_ms": (0.95, slo.p95Ms), "p99_ms": (0.99, slo.p99Ms)]
                guard let (q, target) = quantiles[objective], let target else { return nil }
                let slow = Double(samples.filter { $0.latencyMs > target }.count)
                return (slow / n) / (1 - q)
            }
        }
        guard recent.samples(since: now - rule.windowS, flow: flow).count >= max(1, rule.minRequests),
            let long = rate(rule.windowS), let short = rate(rule.shortWindow)
        else { return nil }
        return min(long, short)
    }

    /// The share of its budget a key or team has spent this period, or nil when it has no budget.
    package func budgetUse(_ rule: AlertRule, now: Double) async -> Double? {
        do {
            let limits: Limits
            var keyID: String?
            var teamID: String?
            if let team = rule.team {
                guard let t = try await access.teams().first(where: { $0.id == team || $0.name == team }) else { return nil }
                limits = t.limits
                teamID = t.id
            } else if let key = rule.key {
                guard let k = try await access.keys().first(where: { $0.id == key }) else { return nil }
                limits = k.limits
                keyID = k.id
            } else {
                return nil
            }
            guard let budget = rule.period == .day ? limits.budgetUSDDay : limits.budgetUSDMonth, budget > 0 else { return nil }
            let spent = try await ledger.spend(keyID: keyID, teamID: teamID, since: Self.periodStart(rule.period, now: now))
            return spent / budget
        } catch {
            logger.warning("alert budget lookup failed", metadata: ["alert": "\(rule.name)", "error": "\(error)"])
            return nil
        }
    }

    /// The start of the current UTC day or month, in Unix seconds.
    package static func periodStart(_ period: AlertRule.BudgetPeriod, now: Double) -> Double {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let date = Date(timeIntervalSince1970: now)
        let parts = calendar.dateComponents(period == .day ? [.year, .month, .day] : [.year, .month], from: date)
        return calendar.date(from: parts)?.timeIntervalSince1970 ?? now
    }
}
