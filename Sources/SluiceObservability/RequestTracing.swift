import Logging
import OTel
import ServiceLifecycle
import SluiceCore
import SluiceStore
import Synchronization
import Tracing

/// OpenTelemetry tracing (swift-otel): a span per request, a child span per pipeline stage and
/// per upstream attempt, exported over OTLP/HTTP when `telemetry.otlp_endpoint` is set. An
/// incoming W3C `traceparent` becomes the request span's parent.
package enum RequestTracing {
    /// The tracer and the service that exports its spans; nil when tracing is off.
    package static func make(_ config: TelemetryConfig, logger: Logger? = nil) throws -> (tracer: any Tracer, service: any Service)? {
        guard let endpoint = config.otlpEndpoint else { return nil }
        var c = OTel.Configuration.default
        c.serviceName = config.serviceName
        c.diagnosticLogLevel = .error
        c.logs.enabled = false
        // Metrics stay Prometheus' (swift-metrics allows one backend).
        c.metrics.enabled = false
        c.propagators = [.traceContext]
        // A collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it; swift-otel uses an
        // explicitly set endpoint as the traces URL itself.
        c.traces.otlpExporter.endpoint = Self.tracesURL(endpoint)
        c.traces.otlpExporter.protocol = config.otlpProtocol == "http/json" ? .httpJSON : .httpProtobuf
        // Requests are sampled by `RecordStage` (parent-based, `trace_sample_ratio`): a span that is
        // started is recorded, and so are its children.
        c.traces.sampler = .parentBasedAlwaysOn
        c.traces.batchSpanProcessor.scheduleDelay = .milliseconds(config.exportIntervalMs)
        let backend = try OTel.makeTracingBackend(configuration: c)
        keptAlive.withLock { $0.append((backend.factory, backend.service)) }
        return (backend.factory, ServiceOnExecutor(inner: backend.service, executor: .tracing, logger: logger))
    }

    /// swift-otel's HTTP exporter shuts its HTTP client down synchronously in `deinit`, which
    /// traps when the last reference goes on an event loop (as it does when `sluice serve` ends):
    /// the backends live as long as the process. Spans are flushed by the service's shutdown.
    private static let keptAlive = Mutex<[(any Tracer, any Service)]>([])

    /// `http://host:4318` → `http://host:4318/v1/traces`; a URL that already names it stays.
    package static func tracesURL(_ endpoint: String) -> String {
        if endpoint.hasSuffix("/v1/traces") { return endpoint }
        return (endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint) + "/v1/traces"
    }
}

/// Runs a service, and every task it starts, on a thread of its own instead of the event loops,
/// and bounds how long it may take to stop.
///
/// swift-otel's exporter group crashes at start-up (a bad service existential in
/// `ServiceGroup.addServiceTask`) when Swift concurrency runs on NIO's event loops, as
/// `sluice serve` sets up; on a task executor of its own it runs. On graceful shutdown its exporter
/// flushes the last spans, and while the collector is unreachable it keeps retrying until the
/// service group's whole shutdown budget is spent and every service is cancelled (`sluice serve`
/// then ended with `Error: CancellationError()` ten seconds after SIGTERM). So it gets
/// `flushLimit` after graceful shutdown begins; past that it is cancelled, with a warning that the
/// spans not yet exported are lost.
package struct ServiceOnExecutor: Service {
    package let inner: any Service
    package let executor: BackgroundThreadExecutor
    package let flushLimit: Duration
    package let logger: Logger?

    package init(inner: any Service, executor: BackgroundThreadExecutor, flushLimit: Duration = .seconds(2), logger: Logger? = nil) {
        self.inner = inner
        self.executor = executor
        self.flushLimit = flushLimit
        self.logger = logger
    }

    private struct FlushLimitReached: Error {}

    package func run() async throws {
        let inner = inner
        let flushLimit = flushLimit
        try await withTaskExecutorPreference(executor) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await inner.run() }
                group.addTask {
                    try await gracefulShutdown()
                    try await Task.sleep(for: flushLimit)
                    throw FlushLimitReached()
                }
                defer { group.cancelAll() }
                do {
                    try await group.next()
                } catch is FlushLimitReached {
                    logger?.warning(
                        "the span exporter did not finish within its flush limit after shutdown began; spans not yet exported are lost",
                        metadata: ["flush_limit": "\(flushLimit)"])
                }
            }
        }
    }
}

extension BackgroundThreadExecutor {
    /// The span exporter's thread.
    package static let tracing = BackgroundThreadExecutor(name: "sluice-otel", niceness: 0)
}

/// Reads the W3C trace context from the pipeline's headers (names lower-cased).
package struct TraceHeaderExtractor: Extractor {
    package func extract(key: String, from carrier: [String: String]) -> String? { carrier[key.lowercased()] }
}

/// A pipeline stage inside a span named for it (`sluice.stage.guardrail`, …).
package struct TracedStage: InferenceStage {
    package let name: String
    package let inner: any InferenceStage
    package let tracer: any Tracer

    package init(name: String, inner: any InferenceStage, tracer: any Tracer) {
        self.name = name
        self.inner = inner
        self.tracer = tracer
    }

    package func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        // Only inside a recorded request span (RecordStage starts none for an unsampled request).
        guard InstrumentationContext.current?.otelIsSampled == true else { return try await inner.handle(request, context: context, next: next) }
        return try await tracer.withSpan("sluice.stage.\(name)") { _ in try await inner.handle(request, context: context, next: next) }
    }
}
