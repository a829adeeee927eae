/// `auth:` — virtual API keys on every `/v1/*` and `/admin/*` request.
public struct AuthConfig: Sendable, Decodable {
    /// Off: no key is asked for and no limits apply (local experiments, the overhead benchmark).
    public var enabled: Bool = true
    /// Paths served without a key.
    public var publicPaths: [String] = ["/healthz", "/readyz", "/metrics"]
    /// The output-token cap assumed for a request that sets no `max_tokens`, when reserving
    /// tokens per minute and budget before the call.
    public var defaultMaxTokens: Int = 1024
    /// How often a replica checks the store for key and team changes made by another replica.
    public var refreshMs: Int = 500

    public init(enabled: Bool = true) {
        self.enabled = enabled
    }

    enum CodingKeys: String, CodingKey {
        case enabled
        case publicPaths = "public_paths"
        case defaultMaxTokens = "default_max_tokens"
        case refreshMs = "refresh_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? enabled
        publicPaths = try c.decodeIfPresent([String].self, forKey: .publicPaths) ?? publicPaths
        defaultMaxTokens = try c.decodeIfPresent(Int.self, forKey: .defaultMaxTokens) ?? defaultMaxTokens
        refreshMs = try c.decodeIfPresent(Int.self, forKey: .refreshMs) ?? refreshMs
    }

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        for (i, p) in publicPaths.enumerated() where !p.hasPrefix("/") {
            out.append(ConfigError(path: "\(path).public_paths[\(i)]", "must start with '/'"))
        }
        for (i, p) in publicPaths.enumerated() where p.hasPrefix("/v1/") || p.hasPrefix("/admin") {
            out.append(ConfigError(path: "\(path).public_paths[\(i)]", "inference and admin paths always need a key"))
        }
        if defaultMaxTokens < 1 { out.append(ConfigError(path: "\(path).default_max_tokens", "must be at least 1")) }
        if refreshMs < 10 || refreshMs > 60_000 { out.append(ConfigError(path: "\(path).refresh_ms", "must be in 10...60000")) }
        return out
    }
}

/// `queue:` — how long requests of each priority class may wait for a deployment at its
/// `max_concurrent` before they get 503.
public struct QueueConfig: Sendable, Decodable {
    public var highTimeoutMs: Int = 30_000
    public var normalTimeoutMs: Int = 10_000
    public var lowTimeoutMs: Int = 2_000

    public init() {}

    enum CodingKeys: String, CodingKey {
        case highTimeoutMs = "high_timeout_ms"
        case normalTimeoutMs = "normal_timeout_ms"
        case lowTimeoutMs = "low_timeout_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        highTimeoutMs = try c.decodeIfPresent(Int.self, forKey: .highTimeoutMs) ?? highTimeoutMs
        normalTimeoutMs = try c.decodeIfPresent(Int.self, forKey: .normalTimeoutMs) ?? normalTimeoutMs
        lowTimeoutMs = try c.decodeIfPresent(Int.self, forKey: .lowTimeoutMs) ?? lowTimeoutMs
    }

    /// The wait allowed to a class.
    public func timeoutMs(_ priority: PriorityClass) -> Int {
        switch priority {
        case .high: highTimeoutMs
        case .normal: normalTimeoutMs
        case .low: lowTimeoutMs
        }
    }

    func problems(path: String) -> [ConfigError] {
        [("high_timeout_ms", highTimeoutMs), ("normal_timeout_ms", normalTimeoutMs), ("low_timeout_ms", lowTimeoutMs)]
            .filter { $0.1 < 0 || $0.1 > 3_600_000 }
            .map { ConfigError(path: "\(path).\($0.0)", "must be in 0...3600000") }
    }
}
