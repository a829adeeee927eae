import Foundation
import SluiceCore
import SluiceObservability

/// Figures over a window of audit-log rows, for the dashboard: counts, rates, latency and TTFT
/// percentiles, errors, cost, cache hits, and the same per time bucket and per model.
struct TrafficSummary: Sendable {
    struct Bucket: Sendable {
        var start: Double
        var requests = 0
        var errors = 0
        var p95Ms: Double?
        var costUSD = 0.0
    }

    struct ModelRow: Sendable {
        var model: String
        var requests: Int
        var errors: Int
        var p50Ms: Double?
        var p95Ms: Double?
        var tokensIn: Int
        var tokensOut: Int
        var costUSD: Double
    }

    var window: Double
    var requests = 0
    var errors = 0
    var p50Ms: Double?
    var p95Ms: Double?
    var p99Ms: Double?
    var ttftP50Ms: Double?
    var ttftP95Ms: Double?
    var costUSD = 0.0
    var tokensIn = 0
    var tokensOut = 0
    var cacheHits = 0
    var cacheLookups = 0
    var buckets: [Bucket] = []
    var models: [ModelRow] = []
    /// True when the window held more rows than were read (the figures cover the newest ones).
    var truncated = false

    var requestsPerSecond: Double { Double(requests) / window }
    var errorRate: Double { requests == 0 ? 0 : Double(errors) / Double(requests) }
    var cacheHitRate: Double { cacheLookups == 0 ? 0 : Double(cacheHits) / Double(cacheLookups) }

    /// A failure the operator should see: the server's or an upstream's (5xx) or a refusal for load (429).
    static func isError(_ status: Int) -> Bool { status >= 500 || status == 429 }

    /// Nearest-rank percentile of sorted values.
    static func percentile(_ sorted: [Double], _ p: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count, max(1, rank)) - 1]
    }

    init(rows: [AuditRecord], now: Double, window: Double, bucketCount: Int = 30, truncated: Bool = false) {
        self.window = window
        self.truncated = truncated
        let start = now - window
        let width = window / Double(bucketCount)
        var bucketLatencies = [[Double]](repeating: [], count: bucketCount)
        buckets = (0..<bucketCount).map { Bucket(start: start + Double($0) * width) }
        var latencies: [Double] = []
        var ttfts: [Double] = []
        var byModel: [String: (rows: Int, errors: Int, latencies: [Double], tin: Int, tout: Int, cost: Double)] = [:]
        for r in rows where r.time >= start && r.time <= now {
            requests += 1
            let failed = Self.isError(r.status)
            if failed { errors += 1 }
            if r.status < 400 { latencies.append(r.latencyMs) }
            if let t = r.ttftMs { ttfts.append(t) }
            costUSD += r.costUSD
            tokensIn += r.tokensIn
            tokensOut += r.tokensOut
            if r.cacheStatus == "hit" || r.cacheStatus == "semantic-hit" { cacheHits += 1 }
            if r.cacheStatus != "off" && r.cacheStatus != "none" { cacheLookups += 1 }
            let b = min(bucketCount - 1, max(0, Int((r.time - start) / width)))
            buckets[b].requests += 1
            buckets[b].costUSD += r.costUSD
            if failed { buckets[b].errors += 1 }
            if r.status < 400 { bucketLatencies[b].append(r.latencyMs) }
            var m = byModel[r.modelRequested] ?? (0, 0, [], 0, 0, 0)
            m.rows += 1
            if failed { m.errors += 1 }
            if r.status < 400 { m.latencies.append(r.latencyMs) }
            m.tin += r.tokensIn
            m.tout += r.tokensOut
            m.cost += r.costUSD
            byModel[r.modelRequested] = m
        }
        latencies.sort()
        ttfts.sort()
        p50Ms = Self.percentile(latencies, 50)
        p95Ms = Self.percentile(latencies, 95)
        p99Ms = Self.percentile(latencies, 99)
        ttftP50Ms = Self.percentile(ttfts, 50)
        ttftP95Ms = Self.percentile(ttfts, 95)
        for i in buckets.indices { buckets[i].p95Ms = Self.percentile(bucketLatencies[i].sorted(), 95) }
        models = byModel.map { name, m in
            let sorted = m.latencies.sorted()
            return ModelRow(
                model: name, requests: m.rows, errors: m.errors, p50Ms: Self.percentile(sorted, 50), p95Ms: Self.percentile(sorted, 95),
                tokensIn: m.tin, tokensOut: m.tout, costUSD: m.cost)
        }.sorted { ($0.requests, $1.model) > ($1.requests, $0.model) }
    }
}
