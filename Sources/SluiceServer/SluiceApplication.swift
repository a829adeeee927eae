import Foundation
import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import OTel
import ServiceLifecycle
import UnixSignals
import SluiceCache
import SluiceCore
import SluiceBatch
import SluiceConversations
import SluiceEvaluation
import SluiceFlows
import SluiceObservability
import SluiceGuardrails
import SluiceProviders
import SluiceRetrieval
import SluiceRouting
import SluiceStore
import Tracing

/// Sluice assembled: the HTTP application and the services that run beside it. `run()` starts
/// them in one service group; SIGTERM/SIGINT stop accepting, let in-flight requests and streams
/// finish up to `server.shutdown_grace_s`, flush the audit log, and return.
public struct SluiceApplication: Sendable {
    public let http: Application<RouterResponder<SluiceRequestContext>>
    public let config: SluiceConfig
    public let auditLog: AuditLogWriter
    public let store: any AuditLogStore
    public let providers: ProviderRegistry
    public let pipeline: Pipeline
    let logger: Logger
    /// The close watches of connections serving streams (tests check none outlive a connection).
    let cancellers: ConnectionCancellers
    /// Keys and teams in memory (nil with `auth.enabled` off).
    let directory: KeyDirectory?
    /// Limits, budgets and concurrency slots.
    public let limiter: any UsageLimiter
    /// Spend per key and team, from the audit log.
    public let auditLogLedger: any SpendLedger
    /// The stores' services (PostgreSQL: the pool and the limiter's settlements), first in the group so they stop last.
    let storeServices: [any Service]
    /// Every chat deployment's breaker, load and latency.
    public let board: DeploymentBoard
    /// Probes deployments whose breaker is open.
    let prober: DeploymentProber
    /// The exact and semantic response cache.
    let cache: ResponseCache
    /// Purges old audit-log rows and bodies.
    let retention: AuditLogRetention
    /// Evaluates the alert rules.
    let alerts: AlertEvaluator
    /// The flows' versions, refreshed from the store.
    let flows: FlowCatalog
    /// Conversations and their items.
    public let conversations: any ConversationStore
    /// Exports finished spans (OTLP), when tracing is on.
    let tracingService: (any Service)?
    /// Indexes files added to vector stores, in the background.
    let ingestion: VectorStoreIngestion
    /// Files, vector stores and chunks.
    public let retrieval: any RetrievalStore
    /// Experiments: assignment, state shared by replicas, analysis.
    public let experiments: Experiments
    /// The judges and their live-sample queues.
    public let judges: Judges
    /// Feedback, judgements and experiments' state.
    public let quality: any QualityStore
    /// Offline evaluations run by the server.
    public let evals: EvalJobs
    /// Runs batches' lines.
    public let batches: BatchRunner
    /// Readiness off from SIGTERM until the listener closes.
    let drain: ReadinessDrain

    /// Runs until a shutdown signal (or until the surrounding task is cancelled).
    public func run() async throws {
        try await makeServiceGroup().run()
    }

    /// The service group `run()` runs; tests trigger its graceful shutdown directly.
    public func makeServiceGroup(signals: [UnixSignal] = [.sigterm, .sigint]) -> ServiceGroup {
        typealias Entry = ServiceGroupConfiguration.ServiceConfiguration
        // The span exporter stops after everything that makes spans (services stop in reverse order).
        var services: [Entry] = storeServices.map { Entry(service: $0) }
        if let tracingService { services.append(Entry(service: tracingService)) }
        // Shut down in reverse order: HTTP first (drains requests), then providers, then the writer flushes,
        // then the database closes.
        services += [Entry(service: auditLog), Entry(service: providers)]
        // After the providers (judges ask through them), so the queued judgements are done first.
        for name in judges.queues.keys.sorted() { services.append(Entry(service: judges.queues[name]!)) }
        services += [
            Entry(service: experiments), Entry(service: evals), Entry(service: batches),
            // After the providers (it embeds with them), so it stops before they do.
            Entry(service: ingestion), Entry(service: prober), Entry(service: cache), Entry(service: retention), Entry(service: alerts),
            Entry(service: flows), Entry(service: http),
        ]
        if let directory { services.append(Entry(service: directory)) }
        // Last, so it is the first to stop: readiness turns off while the listener still accepts.
        services.append(Entry(service: drain))
        var configuration = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: signals,
            cancellationSignals: [],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = .milliseconds(Int((config.server.drainSeconds + config.server.shutdownGraceSeconds) * 1000))
        return ServiceGroup(configuration: configuration)
    }
}

/// What tests and tools may swap when building the application.
public struct BuildOptions: Sendable {
    public var logger: Logger
    /// Records the simulated provider's streams (tests of cancellation).
    public var simulationProbe: SimulationProbe?
    /// Called with the bound channel once the server listens (the port, when 0 was asked for).
    public var onServerRunning: @Sendable (any Channel) async -> Void
    /// The bootstrap admin key (`SLUICE_ADMIN_KEY`), if one is given.
    public var adminKey: String?

    public init(
        logger: Logger = Logger(label: "sluice"), simulationProbe: SimulationProbe? = nil, adminKey: String? = nil,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) {
        self.logger = logger
        self.adminKey = adminKey
        self.simulationProbe = simulationProbe
        self.onServerRunning = onServerRunning
    }
}

/// The one place where concrete types are wired together.
public func buildApplication(config: SluiceConfig, options: BuildOptions = .init()) async throws -> SluiceApplication {
    // Before any metric exists: one created earlier would stay bound to the no-op backend.
    if config.telemetry.metrics { MetricsBackend.install() }
    let stores = try await Stores.open(config.store, logger: options.logger)
    let providers: ProviderRegistry
    do {
        providers = try ProviderRegistry(config: config, probe: options.simulationProbe, logger: options.logger)
    } catch {
        await stores.close()
        throw error
    }
    do {
        return try await assemble(config: config, options: options, stores: stores, providers: providers)
    } catch {
        // Nothing runs yet: close what was opened, so that a bad start is an error and not a
        // trap in an HTTP client's deinit or a pool left running.
        await providers.shutdown()
        await stores.close()
        throw error
    }
}

private func assemble(config: SluiceConfig, options: BuildOptions, stores: Stores, providers: ProviderRegistry) async throws -> SluiceApplication {
    let logger = options.logger
    let auditLogStore = stores.auditLog
    let store: any AuditLogStore = auditLogStore
    let accessStore = stores.access
    let directory = KeyDirectory(store: accessStore, refresh: .milliseconds(config.auth.refreshMs), logger: logger)
    if config.auth.enabled {
        try await AdminBootstrap(store: accessStore, logger: logger).ensureAdminKey(
            fromEnvironment: options.adminKey, keyFile: stores.sqlitePath.flatMap(AdminBootstrap.keyFile(besideDatabase:)))
        try await directory.reload()
    }
    let limiter = stores.limiter
    let admission = AdmissionControl(limiter: limiter, defaultMaxTokens: config.auth.defaultMaxTokens)
    let writer = AuditLogWriter(store: store, config: config.store.auditLog, logger: logger, prepare: AuditBodies(mode: config.store.auditLog.logBodies).prepare)
    // Local model servers are up before the first request can arrive.
    try await providers.start()
    let catalog = ModelCatalog(config: config, chatProviders: providers.chat, embeddingProviders: providers.embedding)
    let requestMetrics = RequestMetrics(
        knownModels: Set(config.models.map(\.name)).union(config.aliases.keys).union(config.flows.keys.map { "flow:\($0)" }))
    let recent = RecentRequests()
    let audit = config.store.auditLog
    let recorder = AuditRecorder(
        sink: audit.enabled ? writer : DiscardingRecordSink(), metrics: config.telemetry.metrics ? requestMetrics : nil,
        recent: config.alerts.rules.isEmpty ? nil : recent)

    var queues: [String: DeploymentQueue] = [:]
    for model in config.models {
        if let cap = model.maxConcurrent { queues[model.name] = DeploymentQueue(deployment: model.name, capacity: cap) }
    }

    let guardrails = try GuardrailPolicies(config: config.guardrails, catalog: catalog)
    let flows = try FlowCatalog(
        config: config, baseDirectory: config.directory, store: stores.flowVersions, refresh: .milliseconds(config.auth.refreshMs), logger: logger)
    try await flows.reload()
    let experiments = Experiments(
        configs: config.experiments, judges: Array(config.judges.keys), store: stores.quality, flowVersions: stores.flowVersions,
        refresh: .milliseconds(config.auth.refreshMs), logger: logger)
    try await experiments.reload()
    let judges = try Judges(configs: config.judges, baseDirectory: config.directory, store: stores.quality, logger: logger)
    let board = DeploymentBoard(names: Array(catalog.chat.keys) + Array(catalog.embedding.keys), breaker: config.routing.breaker)
    let classifiers = try await ComplexityClassifiers.build(config: config, catalog: catalog, logger: logger)
    let routeTable = RouteTable(config: config, catalog: catalog, board: board, classifiers: classifiers)
    let cacheEmbedding = config.cache.embeddingModel.flatMap { catalog.embedding[$0] }
    let cache = ResponseCache(
        config: config.cache, store: stores.responseCache, embedder: cacheEmbedding.flatMap(\.embedder),
        verifier: try CacheSetup.verifier(config: config, embedding: cacheEmbedding?.embeddingProvider), logger: logger)
    try await cache.load()
    let tracing = try RequestTracing.make(config.telemetry, logger: logger)
    let embedders = RetrievalSetup.embedders(catalog)
    let vectorIndexes = VectorIndexes()
    let vectorSearch = VectorStoreSearch(store: stores.retrieval, indexes: vectorIndexes, embedders: embedders)
    let ingestion = VectorStoreIngestion(
        store: stores.retrieval, indexes: vectorIndexes, embedders: embedders, pdftotext: config.retrieval.pdftotext, logger: logger)
    var invoker = FallbackInvoker(board: board, queues: queues, queueConfig: config.queue, routing: config.routing)
    invoker.tracer = tracing?.tracer
    invoker.isTraced = { InstrumentationContext.current?.otelIsSampled == true }
    let alerts = AlertEvaluator(
        config: config.alerts, recent: recent, board: board, access: accessStore, ledger: auditLogStore,
        notifier: config.alerts.webhook.map { WebhookNotifier(config: $0, logger: logger) }, logger: logger,
        flowObjectives: config.flows.compactMapValues(\.slo))

    // The request pipeline, outermost first. A new capability is one stage and one line here.
    var stages: [(String, any InferenceStage)] = []
    // Batches give way to live requests: this counts them (a counter, not traced).
    let liveTraffic = LiveTraffic()
    // Before the flow: a variant decides the version and model it runs.
    if !config.experiments.isEmpty { stages.append(("experiment", ExperimentStage(experiments: experiments))) }
    // Outside the flow: the judge sees the run's input and its final answer.
    if config.judges.values.contains(where: { $0.sampleRate > 0 && !$0.flows.isEmpty }) { stages.append(("judge", JudgeStage(judges: judges))) }
    stages += [
        // First: a flow run becomes the chat request its definition says, which everything after checks, routes and accounts.
        (
            "flow",
            FlowStage(
                catalog: flows,
                retrieval: .init(
                    retriever: vectorSearch, injectionThreshold: config.retrieval.injectionThreshold, flagged: config.retrieval.flaggedPassages))
        ),
        // After the flow (its rendered turn) and outside the guardrails (the answer it stores passed the output checks).
        (
            "conversation",
            ConversationStage(
                store: stores.conversations, policies: guardrails, defaultOutputTokens: config.auth.defaultMaxTokens,
                contextWindow: { [routeTable] in routeTable.smallestContextWindow($0) })
        ),
        // Before routing and admission: a blocked request costs nothing; its output checks wrap every attempt.
        ("guardrail", GuardrailStage(policies: guardrails)),
        ("route", RouteStage(table: routeTable, catalog: catalog)),
        // After routing: the reservation is priced at the deployments that may serve it.
        ("admit", AdmitStage(admission: admission)),
        // After admission: a hit counts as a request but costs no tokens.
        ("cache", CacheStage(cache: cache)),
    ]
    let record = RecordStage(
        recorder: recorder, inFlight: config.telemetry.metrics ? requestMetrics.inFlight : nil,
        keepsBodies: audit.enabled && audit.logBodies != .none, tracer: tracing?.tracer, traceSampleRatio: config.telemetry.traceSampleRatio)
    let pipeline = Pipeline(
        // With tracing on, each stage runs in a span of its own inside the request's.
        stages: [record, LiveTrafficStage(traffic: liveTraffic)] + stages.map { name, stage in tracing.map { TracedStage(name: name, inner: stage, tracer: $0.tracer) } ?? stage },
        // Each attempt waits for its deployment's queue slot (`max_concurrent`).
        terminal: invoker.handler)
    let serviceKeys = ServiceKeys(store: accessStore)
    judges.attach(pipeline: pipeline, principals: config.auth.enabled ? try await serviceKeys.judges(config.judges) : [:])
    let evals = EvalJobs(
        store: stores.quality,
        target: PipelineEvalTarget(
            pipeline: pipeline, judges: judges,
            principal: LazyPrincipal { [auth = config.auth.enabled] in
                auth ? try await serviceKeys.ensure(id: "key_evals", name: "evaluations", limits: .init()) : nil
            }, logger: logger),
        flowFacts: { [flows] name in
            guard let definition = try? flows.definition(name) else { return (nil, nil) }
            if case .schema(let schema) = definition.config.output { return (schema, definition.config.slo?.p95Ms) }
            return (nil, definition.config.slo?.p95Ms)
        }, logger: logger)

    var routes: [String: [HTTPRequest.Method]] = [
        "/v1/chat/completions": [.post], "/v1/embeddings": [.post], "/v1/models": [.get], "/v1/flows/{name}/run": [.post], "/healthz": [.get, .head],
        "/v1/conversations": [.post], "/v1/conversations/{id}": [.get, .post, .delete], "/v1/conversations/{id}/items": [.get],
        "/readyz": [.get, .head],
    ]
    routes.merge(GuardrailRoutes.routes) { a, _ in a }
    routes.merge(MessagesRoutes.routes) { a, _ in a }
    routes.merge(ResponsesRoutes.routes) { a, _ in a }
    routes.merge(QualityRoutes.routes) { a, _ in a }
    routes.merge(BatchRoutes.routes) { a, _ in a }
    routes.merge(FileRoutes.routes) { a, _ in a }
    routes.merge(VectorStoreRoutes.routes) { a, _ in a }
    if config.telemetry.metrics { routes.merge(MetricsRoutes.routes) { a, _ in a } }
    if config.auth.enabled {
        routes.merge(AdminRoutes.routes) { a, _ in a }
        routes.merge(UsageRoutes.routes) { a, _ in a }
        routes.merge(FlowAdminRoutes.routes) { a, _ in a }
        routes.merge(AuditLogRoutes.routes) { a, _ in a }
        routes.merge(QualityRoutes.adminRoutes) { a, _ in a }
        routes.merge(AlertRoutes.routes) { a, _ in a }
        routes.merge(DashboardRoutes.routes) { a, _ in a }
    }
    let router = Router(context: SluiceRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: ErrorMiddleware(routes: routes))
    if config.auth.enabled {
        router.add(middleware: AuthMiddleware(directory: directory, publicPaths: Set(config.auth.publicPaths), recorder: recorder))
    }
    let cancellers = ConnectionCancellers()
    ConversationRoutes(store: stores.conversations, body: RequestBodyReader(maxBytes: config.server.maxBodyBytes)).register(on: router)
    FileRoutes(store: stores.retrieval, indexes: vectorIndexes, maxBytes: config.files.maxBytes).register(on: router)
    VectorStoreRoutes(
        store: stores.retrieval, search: vectorSearch, ingestion: ingestion, body: RequestBodyReader(maxBytes: config.server.maxBodyBytes),
        defaultEmbeddingModel: RetrievalSetup.defaultModel(config.retrieval, embedders: embedders)
    ).register(on: router)
    let openAIRoutes = OpenAIRoutes(
        pipeline: pipeline, catalog: catalog, recorder: recorder,
        body: RequestBodyReader(maxBytes: config.server.maxBodyBytes),
        startedAt: Int(Date().timeIntervalSince1970),
        requestTimeout: .milliseconds(Int64(config.server.requestTimeoutSeconds * 1000)), cancellers: cancellers)
    openAIRoutes.register(on: router)
    MessagesRoutes(openAI: openAIRoutes).register(on: router)
    ResponsesRoutes(openAI: openAIRoutes, store: stores.responses).register(on: router)
    let drain = ReadinessDrain(delay: .milliseconds(Int64(config.server.drainSeconds * 1000)))
    HealthRoutes(store: store, providers: providers, drain: drain).register(on: router)
    if config.telemetry.metrics { MetricsRoutes(registry: MetricsBackend.registry, scrape: ScrapeTimeMetrics(writer: writer)).register(on: router) }
    GuardrailRoutes(policies: guardrails, body: RequestBodyReader(maxBytes: config.server.maxBodyBytes)).register(on: router)
    let batchRunner = BatchRunner(
        store: stores.batches, files: StoredBatchFiles(store: stores.retrieval, directory: config.auth.enabled ? directory : nil),
        executor: PipelineBatchExecutor(
            pipeline: pipeline, directory: config.auth.enabled ? directory : nil, priceMultiplier: config.batch.priceMultiplier,
            requestTimeout: .milliseconds(Int64(config.server.requestTimeoutSeconds * 1000)), logger: logger),
        config: config.batch, live: liveTraffic, logger: logger)
    BatchRoutes(store: stores.batches, files: stores.retrieval, flows: Set(config.flows.keys), body: RequestBodyReader(maxBytes: config.server.maxBodyBytes))
        .register(on: router)
    QualityRoutes(
        store: stores.quality, log: store, flushAuditLog: { await writer.drain() }, experiments: experiments, judges: judges, evals: evals,
        fileText: { [retrieval = stores.retrieval] id, principal in
            guard let file = try await retrieval.file(id: id), file.owner == Ownership.owner(principal) || principal?.key.role == .admin,
                let bytes = try await retrieval.fileContent(id: id)
            else { return nil }
            return String(decoding: bytes, as: UTF8.self)
        },
        body: RequestBodyReader(maxBytes: config.server.maxBodyBytes), knownFlows: Set(config.flows.keys)
    ).register(on: router, admin: config.auth.enabled)
    if config.auth.enabled {
        AdminRoutes(directory: directory, body: RequestBodyReader(maxBytes: config.server.maxBodyBytes), queues: queues).register(on: router)
        UsageRoutes(reporter: auditLogStore).register(on: router)
        FlowAdminRoutes(catalog: flows, reporter: FlowQualityReporter(base: auditLogStore, quality: stores.quality), body: RequestBodyReader(maxBytes: config.server.maxBodyBytes)).register(on: router)
        AuditLogRoutes(log: store, quality: stores.quality).register(on: router)
        AlertRoutes(evaluator: alerts).register(on: router)
        var dashboard = try DashboardRoutes(
            directory: directory, log: store, access: accessStore, ledger: auditLogStore, board: board, alerts: alerts, flows: flows,
            flowStats: FlowQualityReporter(base: auditLogStore, quality: stores.quality))
        dashboard.experiments = experiments
        dashboard.evals = evals
        dashboard.quality = stores.quality
        dashboard.batches = stores.batches
        dashboard.batchConcurrency = config.batch.maxConcurrency
        dashboard.register(on: router)
    }

    let http = Application(
        router: router,
        server: .http1(
            configuration: .init(
                additionalChannelHandlers: [
                    ReceiveBufferSizing(),
                    CloseOnInputClosedHandler(),
                    EventStreamFlushes(),
                    RequestReadDeadlines(
                        header: .milliseconds(Int64(config.server.headerTimeoutSeconds * 1000)),
                        body: .milliseconds(Int64(config.server.bodyTimeoutSeconds * 1000))),
                ],
                idleTimeout: .seconds(120))),
        configuration: .init(
            address: .hostname(config.server.host, port: config.server.port), serverName: nil,
            availableConnectionsDelegate: ConnectionCap(limit: config.server.maxConnections)),
        onServerRunning: options.onServerRunning,
        logger: logger)
    return SluiceApplication(
        http: http, config: config, auditLog: writer, store: store, providers: providers, pipeline: pipeline, logger: logger, cancellers: cancellers,
        directory: config.auth.enabled ? directory : nil, limiter: limiter, auditLogLedger: auditLogStore,
        storeServices: stores.services, board: board,
        prober: DeploymentProber(board: board, catalog: catalog, interval: .milliseconds(config.routing.probeIntervalMs), logger: logger),
        cache: cache, retention: AuditLogRetention(store: store, config: config.store.auditLog, logger: logger, conversations: stores.conversations, responses: stores.responses), alerts: alerts, flows: flows, conversations: stores.conversations,
        tracingService: tracing?.service, ingestion: ingestion, retrieval: stores.retrieval, experiments: experiments, judges: judges,
        quality: stores.quality, evals: evals, batches: batchRunner, drain: drain)
}

extension SluiceApplication {
    /// Builds Sluice from `config` with its HTTP server on a free port (whatever `server.port`
    /// says), runs every service, hands `body` the base URL, the application and its service
    /// group, then shuts down gracefully — on every path. For tools (`sluice eval run --config`)
    /// and tests.
    public static func runOnFreePort<T: Sendable>(
        config: SluiceConfig, options: BuildOptions, _ body: @Sendable (String, SluiceApplication, ServiceGroup) async throws -> T
    ) async throws -> T {
        var config = config
        config.server.port = 0
        var options = options
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let onServerRunning = options.onServerRunning
        options.onServerRunning = { channel in
            await onServerRunning(channel)
            continuation.yield(channel.localAddress?.port ?? 0)
        }
        let app = try await buildApplication(config: config, options: options)
        let group = app.makeServiceGroup(signals: [])
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                // A group that fails before listening ends the wait for the port below.
                defer { continuation.finish() }
                try await group.run()
            }
            var it = ports.makeAsyncIterator()
            guard let port = await it.next() else {
                try await tasks.waitForAll()
                throw CancellationError()
            }
            let result: T
            do {
                result = try await body("http://\(config.server.host):\(port)", app, group)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        }
    }
}
