import Foundation

/// The whole configuration (`sluice.yaml`), decoded strictly and validated. Immutable once built.
public struct SluiceConfig: Sendable, Decodable {
    public var server: ServerConfig
    public var store: StoreConfig
    public var providers: [String: ProviderConfig]
    public var models: [ModelConfig]
    public var logging: LoggingConfig
    public var auth: AuthConfig
    public var queue: QueueConfig
    /// Input and output checks; nil when the file has no `guardrails:` section.
    public var guardrails: GuardrailsConfig?
    /// Names for sets of deployments, with how to choose among them.
    public var aliases: [String: AliasConfig] = [:]
    /// `alerts:`; none when absent.
    public var alerts: AlertsConfig = .init()
    /// `telemetry:`: Prometheus metrics on or off.
    public var telemetry: TelemetryConfig = .init()
    public var routing: RoutingConfig = .init()
    public var cache: CacheConfig = .init()
    /// Use cases by name (`flows:`); each is its version 1.
    public var flows: [String: FlowConfig] = [:]
    public var files: FilesConfig = .init()
    public var retrieval: RetrievalConfig = .init()
    /// A/B experiments between flow versions and models.
    public var experiments: [String: ExperimentConfig] = [:]
    /// Models that score answers by a rubric (live samples, experiments, offline evaluation).
    public var judges: [String: JudgeConfig] = [:]
    /// How batches run.
    public var batch: BatchConfig = .init()
    /// The directory of the file this was read from (relative `template:` files are found there).
    public var directory: String?

    public init(
        server: ServerConfig = .init(), store: StoreConfig = .init(), providers: [String: ProviderConfig],
        models: [ModelConfig], logging: LoggingConfig = .init(), auth: AuthConfig = .init(), queue: QueueConfig = .init()
    ) {
        self.server = server
        self.store = store
        self.providers = providers
        self.models = models
        self.logging = logging
        self.auth = auth
        self.queue = queue
    }

    enum CodingKeys: String, CodingKey { case server, store, providers, models, logging, auth, queue, guardrails, aliases, routing, cache, alerts, telemetry, flows, files, retrieval, experiments, judges, batch }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.server = try c.decodeIfPresent(ServerConfig.self, forKey: .server) ?? .init()
        self.store = try c.decodeIfPresent(StoreConfig.self, forKey: .store) ?? .init()
        self.providers = try c.decodeIfPresent([String: ProviderConfig].self, forKey: .providers) ?? [:]
        self.models = try c.decodeIfPresent([ModelConfig].self, forKey: .models) ?? []
        self.logging = try c.decodeIfPresent(LoggingConfig.self, forKey: .logging) ?? .init()
        self.auth = try c.decodeIfPresent(AuthConfig.self, forKey: .auth) ?? .init()
        self.queue = try c.decodeIfPresent(QueueConfig.self, forKey: .queue) ?? .init()
        self.guardrails = try c.decodeIfPresent(GuardrailsConfig.self, forKey: .guardrails)
        self.aliases = try c.decodeIfPresent([String: AliasConfig].self, forKey: .aliases) ?? [:]
        self.alerts = try c.decodeIfPresent(AlertsConfig.self, forKey: .alerts) ?? .init()
        self.telemetry = try c.decodeIfPresent(TelemetryConfig.self, forKey: .telemetry) ?? .init()
        self.routing = try c.decodeIfPresent(RoutingConfig.self, forKey: .routing) ?? .init()
        self.cache = try c.decodeIfPresent(CacheConfig.self, forKey: .cache) ?? .init()
        self.flows = try c.decodeIfPresent([String: FlowConfig].self, forKey: .flows) ?? [:]
        self.files = try c.decodeIfPresent(FilesConfig.self, forKey: .files) ?? .init()
        self.retrieval = try c.decodeIfPresent(RetrievalConfig.self, forKey: .retrieval) ?? .init()
        self.experiments = try c.decodeIfPresent([String: ExperimentConfig].self, forKey: .experiments) ?? [:]
        self.judges = try c.decodeIfPresent([String: JudgeConfig].self, forKey: .judges) ?? [:]
        self.batch = try c.decodeIfPresent(BatchConfig.self, forKey: .batch) ?? .init()
    }

    /// Reads, substitutes, decodes and validates a YAML document.
    public static func load(yaml: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SluiceConfig {
        let tree = try YAMLTree.parse(yaml, environment: environment)
        let config = try StrictDecoder.decode(SluiceConfig.self, from: tree)
        try config.validate()
        return config
    }

    /// Reads a YAML file; see `load(yaml:environment:)`.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SluiceConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(path: "", "cannot read \(path): \(error.localizedDescription)")
        }
        var config = try load(yaml: text, environment: environment)
        config.directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        return config
    }

    /// The configuration `sluice serve` uses when no file is given: the simulated provider, and
    /// all-MiniLM-L6-v2 as `all-minilm-l6-v2` when its files are there (`make run` fetches them).
    public static var embeddedDefault: SluiceConfig {
        var providers: [String: ProviderConfig] = ["sim": .simulated(SimulatedProviderConfig())]
        var models = [
            ModelConfig(name: "sim-small", provider: "sim", upstreamModel: "small", price: Price(inputPerMTok: 0.15, outputPerMTok: 0.60), contextWindow: 8192),
            ModelConfig(name: "sim-embed", provider: "sim", upstreamModel: "embed", type: .embedding, price: Price(inputPerMTok: 0.02, outputPerMTok: 0), contextWindow: 8192),
        ]
        if FileManager.default.fileExists(atPath: MiniLMProviderConfig.autoPath + "/model.safetensors") {
            providers["local-embed"] = .minilm(MiniLMProviderConfig())
            models.append(ModelConfig(name: "all-minilm-l6-v2", provider: "local-embed", upstreamModel: "all-minilm-l6-v2", type: .embedding))
        }
        let llama = LlamaServerProviderConfig()
        if FileManager.default.fileExists(atPath: llama.resolvedModelPath), FileManager.default.isExecutableFile(atPath: llama.resolvedBinary) {
            providers["local"] = .llamaServer(llama)
            models.append(ModelConfig(name: "gemma-3-270m", provider: "local", upstreamModel: "gemma-3-270m", contextWindow: llama.context))
        }
        var config = SluiceConfig(store: StoreConfig(sqlite: "./.sluice/sluice.db"), providers: providers, models: models)
        // An example use case to call in the first minute: on the local model when it is there.
        let model = models.contains { $0.name == "gemma-3-270m" } ? "gemma-3-270m" : "sim-small"
        config.flows["summarize"] = FlowConfig(
            description: "Summarize a text in two or three sentences",
            model: model,
            messages: [
                .init(role: .system, content: "You summarize texts in two or three plain sentences."),
                .init(role: .user, content: "Summarize this text:\n\n{{text}}"),
            ],
            input: .object([
                "type": "object", "required": ["text"],
                "properties": .object(["text": .object(["type": "string", "minLength": 1, "maxLength": 20000])]),
            ]),
            params: .init(temperature: 0.2, maxTokens: 200))
        return config
    }

    /// Checks what decoding cannot: references resolve, names are unique, numbers are in range.
    public func validate() throws {
        var errors: [ConfigError] = []
        errors += server.problems(path: "server")
        errors += store.problems(path: "store")
        errors += auth.problems(path: "auth")
        errors += queue.problems(path: "queue")
        if let guardrails { errors += guardrails.problems(path: "guardrails") }
        for (name, provider) in providers.sorted(by: { $0.key < $1.key }) {
            if name.isEmpty { errors.append(ConfigError(path: "providers", "provider names must not be empty")) }
            errors += provider.problems(path: "providers.\(name)")
        }
        var seen: Set<String> = []
        for (i, model) in models.enumerated() {
            let path = "models[\(i)]"
            if model.name.isEmpty { errors.append(ConfigError(path: "\(path).name", "must not be empty")) }
            if !seen.insert(model.name).inserted {
                errors.append(ConfigError(path: "\(path).name", "duplicate model name '\(model.name)'"))
            }
            if let provider = providers[model.provider] {
                if model.type == .embedding && !provider.supportsEmbeddings {
                    errors.append(ConfigError(path: "\(path).provider", "provider '\(model.provider)' (\(provider.kindName)) cannot serve embeddings"))
                }
                if model.type == .chat && !provider.supportsChat {
                    errors.append(
                        ConfigError(path: "\(path).type", "provider '\(model.provider)' (\(provider.kindName)) serves embeddings only; set type: embedding"))
                }
            } else {
                let known = providers.keys.sorted().joined(separator: ", ")
                errors.append(ConfigError(path: "\(path).provider", "no provider named '\(model.provider)' (providers: \(known.isEmpty ? "none" : known))"))
            }
            if model.price.inputPerMTok < 0 || model.price.outputPerMTok < 0 {
                errors.append(ConfigError(path: "\(path).price", "prices must not be negative"))
            }
            if let window = model.contextWindow, window <= 0 {
                errors.append(ConfigError(path: "\(path).context_window", "must be positive"))
            }
            if let cap = model.maxConcurrent, cap <= 0 {
                errors.append(ConfigError(path: "\(path).max_concurrent", "must be positive"))
            }
            if let timeouts = model.timeouts { errors += timeouts.problems(path: "\(path).timeouts") }
            if let cache = model.cache { errors += cache.problems(path: "\(path).cache") }
        }
        errors += routing.problems(path: "routing")
        errors += alerts.problems(path: "alerts", models: Set(models.map(\.name)).union(aliases.keys), flows: flows)
        errors += telemetry.problems(path: "telemetry")
        let chatModels = Dictionary(models.filter { $0.type == .chat }.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let embeddingModels = Set(models.filter { $0.type == .embedding }.map(\.name))
        errors += cache.problems(path: "cache", embeddingModels: embeddingModels)
        let modelChecked = models.enumerated().compactMap { i, m in m.cache.map { ("models[\(i)].cache.verify", $0) } }
            + aliases.sorted(by: { $0.key < $1.key }).compactMap { name, a in a.cache.map { ("aliases.\(name).cache.verify", $0) } }
        for (path, rule) in modelChecked where rule.semantic && rule.verify == .model {
            let entry = cache.embeddingModel.flatMap { name in models.first { $0.name == name } }
            if case .minilm = entry.flatMap({ providers[$0.provider] }) { continue }
            errors.append(ConfigError(path: path, "model needs cache.embedding_model to be an in-process MiniLM model (a provider of kind minilm)"))
        }
        errors += files.problems(path: "files")
        errors += retrieval.problems(path: "retrieval", embeddingModels: embeddingModels)
        for (name, alias) in aliases.sorted(by: { $0.key < $1.key }) {
            let path = "aliases.\(name)"
            if seen.contains(name) { errors.append(ConfigError(path: path, "an alias must not have a model entry's name")) }
            errors += alias.problems(path: path, chatModels: chatModels)
            if let model = alias.complexity?.embeddingModel, !embeddingModels.contains(model) {
                errors.append(ConfigError(path: "\(path).complexity.embedding_model", "no embedding model entry named '\(model)'"))
            }
            if alias.cache?.semantic == true, cache.embeddingModel == nil {
                errors.append(ConfigError(path: "\(path).cache.semantic", "needs cache.embedding_model"))
            }
        }
        for (i, model) in models.enumerated() where model.cache?.semantic == true && cache.embeddingModel == nil {
            errors.append(ConfigError(path: "models[\(i)].cache.semantic", "needs cache.embedding_model"))
        }
        // The injection head is trained on all-MiniLM-L6-v2's embeddings: another model's vectors would score nonsense.
        for (name, policy) in (guardrails?.policies ?? [:]).sorted(by: { $0.key < $1.key }) {
            for (direction, checks) in [("input", policy.input), ("output", policy.output)] {
                guard let model = checks.injection?.classifier?.model else { continue }
                let path = "guardrails.policies.\(name).\(direction).injection.classifier.model"
                guard let entry = models.first(where: { $0.name == model && $0.type == .embedding }) else {
                    errors.append(ConfigError(path: path, "no embedding model entry named '\(model)'"))
                    continue
                }
                if case .minilm? = providers[entry.provider] {} else {
                    errors.append(ConfigError(path: path, "'\(model)' must be served by a kind: minilm provider (the classifier is trained on all-MiniLM-L6-v2)"))
                }
            }
        }
        // So is the PII entity tagger, on MiniLM's word states.
        let miniLMModels = models.filter { entry in
            guard entry.type == .embedding, case .minilm? = providers[entry.provider] else { return false }
            return true
        }.map(\.name)
        for (name, policy) in (guardrails?.policies ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let ner = policy.input.pii?.ner else { continue }
            let path = "guardrails.policies.\(name).input.pii.ner"
            if let model = ner.model {
                if !miniLMModels.contains(model) {
                    errors.append(ConfigError(path: "\(path).model", "'\(model)' must be an embedding model entry served by a kind: minilm provider (the tagger reads all-MiniLM-L6-v2's word states)"))
                }
            } else if miniLMModels.isEmpty {
                errors.append(ConfigError(path: path, "needs an embedding model entry served by a kind: minilm provider"))
            } else if miniLMModels.count > 1 {
                errors.append(ConfigError(path: path, "several MiniLM embedding models (\(miniLMModels.joined(separator: ", "))): name one with `ner: { model: … }`"))
            }
        }
        let policies = guardrails.map { Set($0.policies.keys).union(["default"]) }
        for (name, flow) in flows.sorted(by: { $0.key < $1.key }) {
            let path = "flows.\(name)"
            if !FlowConfig.isValidName(name) {
                errors.append(ConfigError(path: path, "a flow name is 1 to 64 letters, digits, '-', '_' or '.'"))
            }
            errors += flow.problems(path: path, models: Set(chatModels.keys).union(aliases.keys), policies: policies)
        }
        errors += evaluationProblems()
        errors += batch.problems(path: "batch")
        if !errors.isEmpty { throw ConfigErrors(errors) }
    }
}

/// `server:`.
public struct ServerConfig: Sendable, Decodable {
    public var host: String = "127.0.0.1"
    public var port: Int = 8080
    public var maxBodyBytes: Int = 4 * 1024 * 1024
    /// How long in-flight requests may run after SIGTERM before they are cancelled.
    public var shutdownGraceSeconds: Double = 10
    /// The overall deadline of one request.
    public var requestTimeoutSeconds: Double = 600
    /// After SIGTERM, how long `/readyz` answers 503 while requests are still accepted, so that
    /// load balancers stop routing here before the listener closes (then `shutdown_grace_s`).
    public var drainSeconds: Double = 0
    /// How long a request's head may take to arrive, from its first byte (408 and close after).
    public var headerTimeoutSeconds: Double = 30
    /// How long a request's body may take to arrive, from its head (408 and close after).
    public var bodyTimeoutSeconds: Double = 120
    /// Open connections at most; beyond it new ones wait in the listen backlog.
    public var maxConnections: Int = 16384

    public init(host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = 4 * 1024 * 1024, shutdownGraceSeconds: Double = 10) {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.shutdownGraceSeconds = shutdownGraceSeconds
    }

    enum CodingKeys: String, CodingKey {
        case host, port
        case maxBodyBytes = "max_body_bytes"
        case shutdownGraceSeconds = "shutdown_grace_s"
        case requestTimeoutSeconds = "request_timeout_s"
        case drainSeconds = "drain_s"
        case headerTimeoutSeconds = "header_timeout_s"
        case bodyTimeoutSeconds = "body_timeout_s"
        case maxConnections = "max_connections"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        host = try c.decodeIfPresent(String.self, forKey: .host) ?? host
        port = try c.decodeIfPresent(Int.self, forKey: .port) ?? port
        maxBodyBytes = try c.decodeIfPresent(Int.self, forKey: .maxBodyBytes) ?? maxBodyBytes
        shutdownGraceSeconds = try c.decodeIfPresent(Double.self, forKey: .shutdownGraceSeconds) ?? shutdownGraceSeconds
        requestTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .requestTimeoutSeconds) ?? requestTimeoutSeconds
        drainSeconds = try c.decodeIfPresent(Double.self, forKey: .drainSeconds) ?? drainSeconds
        headerTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .headerTimeoutSeconds) ?? headerTimeoutSeconds
        bodyTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .bodyTimeoutSeconds) ?? bodyTimeoutSeconds
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? maxConnections
    }

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        if host.isEmpty { out.append(ConfigError(path: "\(path).host", "must not be empty")) }
        if !(0...65535).contains(port) { out.append(ConfigError(path: "\(path).port", "must be in 0...65535, got \(port)")) }
        if maxBodyBytes < 1024 { out.append(ConfigError(path: "\(path).max_body_bytes", "must be at least 1024, got \(maxBodyBytes)")) }
        if !(0...3600).contains(shutdownGraceSeconds) {
            out.append(ConfigError(path: "\(path).shutdown_grace_s", "must be in 0...3600, got \(shutdownGraceSeconds)"))
        }
        if !(headerTimeoutSeconds > 0 && headerTimeoutSeconds <= 3600) {
            out.append(ConfigError(path: "\(path).header_timeout_s", "must be in (0, 3600], got \(headerTimeoutSeconds)"))
        }
        if !(bodyTimeoutSeconds > 0 && bodyTimeoutSeconds <= 86_400) {
            out.append(ConfigError(path: "\(path).body_timeout_s", "must be in (0, 86400], got \(bodyTimeoutSeconds)"))
        }
        if !(1...1_000_000).contains(maxConnections) {
            out.append(ConfigError(path: "\(path).max_connections", "must be in 1...1000000, got \(maxConnections)"))
        }
        if !(0...600).contains(drainSeconds) { out.append(ConfigError(path: "\(path).drain_s", "must be in 0...600, got \(drainSeconds)")) }
        if !(requestTimeoutSeconds > 0 && requestTimeoutSeconds <= 86_400) {
            out.append(ConfigError(path: "\(path).request_timeout_s", "must be in (0, 86400], got \(requestTimeoutSeconds)"))
        }
        return out
    }
}

/// `store:` — one SQLite file (the default) or PostgreSQL (later), and the audit-log writer.
public struct StoreConfig: Sendable, Decodable {
    /// Path of the SQLite database; `:memory:` keeps it in memory.
    public var sqlite: String?
    /// A PostgreSQL URL (`postgres://user:password@host:5432/db`): the store for several replicas.
    public var postgres: String?
    /// How long start-up waits for PostgreSQL to accept a connection before it gives up and says so.
    public var connectTimeoutSeconds: Double = 30
    public var auditLog: AuditLogConfig = .init()

    public init(sqlite: String? = nil, postgres: String? = nil, connectTimeoutSeconds: Double = 30, auditLog: AuditLogConfig = .init()) {
        self.sqlite = sqlite
        self.postgres = postgres
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.auditLog = auditLog
    }

    enum CodingKeys: String, CodingKey {
        case sqlite, postgres
        case connectTimeoutSeconds = "connect_timeout_s"
        case auditLog = "audit_log"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sqlite = try c.decodeIfPresent(String.self, forKey: .sqlite)
        postgres = try c.decodeIfPresent(String.self, forKey: .postgres)
        connectTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .connectTimeoutSeconds) ?? connectTimeoutSeconds
        auditLog = try c.decodeIfPresent(AuditLogConfig.self, forKey: .auditLog) ?? auditLog
    }

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        if let sqlite, sqlite.isEmpty { out.append(ConfigError(path: "\(path).sqlite", "must not be empty")) }
        if sqlite != nil && postgres != nil { out.append(ConfigError(path: "\(path)", "give sqlite or postgres, not both")) }
        if let postgres, !(postgres.hasPrefix("postgres://") || postgres.hasPrefix("postgresql://")) {
            out.append(ConfigError(path: "\(path).postgres", "must be a URL like postgres://user:password@127.0.0.1:5432/sluice"))
        }
        if !(connectTimeoutSeconds > 0 && connectTimeoutSeconds <= 3600) {
            out.append(ConfigError(path: "\(path).connect_timeout_s", "must be a number of seconds in (0, 3600]"))
        }
        out += auditLog.problems(path: "\(path).audit_log")
        return out
    }
}

/// `store.audit_log:` — the background writer's bounds.
public struct AuditLogConfig: Sendable, Decodable {
    /// Rows waiting to be written before new ones are dropped (and counted).
    public var queueCapacity: Int = 100_000
    /// Bytes the waiting rows may hold (their bodies, mostly); beyond it a new row is queued
    /// without its bodies (counted), so large requests cannot grow memory without bound.
    public var queueMaxBytes: Int = 64 * 1024 * 1024
    /// Rows written per transaction at most.
    public var batchSize: Int = 1_000
    /// How long rows gather after the first one arrives before they are written: one
    /// transaction per interval at low load instead of one per request.
    public var flushIntervalMs: Int = 200
    /// Whether request and response bodies are kept: not at all, with PII and secrets redacted, or as sent.
    public var logBodies: BodyLogging = .redacted
    /// Rows older than this many days are deleted by the purge job; nil keeps them forever.
    public var retentionDays: Double? = 30
    /// Bodies older than this many days are cleared (the row stays); nil follows `retention_days`.
    public var bodyRetentionDays: Double? = 7
    /// How often the purge job runs.
    public var purgeIntervalS: Double = 3600
    /// Whether rows are written at all (off only to measure what the audit log costs).
    public var enabled = true

    /// `log_bodies`.
    public enum BodyLogging: String, Sendable, Decodable, CaseIterable {
        case none, redacted, full
    }

    public init(queueCapacity: Int = 100_000, batchSize: Int = 1_000, flushIntervalMs: Int = 200) {
        self.queueCapacity = queueCapacity
        self.batchSize = batchSize
        self.flushIntervalMs = flushIntervalMs
    }

    enum CodingKeys: String, CodingKey {
        case queueCapacity = "queue_capacity"
        case queueMaxBytes = "queue_max_bytes"
        case batchSize = "batch_size"
        case flushIntervalMs = "flush_interval_ms"
        case logBodies = "log_bodies"
        case retentionDays = "retention_days"
        case bodyRetentionDays = "body_retention_days"
        case purgeIntervalS = "purge_interval_s"
        case enabled
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        queueCapacity = try c.decodeIfPresent(Int.self, forKey: .queueCapacity) ?? queueCapacity
        queueMaxBytes = try c.decodeIfPresent(Int.self, forKey: .queueMaxBytes) ?? queueMaxBytes
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
        flushIntervalMs = try c.decodeIfPresent(Int.self, forKey: .flushIntervalMs) ?? flushIntervalMs
        logBodies = try c.decodeIfPresent(BodyLogging.self, forKey: .logBodies) ?? logBodies
        // An explicit null keeps rows (or bodies) forever.
        if c.contains(.retentionDays) { retentionDays = try c.decodeNil(forKey: .retentionDays) ? nil : try c.decode(Double.self, forKey: .retentionDays) }
        if c.contains(.bodyRetentionDays) {
            bodyRetentionDays = try c.decodeNil(forKey: .bodyRetentionDays) ? nil : try c.decode(Double.self, forKey: .bodyRetentionDays)
        }
        purgeIntervalS = try c.decodeIfPresent(Double.self, forKey: .purgeIntervalS) ?? purgeIntervalS
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? enabled
    }

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        if queueCapacity < 1 { out.append(ConfigError(path: "\(path).queue_capacity", "must be at least 1")) }
        if batchSize < 1 { out.append(ConfigError(path: "\(path).batch_size", "must be at least 1")) }
        if queueMaxBytes < 65536 { out.append(ConfigError(path: "\(path).queue_max_bytes", "must be at least 65536")) }
        if flushIntervalMs < 0 || flushIntervalMs > 60_000 {
            out.append(ConfigError(path: "\(path).flush_interval_ms", "must be in 0...60000"))
        }
        if let d = retentionDays, !(d > 0) { out.append(ConfigError(path: "\(path).retention_days", "must be more than 0, or null to keep rows forever")) }
        if let d = bodyRetentionDays, !(d > 0) {
            out.append(ConfigError(path: "\(path).body_retention_days", "must be more than 0, or null to follow retention_days"))
        }
        if !(purgeIntervalS >= 1 && purgeIntervalS <= 86_400) { out.append(ConfigError(path: "\(path).purge_interval_s", "must be in 1...86400")) }
        return out
    }
}

/// `logging:`.
public struct LoggingConfig: Sendable, Decodable {
    /// `trace`, `debug`, `info`, `notice`, `warning`, `error`, `critical`.
    public var level: String = "info"
    /// `text` or `json`.
    public var format: String = "text"

    public init() {}

    enum CodingKeys: String, CodingKey { case level, format }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        level = try c.decodeIfPresent(String.self, forKey: .level) ?? level
        format = try c.decodeIfPresent(String.self, forKey: .format) ?? format
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        guard levels.contains(level) else {
            throw DecodingError.dataCorruptedError(forKey: .level, in: c, debugDescription: "must be one of \(levels.joined(separator: ", "))")
        }
        guard ["text", "json"].contains(format) else {
            throw DecodingError.dataCorruptedError(forKey: .format, in: c, debugDescription: "must be text or json")
        }
    }
}

/// One entry of `models:` — a deployment clients can name.
public struct ModelConfig: Sendable, Decodable {
    /// What the model is for.
    public enum ModelType: String, Sendable, Decodable { case chat, embedding }

    public var name: String
    public var provider: String
    public var upstreamModel: String
    public var type: ModelType
    public var price: Price
    public var contextWindow: Int?
    /// Requests this deployment serves at once; more wait in priority order (`queue:`).
    public var maxConcurrent: Int?
    /// Overrides the provider's timeouts for this entry (every field given replaces the provider's).
    public var timeouts: TimeoutOverrides?
    /// Response caching for requests naming this entry directly.
    public var cache: CacheRuleConfig?

    public init(name: String, provider: String, upstreamModel: String, type: ModelType = .chat, price: Price = .free, contextWindow: Int? = nil) {
        self.name = name
        self.provider = provider
        self.upstreamModel = upstreamModel
        self.type = type
        self.price = price
        self.contextWindow = contextWindow
    }

    enum CodingKeys: String, CodingKey {
        case name, provider, type, price
        case upstreamModel = "upstream_model"
        case contextWindow = "context_window"
        case maxConcurrent = "max_concurrent"
        case timeouts, cache
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        provider = try c.decode(String.self, forKey: .provider)
        upstreamModel = try c.decodeIfPresent(String.self, forKey: .upstreamModel) ?? name
        let typeName = try c.decodeIfPresent(String.self, forKey: .type) ?? "chat"
        guard let t = ModelType(rawValue: typeName) else {
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "must be chat or embedding, got \(typeName)")
        }
        type = t
        price = try c.decodeIfPresent(Price.self, forKey: .price) ?? .free
        contextWindow = try c.decodeIfPresent(Int.self, forKey: .contextWindow)
        maxConcurrent = try c.decodeIfPresent(Int.self, forKey: .maxConcurrent)
        timeouts = try c.decodeIfPresent(TimeoutOverrides.self, forKey: .timeouts)
        cache = try c.decodeIfPresent(CacheRuleConfig.self, forKey: .cache)
    }
}

/// `telemetry:`.
public struct TelemetryConfig: Sendable, Decodable {
    /// Prometheus metrics at `/metrics` (off only to measure what they cost: `/metrics` then answers 404).
    public var metrics = true
    /// Where OpenTelemetry traces go (an OTLP/HTTP collector, `http://host:4318`); none: no tracing.
    public var otlpEndpoint: String?
    /// `http/protobuf` or `http/json`.
    public var otlpProtocol = "http/protobuf"
    /// The traces' `service.name`.
    public var serviceName = "sluice"
    /// Milliseconds between exports of finished spans.
    public var exportIntervalMs = 1000
    /// The share of new traces recorded (0...1); a request with an incoming `traceparent` follows
    /// its caller's decision. Below 1 at high volume: an unsampled span costs a fraction of a recorded one.
    public var traceSampleRatio = 1.0

    public init(metrics: Bool = true, otlpEndpoint: String? = nil) {
        self.metrics = metrics
        self.otlpEndpoint = otlpEndpoint
    }

    enum CodingKeys: String, CodingKey {
        case metrics
        case otlpEndpoint = "otlp_endpoint"
        case otlpProtocol = "otlp_protocol"
        case serviceName = "service_name"
        case exportIntervalMs = "export_interval_ms"
        case traceSampleRatio = "trace_sample_ratio"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metrics = try c.decodeIfPresent(Bool.self, forKey: .metrics) ?? true
        otlpEndpoint = try c.decodeIfPresent(String.self, forKey: .otlpEndpoint)
        otlpProtocol = try c.decodeIfPresent(String.self, forKey: .otlpProtocol) ?? otlpProtocol
        serviceName = try c.decodeIfPresent(String.self, forKey: .serviceName) ?? serviceName
        exportIntervalMs = try c.decodeIfPresent(Int.self, forKey: .exportIntervalMs) ?? exportIntervalMs
        traceSampleRatio = try c.decodeIfPresent(Double.self, forKey: .traceSampleRatio) ?? traceSampleRatio
    }

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        if let e = otlpEndpoint, !ConfigError.isHTTPURL(e) {
            out.append(ConfigError(path: "\(path).otlp_endpoint", "must be an http or https URL (an OTLP/HTTP collector, e.g. http://127.0.0.1:4318)"))
        }
        if !["http/protobuf", "http/json"].contains(otlpProtocol) {
            out.append(ConfigError(path: "\(path).otlp_protocol", "must be http/protobuf or http/json"))
        }
        if serviceName.isEmpty { out.append(ConfigError(path: "\(path).service_name", "must not be empty")) }
        if !(10...60_000).contains(exportIntervalMs) { out.append(ConfigError(path: "\(path).export_interval_ms", "must be in 10...60000")) }
        if !(0...1).contains(traceSampleRatio) { out.append(ConfigError(path: "\(path).trace_sample_ratio", "must be in 0...1")) }
        return out
    }
}
