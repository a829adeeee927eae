import Foundation

/// `alerts:`: rules evaluated in the background, and where their firing and resolving is sent.
public struct AlertsConfig: Sendable, Decodable {
    /// Seconds between evaluations.
    public var intervalS: Double = 15
    /// Where firing and resolved events are POSTed as JSON; without one they are only logged.
    public var webhook: WebhookConfig?
    public var rules: [AlertRule] = []

    public init(intervalS: Double = 15, webhook: WebhookConfig? = nil, rules: [AlertRule] = []) {
        self.intervalS = intervalS
        self.webhook = webhook
        self.rules = rules
    }

    enum CodingKeys: String, CodingKey {
        case intervalS = "interval_s"
        case webhook, rules
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        intervalS = try c.decodeIfPresent(Double.self, forKey: .intervalS) ?? intervalS
        webhook = try c.decodeIfPresent(WebhookConfig.self, forKey: .webhook)
        rules = try c.decodeIfPresent([AlertRule].self, forKey: .rules) ?? []
    }

    func problems(path: String, models: Set<String>, flows: [String: FlowConfig] = [:]) -> [ConfigError] {
        var out: [ConfigError] = []
        if !(intervalS >= 0.05 && intervalS <= 3600) { out.append(ConfigError(path: "\(path).interval_s", "must be in 0.05...3600")) }
        if let webhook {
            if !ConfigError.isHTTPURL(webhook.url) {
                out.append(ConfigError(path: "\(path).webhook.url", "must be an http or https URL"))
            }
            if !(1...60_000).contains(webhook.timeoutMs) { out.append(ConfigError(path: "\(path).webhook.timeout_ms", "must be in 1...60000")) }
            if !(0...10).contains(webhook.retries) { out.append(ConfigError(path: "\(path).webhook.retries", "must be in 0...10")) }
        }
        var names: Set<String> = []
        for (i, rule) in rules.enumerated() {
            let p = "\(path).rules[\(i)]"
            if rule.name.trimmingCharacters(in: .whitespaces).isEmpty { out.append(ConfigError(path: "\(p).name", "must not be empty")) }
            if !names.insert(rule.name).inserted { out.append(ConfigError(path: "\(p).name", "'\(rule.name)' names two rules")) }
            if !(rule.windowS > 0) { out.append(ConfigError(path: "\(p).window_s", "must be more than 0")) }
            if let model = rule.model, !models.contains(model) {
                out.append(ConfigError(path: "\(p).model", "no model or alias named '\(model)'"))
            }
            switch rule.kind {
            case .latency:
                if rule.thresholdMs.map({ $0 > 0 }) != true { out.append(ConfigError(path: "\(p).threshold_ms", "a latency rule needs threshold_ms > 0")) }
                if !(rule.percentile > 0 && rule.percentile <= 100) { out.append(ConfigError(path: "\(p).percentile", "must be in (0, 100]")) }
            case .errorRate:
                if rule.threshold.map({ $0 > 0 && $0 <= 1 }) != true { out.append(ConfigError(path: "\(p).threshold", "an error_rate rule needs threshold in (0, 1]")) }
            case .budget:
                if (rule.team == nil) == (rule.key == nil) { out.append(ConfigError(path: p, "a budget rule names exactly one of team and key")) }
                if rule.fraction.map({ $0 > 0 }) != true { out.append(ConfigError(path: "\(p).fraction", "a budget rule needs fraction > 0 (0.8: 80% spent)")) }
            case .breakerOpen:
                guard let d = rule.deployment else {
                    out.append(ConfigError(path: "\(p).deployment", "a breaker_open rule names a deployment"))
                    break
                }
                if !models.contains(d) { out.append(ConfigError(path: "\(p).deployment", "no model named '\(d)'")) }
                if !(rule.forS >= 0) { out.append(ConfigError(path: "\(p).for_s", "must be 0 or more")) }
            case .sloBurn:
                guard let name = rule.flow, let flow = flows[name] else {
                    out.append(ConfigError(path: "\(p).flow", "an slo_burn rule names a flow (flows: \(flows.keys.sorted().joined(separator: ", ")))"))
                    break
                }
                let objectives = flow.slo.map { slo in
                    [("success_rate", slo.successRate), ("p50_ms", slo.p50Ms), ("p95_ms", slo.p95Ms), ("p99_ms", slo.p99Ms)].filter { $0.1 != nil }.map(\.0)
                } ?? []
                if !objectives.contains(rule.objective ?? "") {
                    out.append(
                        ConfigError(
                            path: "\(p).objective",
                            "names one of flow '\(name)''s objectives: \(objectives.isEmpty ? "it has none (flows.\(name).slo)" : objectives.joined(separator: ", "))"))
                }
                if !(rule.burnRate > 0) { out.append(ConfigError(path: "\(p).burn_rate", "must be more than 0")) }
                if !(rule.shortWindow > 0 && rule.shortWindow < rule.windowS) {
                    out.append(ConfigError(path: "\(p).short_window_s", "must be more than 0 and less than window_s"))
                }
            }
        }
        return out
    }
}

/// `alerts.webhook`.
public struct WebhookConfig: Sendable, Decodable {
    public var url: String
    public var timeoutMs: Int = 5000
    /// Further attempts after a failed POST, with backoff (0.5 s, 1 s, 2 s, …).
    public var retries: Int = 3
    /// Extra request headers (an authorization token, say).
    public var headers: [String: String] = [:]

    public init(url: String, timeoutMs: Int = 5000, retries: Int = 3, headers: [String: String] = [:]) {
        self.url = url
        self.timeoutMs = timeoutMs
        self.retries = retries
        self.headers = headers
    }

    enum CodingKeys: String, CodingKey {
        case url, retries, headers
        case timeoutMs = "timeout_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        url = try c.decode(String.self, forKey: .url)
        timeoutMs = try c.decodeIfPresent(Int.self, forKey: .timeoutMs) ?? timeoutMs
        retries = try c.decodeIfPresent(Int.self, forKey: .retries) ?? retries
        headers = try c.decodeIfPresent([String: String].self, forKey: .headers) ?? [:]
    }
}

/// One alert rule.
public struct AlertRule: Sendable, Decodable {
    /// What a rule watches.
    public enum Kind: String, Sendable, Decodable, CaseIterable {
        /// A latency percentile of a model or alias over a window, above `threshold_ms`.
        case latency
        /// The share of failed requests (5xx and 429) over a window, above `threshold`.
        case errorRate = "error_rate"
        /// A key's or team's spend this day or month, above `fraction` of its budget.
        case budget
        /// A deployment's circuit breaker open for longer than `for_s`.
        case breakerOpen = "breaker_open"
        /// A flow spending the error budget of one of its objectives `burn_rate` times faster than
        /// it allows, over both `window_s` and `short_window_s` (multi-window burn rate).
        case sloBurn = "slo_burn"
    }

    public var name: String
    public var kind: Kind
    /// The model or alias (requests asking for it or served by it); every request when absent.
    public var model: String?
    public var percentile: Double = 95
    public var thresholdMs: Double?
    public var threshold: Double?
    public var windowS: Double = 300
    /// Fewer requests than this in the window decide nothing (the rule keeps its state).
    public var minRequests: Int = 10
    public var team: String?
    public var key: String?
    public var fraction: Double?
    /// `day` or `month` (UTC), for budget rules.
    public var period: BudgetPeriod = .day
    public var deployment: String?
    public var forS: Double = 60
    /// `slo_burn`: the flow, which of its `slo` keys (`success_rate`, `p50_ms`, `p95_ms`,
    /// `p99_ms`), the burn rate that fires (14.4: a 30-day budget gone in 2 days), and the short
    /// window that must agree with `window_s` (default a twelfth of it).
    public var flow: String?
    public var objective: String?
    public var burnRate: Double = 14.4
    public var shortWindowS: Double?

    /// `period`.
    public enum BudgetPeriod: String, Sendable, Decodable { case day, month }

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    enum CodingKeys: String, CodingKey {
        case name, kind, model, percentile, threshold, team, key, fraction, period, deployment, flow, objective
        case burnRate = "burn_rate"
        case shortWindowS = "short_window_s"
        case thresholdMs = "threshold_ms"
        case windowS = "window_s"
        case minRequests = "min_requests"
        case forS = "for_s"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        kind = try c.decode(Kind.self, forKey: .kind)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        percentile = try c.decodeIfPresent(Double.self, forKey: .percentile) ?? percentile
        thresholdMs = try c.decodeIfPresent(Double.self, forKey: .thresholdMs)
        threshold = try c.decodeIfPresent(Double.self, forKey: .threshold)
        windowS = try c.decodeIfPresent(Double.self, forKey: .windowS) ?? windowS
        minRequests = try c.decodeIfPresent(Int.self, forKey: .minRequests) ?? minRequests
        team = try c.decodeIfPresent(String.self, forKey: .team)
        key = try c.decodeIfPresent(String.self, forKey: .key)
        fraction = try c.decodeIfPresent(Double.self, forKey: .fraction)
        period = try c.decodeIfPresent(BudgetPeriod.self, forKey: .period) ?? period
        deployment = try c.decodeIfPresent(String.self, forKey: .deployment)
        forS = try c.decodeIfPresent(Double.self, forKey: .forS) ?? forS
        flow = try c.decodeIfPresent(String.self, forKey: .flow)
        objective = try c.decodeIfPresent(String.self, forKey: .objective)
        burnRate = try c.decodeIfPresent(Double.self, forKey: .burnRate) ?? burnRate
        shortWindowS = try c.decodeIfPresent(Double.self, forKey: .shortWindowS)
    }

    /// The short window of an `slo_burn` rule.
    public var shortWindow: Double { shortWindowS ?? windowS / 12 }
}
