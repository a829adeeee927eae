import Testing
@testable import SluiceCore

@Suite struct ConfigTests {
    let valid = """
        server: { host: 127.0.0.1, port: 8080, max_body_bytes: 4194304 }
        store: { sqlite: ./sluice.db }
        providers:
          sim:   { kind: simulated }
          up:    { kind: openai-compatible, base_url: "http://127.0.0.1:9000/v1", api_key: "${UP_KEY}" }
          claude: { kind: anthropic, base_url: "https://api.anthropic.com", api_key: "${ANTHROPIC_API_KEY}" }
        models:
          - { name: sim-small, provider: sim, upstream_model: small, price: { input_per_mtok: 0.15, output_per_mtok: 0.60 }, context_window: 8192 }
          - { name: up-model, provider: up }
        """
    let env = ["UP_KEY": "k1", "ANTHROPIC_API_KEY": "k2"]

    @Test func loadsTheDocumentedShape() throws {
        let config = try SluiceConfig.load(yaml: valid, environment: env)
        #expect(config.server.port == 8080)
        #expect(config.server.maxBodyBytes == 4_194_304)
        #expect(config.store.sqlite == "./sluice.db")
        #expect(config.models.count == 2)
        #expect(config.models[0].price.outputPerMTok == 0.60)
        #expect(config.models[1].upstreamModel == "up-model")
        guard case .openAICompatible(let up) = config.providers["up"] else {
            Issue.record("up is not openai-compatible")
            return
        }
        #expect(up.apiKey == "k1")
        #expect(up.baseURL == "http://127.0.0.1:9000/v1")
    }

    func configError(_ yaml: String, env: [String: String] = [:]) -> String {
        do {
            _ = try SluiceConfig.load(yaml: yaml, environment: env)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func unknownKeyIsNamedByPath() {
        let message = configError("""
            providers:
              sim: { kind: simulated, replyy: hi }
            models: []
            """)
        #expect(message == "providers.sim.replyy: unknown key")
        #expect(configError("server: { port: 1, colour: red }") == "server.colour: unknown key")
        #expect(configError("servr: {}") == "servr: unknown key")
        #expect(configError("""
            providers: { sim: { kind: simulated } }
            models:
              - { name: a, provider: sim, pricee: {} }
            """) == "models[0].pricee: unknown key")
    }

    @Test func wrongTypeIsNamedByPath() {
        #expect(configError("server: { port: eighty }") == "server.port: expected an integer, got string \"eighty\"")
        #expect(configError("server: { host: [a] }").hasPrefix("server.host: expected a string"))
        #expect(configError("providers: { sim: { kind: simulated, ttft_ms: fast } }").hasPrefix("providers.sim.ttft_ms: expected an integer"))
    }

    @Test func danglingReferenceIsAnError() {
        let message = configError("""
            providers: { sim: { kind: simulated } }
            models:
              - { name: a, provider: nowhere }
            """)
        #expect(message.contains("models[0].provider: no provider named 'nowhere'"))
    }

    @Test func telemetryAuditLogAndWebhookSettingsAreValidated() throws {
        let message = configError((valid + """

            telemetry: { otlp_endpoint: "collector:4318", otlp_protocol: grpc, export_interval_ms: 0, trace_sample_ratio: 1.5 }
            alerts: { webhook: { url: "ftp://hooks.example.com" } }
            store: { sqlite: ./x.db, audit_log: { retention_days: 0, log_bodies: none } }
            """).replacingOccurrences(of: "store: { sqlite: ./sluice.db }\n", with: ""), env: env)
        for path in ["telemetry.otlp_endpoint", "telemetry.otlp_protocol", "telemetry.export_interval_ms", "telemetry.trace_sample_ratio", "alerts.webhook.url", "store.audit_log.retention_days"] {
            #expect(message.contains(path), "\(path) in \(message)")
        }
        let good = try SluiceConfig.load(
            yaml: valid + "\ntelemetry: { otlp_endpoint: \"http://127.0.0.1:4318\" }\nalerts: { webhook: { url: \"https://hooks.example.com/x\" } }",
            environment: env)
        #expect(good.telemetry.otlpEndpoint == "http://127.0.0.1:4318" && good.alerts.webhook?.retries == 3)
        #expect(good.store.auditLog.logBodies == .redacted && good.store.auditLog.retentionDays == 30)
    }

    @Test func aliasesRoutingAndCacheAreValidated() {
        let base = """
            providers: { sim: { kind: simulated } }
            models:
              - { name: a, provider: sim }
              - { name: b, provider: sim }
              - { name: e, provider: sim, type: embedding }
            """
        #expect(configError(base + "\naliases: { chat: { deployments: [a, ghost] } }").contains("aliases.chat.deployments"))
        #expect(configError(base + "\naliases: { a: { deployments: [b] } }").contains("aliases.a"))
        #expect(configError(base + "\naliases: { chat: { deployments: [a], strategy: fastest } }").contains("strategy"))
        #expect(configError(base + "\naliases: { chat: { deployments: [a], strategy: complexity } }").contains("aliases.chat"))
        #expect(configError(base + "\naliases: { chat: { deployments: [a, b], cache: { semantic: true } } }").contains("cache.embedding_model"))
        #expect(configError(base + "\ncache: { embedding_model: a }").contains("cache.embedding_model"))
        #expect(configError(base + "\nrouting: { breaker: { error_rate: 2 } }").contains("routing.breaker.error_rate"))
        #expect(configError(base + "\naliases: { chat: { deployments: [a], cache: { scope: world } } }").contains("scope"))
        // Connections are the provider's: a model may not set its own connect timeout.
        let connect = base.replacingOccurrences(of: "{ name: a, provider: sim }", with: "{ name: a, provider: sim, timeouts: { connect_ms: 10 } }")
        #expect(configError(connect).contains("models[0].timeouts.connect_ms"))
        let fine = base + "\naliases: { chat: { deployments: [a], strategy: lowest-latency, fallbacks: [b], cache: { semantic: true } } }\ncache: { embedding_model: e }"
        #expect(throws: Never.self) { try SluiceConfig.load(yaml: fine, environment: [:]) }
    }

    /// A simulated chat model `a`, a simulated embedding model `e` and MiniLM in process `m`.
    static let simulatedAndMiniLM = """
        providers: { sim: { kind: simulated }, local: { kind: minilm } }
        models:
          - { name: a, provider: sim }
          - { name: e, provider: sim, type: embedding }
          - { name: m, provider: local, type: embedding }
        """

    @Test func theCachesModelCheckNeedsAnInProcessMiniLM() throws {
        let base = Self.simulatedAndMiniLM
        func alias(_ rule: String, embedding: String = "m") -> String { base + "\naliases: { chat: { deployments: [a], cache: \(rule) } }\ncache: { embedding_model: \(embedding) }" }
        #expect(configError(alias("{ semantic: true, verify: model }", embedding: "e")).contains("aliases.chat.cache.verify: model needs cache.embedding_model to be an in-process MiniLM"))
        #expect(configError(alias("{ semantic: true, verify: maybe }")).contains("must be rule, model or off, got 'maybe'"))
        func rule(_ text: String) throws -> CacheRuleConfig { try #require(try SluiceConfig.load(yaml: alias(text), environment: [:]).aliases["chat"]?.cache) }
        // The model check reads both questions, so its candidates start further away unless a threshold is set.
        #expect(try rule("{ semantic: true, verify: model }").threshold == CacheVerification.modelThreshold)
        #expect(try rule("{ semantic: true, verify: model, threshold: 0.9 }").threshold == 0.9)
        // The Boolean spelling still means the rule or nothing.
        #expect(try rule("{ semantic: true, verify: true }").verify == .rule && rule("{ semantic: true }").verify == .rule)
        #expect(try rule("{ semantic: true, verify: false }").verify == .off && rule("{ semantic: true, verify: false }").threshold == 0.95)
        #expect(try rule("{ semantic: true, verify: off }").verify == .off)
    }

    @Test func injectionClassifierNeedsAMiniLMModelAndInputText() throws {
        let base = Self.simulatedAndMiniLM
        func policy(_ input: String, output: String = "{}") -> String { base + "\nguardrails: { policies: { p: { input: \(input), output: \(output) } } }" }
        #expect(configError(policy("{ injection: { classifier: { model: ghost } } }")).contains("guardrails.policies.p.input.injection.classifier.model: no embedding model entry named 'ghost'"))
        #expect(configError(policy("{ injection: { classifier: { model: e } } }")).contains("must be served by a kind: minilm provider"))
        #expect(configError(policy("{ injection: { classifier: { model: m, threshold: 1.5 } } }")).contains("injection.classifier.threshold"))
        #expect(configError(policy("{ injection: { classifier: { model: m, max_windows: 0 } } }")).contains("injection.classifier.max_windows"))
        #expect(configError(policy("{}", output: "{ injection: { classifier: { model: m } } }")).contains("scores input text only"))
        #expect(configError(policy("{ injection: { classifier: {} } }")).contains("injection.classifier.model"))
        let config = try SluiceConfig.load(yaml: policy("{ injection: { threshold: 0.5, classifier: { model: m, max_windows: 4 } } }"), environment: [:])
        let classifier = try #require(config.guardrails?.policies["p"]?.input.injection?.classifier)
        #expect(classifier.model == "m" && classifier.threshold == nil && classifier.maxWindows == 4)
        // The PII entity tagger: on by `true` (the only MiniLM model) or by naming the model; input only.
        #expect(try SluiceConfig.load(yaml: policy("{ pii: { ner: true } }"), environment: [:]).guardrails?.policies["p"]?.input.pii?.ner?.model == nil)
        #expect(try SluiceConfig.load(yaml: policy("{ pii: { ner: false } }"), environment: [:]).guardrails?.policies["p"]?.input.pii?.ner == nil)
        #expect(try SluiceConfig.load(yaml: policy("{ pii: { ner: { model: m } } }"), environment: [:]).guardrails?.policies["p"]?.input.pii?.ner?.model == "m")
        #expect(configError(policy("{ pii: { ner: { model: e } } }")).contains("guardrails.policies.p.input.pii.ner.model: 'e' must be an embedding model entry served by a kind: minilm provider"))
        #expect(configError(policy("{}", output: "{ pii: { ner: true } }")).contains("the entity tagger checks input text only"))
        let noMiniLM = "providers: { sim: { kind: simulated } }\nmodels: [{ name: a, provider: sim }]\nguardrails: { policies: { p: { input: { pii: { ner: true } } } } }"
        #expect(configError(noMiniLM).contains("guardrails.policies.p.input.pii.ner: needs an embedding model entry served by a kind: minilm provider"))
        // The built-in policy can be named without being defined; another name must be defined.
        #expect(try SluiceConfig.load(yaml: base + "\nguardrails: { default_policy: default }", environment: [:]).guardrails?.defaultPolicy == "default")
        #expect(configError(base + "\nguardrails: { default_policy: strict }").contains("guardrails.default_policy: no policy named 'strict' (policies: default)"))
    }

    @Test func missingRequiredKey() {
        #expect(configError("providers: { sim: { kind: simulated } }\nmodels: [ { provider: sim } ]") == "models[0].name: required key is missing")
        #expect(configError("providers: { x: { base_url: 'http://a' } }") == "providers.x.kind: required key is missing")
    }

    @Test func unknownProviderKind() {
        #expect(configError("providers: { x: { kind: magic } }").contains("unknown provider kind 'magic'"))
    }

    @Test func cloudProviderKinds() throws {
        #expect(configError("providers: { az: { kind: azure-openai, api_key: k } }").contains("providers.az.base_url: Azure OpenAI needs the resource's endpoint"))
        let yaml = """
            providers:
              az: { kind: azure-openai, base_url: "https://r.openai.azure.com", api_key: k, api_version: v1 }
              gem: { kind: gemini, api_key: g }
              br: { kind: bedrock, region: eu-west-1 }
            models:
              - { name: a, provider: az, upstream_model: dep }
              - { name: g, provider: gem }
              - { name: e, provider: gem, type: embedding }
              - { name: b, provider: br, upstream_model: "anthropic.claude-3-5-haiku-20241022-v1:0" }
            """
        let config = try SluiceConfig.load(yaml: yaml, environment: [:])
        guard case .azureOpenAI(let az)? = config.providers["az"], case .gemini(let gem)? = config.providers["gem"],
            case .bedrock(let br)? = config.providers["br"]
        else {
            Issue.record("expected the three cloud kinds")
            return
        }
        #expect(az.apiVersion == "v1" && gem.baseURL == "https://generativelanguage.googleapis.com/v1beta" && br.region == "eu-west-1" && br.baseURL.isEmpty)
        // Bedrock serves no embeddings.
        #expect(configError(yaml + "\n  - { name: x, provider: br, type: embedding }").contains("models[4]"))
    }

    @Test func rangesAreChecked() {
        #expect(configError("server: { port: 70000 }").contains("server.port: must be in 0...65535"))
        #expect(configError("providers: { x: { kind: openai-compatible, base_url: 'ftp://x' } }").contains("providers.x.base_url: must be an http(s) URL"))
        #expect(configError("""
            providers: { sim: { kind: simulated } }
            models:
              - { name: a, provider: sim }
              - { name: a, provider: sim }
            """).contains("models[1].name: duplicate model name 'a'"))
    }

    @Test func environmentSubstitution() throws {
        let yaml = """
            server: { port: "${PORT}", host: "${HOST:-127.0.0.1}" }
            providers: { up: { kind: openai-compatible, base_url: "http://${UPHOST}:9000/v1" } }
            """
        let config = try SluiceConfig.load(yaml: yaml, environment: ["PORT": "9999", "UPHOST": "127.0.0.2"])
        #expect(config.server.port == 9999)
        #expect(config.server.host == "127.0.0.1")
        guard case .openAICompatible(let up) = config.providers["up"] else {
            Issue.record("wrong kind")
            return
        }
        #expect(up.baseURL == "http://127.0.0.2:9000/v1")
        #expect(configError(yaml, env: [:]).contains("environment variable PORT is not set"))
    }

    @Test func quotedLiteralStaysAString() {
        #expect(configError("server: { port: \"8080\" }") == "server.port: expected an integer, got string \"8080\"")
    }

    @Test func notYAML() {
        #expect(configError("server: [unclosed").contains("not valid YAML"))
    }

    @Test func embeddedDefaultIsValid() throws {
        let config = SluiceConfig.embeddedDefault
        try config.validate()
        // A newcomer can call a flow in the first minute.
        #expect(config.flows["summarize"]?.inputProperties == ["text"])
    }
}
