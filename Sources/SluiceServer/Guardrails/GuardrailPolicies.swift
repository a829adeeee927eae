import Metrics
import SluiceCore
import SluiceGuardrails

/// The configured guardrail policies, compiled once, and which one a request gets: its key's
/// `guardrail_policy` metadata, else its team's, else `guardrails.default_policy`.
struct GuardrailPolicies: Sendable {
    static let metadataKey = "guardrail_policy"

    let policies: [String: GuardrailPolicy]
    let defaultPolicy: String?
    /// Denied topics per policy and direction ("policy/input").
    let topics: [String: DeniedTopics]

    init(config: GuardrailsConfig?, catalog: ModelCatalog) throws {
        var policies: [String: GuardrailPolicy] = [:]
        var topics: [String: DeniedTopics] = [:]
        var configured = config?.policies ?? [:]
        if configured["default"] == nil { configured["default"] = GuardrailsConfig.builtInDefault }
        for (name, policyConfig) in configured {
            policies[name] = try GuardrailPolicy(name: name, config: policyConfig)
            for direction in GuardrailDirection.allCases {
                let checks = direction == .input ? policyConfig.input : policyConfig.output
                guard let t = checks.topics, !t.denied.isEmpty else { continue }
                guard let model = catalog.embedding[t.model] else {
                    throw ConfigError(path: "guardrails.policies.\(name).\(direction.rawValue).topics.model", "no embedding model named '\(t.model)'")
                }
                topics["\(name)/\(direction.rawValue)"] = DeniedTopics(denied: t.denied, threshold: t.threshold) { texts in
                    let context = InferenceContext(requestID: "guardrail-topics", endpoint: "embeddings", logger: .init(label: "sluice.guardrails"), receivedAtUnix: 0)
                    let response = try await model.provider.embed(EmbeddingsRequest(model: model.upstreamModel, input: .strings(texts)), context: context)
                    return response.data.sorted { $0.index < $1.index }.map { item in
                        if case .float(let v) = item.embedding { return v }
                        return []
                    }
                }
            }
        }
        self.policies = policies
        self.defaultPolicy = config?.defaultPolicy
        self.topics = topics
    }

    /// The policy for a caller; nil when none applies.
    func policy(for principal: Principal?) -> GuardrailPolicy? {
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
