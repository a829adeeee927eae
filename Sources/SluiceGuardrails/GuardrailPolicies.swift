import Metrics
import SluiceCore

/// The configured guardrail policies, compiled once, and which one a request gets: its key's
/// `guardrail_policy` metadata, else its team's, else `guardrails.default_policy`.
public struct GuardrailPolicies: Sendable {
    public static let metadataKey = "guardrail_policy"

    public let policies: [String: GuardrailPolicy]
    public let defaultPolicy: String?
    /// Denied topics per policy and direction ("policy/input").
    public let topics: [String: DeniedTopics]
    /// The learned injection classifier of each policy that turns it on ("policy/input").
    public let injectionClassifiers: [String: InjectionClassifier]
    /// The entity tagger of each policy that turns `pii.ner` on (input only), by policy name.
    public let entityTaggers: [String: EntityTagger]

    public init(config: GuardrailsConfig?, catalog: ModelCatalog) throws {
        self.outputContract = try GuardrailPolicy(name: "output-contract", config: GuardrailPolicyConfig())
        var policies: [String: GuardrailPolicy] = [:]
        var topics: [String: DeniedTopics] = [:]
        var classifiers: [String: InjectionClassifier] = [:]
        var taggers: [String: EntityTagger] = [:]
        var configured = config?.policies ?? [:]
        if configured["default"] == nil { configured["default"] = GuardrailsConfig.builtInDefault }
        for (name, policyConfig) in configured {
            policies[name] = try GuardrailPolicy(name: name, config: policyConfig)
            if let ner = policyConfig.input.pii?.ner {
                taggers[name] = EntityTagger(encoder: try Self.wordEncoder(ner, catalog: catalog, path: "guardrails.policies.\(name).input.pii.ner"))
            }
            for direction in GuardrailDirection.allCases {
                let checks = direction == .input ? policyConfig.input : policyConfig.output
                if let c = checks.injection?.classifier {
                    guard let embed = catalog.embedding[c.model]?.embedder else {
                        throw ConfigError(path: "guardrails.policies.\(name).\(direction.rawValue).injection.classifier.model", "no embedding model named '\(c.model)'")
                    }
                    classifiers["\(name)/\(direction.rawValue)"] = InjectionClassifier(
                        embed: embed, threshold: c.threshold ?? InjectionHead.defaultThreshold, maxWindows: c.maxWindows)
                }
                guard let t = checks.topics, !t.denied.isEmpty else { continue }
                guard let embed = catalog.embedding[t.model]?.embedder else {
                    throw ConfigError(path: "guardrails.policies.\(name).\(direction.rawValue).topics.model", "no embedding model named '\(t.model)'")
                }
                topics["\(name)/\(direction.rawValue)"] = DeniedTopics(denied: t.denied, threshold: t.threshold, embed: embed)
            }
        }
        self.policies = policies
        self.defaultPolicy = config?.defaultPolicy
        self.topics = topics
        self.injectionClassifiers = classifiers
        self.entityTaggers = taggers
    }

    /// The encoder the tagger runs on: the named embedding entry, or the only one served in
    /// process by MiniLM (the tagger is trained on all-MiniLM-L6-v2's states).
    static func wordEncoder(_ config: EntityTaggerConfig, catalog: ModelCatalog, path: String) throws -> any WordEncoder {
        if let model = config.model {
            guard let deployment = catalog.embedding[model] else { throw ConfigError(path: "\(path).model", "no embedding model named '\(model)'") }
            guard let encoder = deployment.embeddingProvider as? any WordEncoder else {
                throw ConfigError(path: "\(path).model", "'\(model)' is not served by a `kind: minilm` provider; the tagger reads MiniLM's word states")
            }
            return encoder
        }
        let candidates = catalog.embedding.filter { $0.value.embeddingProvider is any WordEncoder }.keys.sorted()
        guard let only = candidates.first, let encoder = catalog.embedding[only]?.embeddingProvider as? any WordEncoder else {
            throw ConfigError(path: path, "needs an embedding model served by a `kind: minilm` provider (see docs/configuration.md)")
        }
        guard candidates.count == 1 else {
            throw ConfigError(path: path, "several MiniLM embedding models (\(candidates.joined(separator: ", "))): name one with `ner: {model: …}`")
        }
        return encoder
    }

    /// The policy for a caller; nil when none applies.
    /// A policy by name (a flow's `guardrails:`); nil for `none` or a name not configured.
    public func policy(named name: String) -> GuardrailPolicy? {
        name == "none" ? nil : policies[name]
    }

    /// What a flow with an output schema gets when no policy applies: no checks, only the
    /// schema with its repair attempts (a flow's output contract always holds).
    public let outputContract: GuardrailPolicy

    public func policy(for principal: Principal?) -> GuardrailPolicy? {
        let named = principal?.key.metadata[Self.metadataKey] ?? principal?.team?.metadata[Self.metadataKey] ?? defaultPolicy
        guard let named, named != "none" else { return nil }
        return policies[named]
    }

    /// Counts one decision (`sluice_guardrail_actions_total`).
    static func count(_ finding: GuardrailFinding, direction: GuardrailDirection) {
        Counter(
            label: "sluice_guardrail_actions_total",
            dimensions: [("check", finding.check), ("type", finding.type), ("action", finding.action.rawValue), ("direction", direction.rawValue)]
        ).increment()
    }
}
