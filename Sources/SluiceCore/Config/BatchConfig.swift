/// `batch:` — how batches (`/v1/batches`) run beside live traffic.
public struct BatchConfig: Sendable, Decodable, Hashable {
    /// Lines of batches in flight at once per model, per replica.
    public var maxConcurrency: Int = 4
    /// Attempts per line for upstream failures (429, 5xx, timeouts) before it goes to the error file.
    public var maxAttempts: Int = 3
    /// What batch usage costs against the deployment's price (in cost accounting and budgets).
    public var priceMultiplier: Double = 0.5
    /// How long a claimed line stays with its worker without a renewal; a replica that died
    /// loses its lines to the others after this.
    public var leaseSeconds: Double = 30
    /// The first retry's wait; doubled per attempt, capped at a minute.
    public var backoffMs: Int = 1000
    /// Lines claimed at once per replica (at most this many in flight in all).
    public var workers: Int = 16
    /// Lines started per second per replica at most while live requests are being served (or
    /// were, in the last 100 ms): batches give way to live traffic and still progress. Lines that
    /// wait seconds on an upstream start fewer than this anyway; the cap bites when lines are
    /// cheap and many, which is when they would take the CPU live requests need.
    public var liveRate: Double = 200

    public init() {}

    enum CodingKeys: String, CodingKey {
        case workers
        case maxConcurrency = "max_concurrency"
        case maxAttempts = "max_attempts"
        case priceMultiplier = "price_multiplier"
        case leaseSeconds = "lease_s"
        case backoffMs = "backoff_ms"
        case liveRate = "live_rate"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxConcurrency = try c.decodeIfPresent(Int.self, forKey: .maxConcurrency) ?? maxConcurrency
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? maxAttempts
        priceMultiplier = try c.decodeIfPresent(Double.self, forKey: .priceMultiplier) ?? priceMultiplier
        leaseSeconds = try c.decodeIfPresent(Double.self, forKey: .leaseSeconds) ?? leaseSeconds
        backoffMs = try c.decodeIfPresent(Int.self, forKey: .backoffMs) ?? backoffMs
        workers = try c.decodeIfPresent(Int.self, forKey: .workers) ?? workers
        liveRate = try c.decodeIfPresent(Double.self, forKey: .liveRate) ?? liveRate
    }

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        if !(1...1024).contains(maxConcurrency) { out.append(ConfigError(path: "\(path).max_concurrency", "must be from 1 to 1024")) }
        if !(1...20).contains(maxAttempts) { out.append(ConfigError(path: "\(path).max_attempts", "must be from 1 to 20")) }
        if !(priceMultiplier >= 0 && priceMultiplier <= 10) { out.append(ConfigError(path: "\(path).price_multiplier", "must be from 0 to 10")) }
        if !(leaseSeconds >= 1 && leaseSeconds <= 3600) { out.append(ConfigError(path: "\(path).lease_s", "must be from 1 to 3600")) }
        if !(1...600_000).contains(backoffMs) { out.append(ConfigError(path: "\(path).backoff_ms", "must be from 1 to 600000")) }
        if !(1...1024).contains(workers) { out.append(ConfigError(path: "\(path).workers", "must be from 1 to 1024")) }
        if !(liveRate >= 1 && liveRate <= 1_000_000) { out.append(ConfigError(path: "\(path).live_rate", "must be from 1 to 1000000 (lines per second)")) }
        return out
    }
}
