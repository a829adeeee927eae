import Metrics
import Prometheus
import SluiceCore
import SluiceStore
import Synchronization

/// The process's Prometheus registry, installed as swift-metrics' backend the first time an
/// application is built (swift-metrics allows one backend per process).
package enum MetricsBackend {
    package static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[RequestMetrics.durationName] = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120),
        ]
        factory.durationHistogramBuckets[RequestMetrics.flowDurationName] = factory.durationHistogramBuckets[RequestMetrics.durationName]
        factory.durationHistogramBuckets[RequestMetrics.ttftName] = [
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
        ]
        // The OpenTelemetry GenAI conventions' advice for token counts.
        factory.valueHistogramBuckets[RequestMetrics.tokensName] = [
            1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864,
        ]
        // Scores: feedback from 0 to 1, judges on scales up to 10.
        factory.valueHistogramBuckets["sluice_feedback_score"] = [0, 0.25, 0.5, 0.75, 1]
        factory.valueHistogramBuckets["sluice_judge_score"] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    /// Makes sure the backend is installed before any metric is created (a metric created
    /// earlier stays bound to the no-op backend).
    package static func install() { _ = registry }
}

/// Per-request metrics, from each finished request's audit record: latency, time to first
/// token and token histograms named as the OpenTelemetry GenAI conventions name them, and
/// Sluice's own counters of requests, cost and admission refusals. Label values are bounded:
/// models not in the configuration count as `other`, and no request ids or keys are labels.
package final class RequestMetrics: Sendable {
    package static let durationName = "gen_ai_server_request_duration_seconds"
    package static let ttftName = "gen_ai_server_time_to_first_token_seconds"
    package static let tokensName = "gen_ai_client_token_usage"
    package static let flowDurationName = "sluice_flow_run_duration_seconds"

    package struct Key: Hashable {
        var endpoint: String
        var model: String
        var deployment: String
        var status: Int
        var code: String
        var team: String
        /// The flow run, empty for none; its version. Bounded: flows exist only in the config,
        /// versions only as pushed.
        var flow: String
        var flowVersion: Int
    }

    /// The metric handles of one label combination, made once and reused.
    package struct Handles: Sendable {
        let requests: Metrics.Counter
        let duration: Metrics.Timer
        let ttft: Metrics.Timer
        let tokensIn: Recorder
        let tokensOut: Recorder
        let cost: Metrics.FloatingPointCounter
        let refusals: Metrics.Counter?
        /// A flow run's own series (`sluice_flow_runs_total`, `sluice_flow_run_duration_seconds`).
        let flowRuns: Metrics.Counter?
        let flowDuration: Metrics.Timer?
    }

    private let knownModels: Set<String>
    private let handles = Mutex<[Key: Handles]>([:])
    package let inFlight = Meter(label: "sluice_requests_in_flight")

    package init(knownModels: Set<String>) {
        self.knownModels = knownModels
    }

    /// Counts one finished request.
    package func record(_ r: AuditRecord) {
        let key = Key(
            endpoint: r.endpoint, model: knownModels.contains(r.modelRequested) ? r.modelRequested : (r.modelRequested.isEmpty ? "none" : "other"),
            deployment: r.deployment ?? "none", status: r.status, code: r.errorCode ?? "", team: r.teamID.isEmpty ? "none" : r.teamID,
            flow: r.flow ?? "", flowVersion: r.flowVersion ?? 0)
        let h = handles.withLock { table in
            if let h = table[key] { return h }
            let h = Self.makeHandles(key)
            table[key] = h
            return h
        }
        h.requests.increment()
        h.duration.recordNanoseconds(Int64(r.latencyMs * 1_000_000))
        if let ttft = r.ttftMs { h.ttft.recordNanoseconds(Int64(ttft * 1_000_000)) }
        if r.tokensIn > 0 { h.tokensIn.record(r.tokensIn) }
        if r.tokensOut > 0 { h.tokensOut.record(r.tokensOut) }
        if r.costUSD > 0 { h.cost.increment(by: r.costUSD) }
        h.refusals?.increment()
        h.flowRuns?.increment()
        h.flowDuration?.recordNanoseconds(Int64(r.latencyMs * 1_000_000))
    }

    package static func makeHandles(_ k: Key) -> Handles {
        let status = String(k.status)
        // Refused by Sluice's own admission (no deployment was tried), not by an upstream.
        let refused = k.status == 429 && k.deployment == "none"
        return Handles(
            requests: Metrics.Counter(label: "sluice_requests_total", dimensions: [("endpoint", k.endpoint), ("model", k.model), ("status", status), ("code", k.code)]),
            duration: Metrics.Timer(label: durationName, dimensions: [("model", k.model), ("deployment", k.deployment), ("status", status)]),
            ttft: Metrics.Timer(label: ttftName, dimensions: [("model", k.model), ("deployment", k.deployment)]),
            tokensIn: Recorder(label: tokensName, dimensions: [("model", k.model), ("team", k.team), ("gen_ai_token_type", "input")]),
            tokensOut: Recorder(label: tokensName, dimensions: [("model", k.model), ("team", k.team), ("gen_ai_token_type", "output")]),
            cost: Metrics.FloatingPointCounter(label: "sluice_cost_usd_total", dimensions: [("model", k.model), ("team", k.team)]),
            refusals: refused ? Metrics.Counter(label: "sluice_rate_limit_rejections_total", dimensions: [("code", k.code)]) : nil,
            flowRuns: k.flow.isEmpty
                ? nil
                : Metrics.Counter(
                    label: "sluice_flow_runs_total", dimensions: [("flow", k.flow), ("flow_version", String(k.flowVersion)), ("status", status)]),
            flowDuration: k.flow.isEmpty
                ? nil : Metrics.Timer(label: flowDurationName, dimensions: [("flow", k.flow), ("flow_version", String(k.flowVersion))]))
    }
}

/// What `/metrics` reads at scrape time instead of on the request path: the audit-log writer's
/// backlog and drops.
package final class ScrapeTimeMetrics: Sendable {
    package let writer: AuditLogWriter
    private let backlog = Metrics.Gauge(label: "sluice_audit_log_backlog")
    private let dropped = Metrics.Counter(label: "sluice_audit_log_dropped_total")
    private let written = Metrics.Counter(label: "sluice_audit_log_written_total")
    private let bodiesDropped = Metrics.Counter(label: "sluice_audit_log_bodies_dropped_total")
    private let queuedBytes = Metrics.Gauge(label: "sluice_audit_log_backlog_bytes")
    private let seen = Mutex((dropped: 0, written: 0, bodies: 0))

    package init(writer: AuditLogWriter) { self.writer = writer }

    package func update() {
        backlog.record(writer.backlog)
        queuedBytes.record(writer.queuedBytes)
        let (d, w, b) = (writer.dropped, writer.written, writer.bodiesDropped)
        let (newDropped, newWritten, newBodies) = seen.withLock { last in
            defer { last = (d, w, b) }
            return (d - last.dropped, w - last.written, b - last.bodies)
        }
        if newDropped > 0 { dropped.increment(by: newDropped) }
        if newWritten > 0 { written.increment(by: newWritten) }
        if newBodies > 0 { bodiesDropped.increment(by: newBodies) }
    }
}
