/// What the audit log is asked about a flow over a window, for its SLO report.
public struct FlowStatsQuery: Sendable, Hashable {
    public var flow: String
    /// One version, or all of them.
    public var version: Int?
    /// Unix seconds, inclusive.
    public var since: Double
    /// Latencies in ms: how many runs took longer than each (the latency objectives' budgets).
    public var latencyThresholds: [Double]

    public init(flow: String, version: Int? = nil, since: Double, latencyThresholds: [Double] = []) {
        self.flow = flow
        self.version = version
        self.since = since
        self.latencyThresholds = latencyThresholds
    }
}

/// A flow's runs over a window, as the audit log recorded them.
public struct FlowStats: Sendable, Hashable {
    public var requests: Int
    /// Runs answered 2xx (an output schema that was never met is a 502).
    public var successes: Int
    public var costUSD: Double
    /// Nearest-rank latency percentiles (PostgreSQL's `percentile_disc`); nil without runs.
    public var p50Ms: Double?
    public var p95Ms: Double?
    public var p99Ms: Double?
    /// Per threshold of the query, how many runs took longer.
    public var slowerThan: [Double: Int]
    /// The feedback the window's runs received, and each judge's scores (filled in from the quality store).
    public var feedback = Moments()
    public var judges: [String: Moments] = [:]

    public init(
        requests: Int, successes: Int, costUSD: Double, p50Ms: Double? = nil, p95Ms: Double? = nil, p99Ms: Double? = nil,
        slowerThan: [Double: Int] = [:]
    ) {
        self.requests = requests
        self.successes = successes
        self.costUSD = costUSD
        self.p50Ms = p50Ms
        self.p95Ms = p95Ms
        self.p99Ms = p99Ms
        self.slowerThan = slowerThan
    }

    /// The statistics of runs given as (status, latency, cost), computed in process (the
    /// in-memory and SQLite stores).
    public init(runs: [(status: Int, latencyMs: Double, costUSD: Double)], thresholds: [Double]) {
        let latencies = runs.map(\.latencyMs).sorted()
        self.init(
            requests: runs.count, successes: runs.filter { (200..<300).contains($0.status) }.count,
            costUSD: runs.reduce(0) { $0 + $1.costUSD }, p50Ms: Self.percentile(latencies, 0.50), p95Ms: Self.percentile(latencies, 0.95),
            p99Ms: Self.percentile(latencies, 0.99),
            slowerThan: Dictionary(thresholds.map { t in (t, latencies.count - Self.countAtMost(latencies, t)) }, uniquingKeysWith: { a, _ in a }))
    }

    /// The nearest-rank percentile of sorted values: the smallest value with at least `p` of
    /// them at or below it.
    public static func percentile(_ sorted: [Double], _ p: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = max(1, Int((p * Double(sorted.count)).rounded(.up)))
        return sorted[min(rank, sorted.count) - 1]
    }

    /// How many sorted values are at most `limit` (binary search).
    static func countAtMost(_ sorted: [Double], _ limit: Double) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if sorted[mid] <= limit { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

/// Answers flow statistics from the audit log.
public protocol FlowReporter: Sendable {
    func flowStats(_ query: FlowStatsQuery) async throws -> FlowStats
}
