import Hummingbird
import HTTPTypes
import SluiceCore
import SluiceObservability
import SluiceGuardrails

/// `POST /v1/guardrails/check`: runs every check of a policy on one text, whatever the checks'
/// actions, and answers what was found, the injection score, whether the policy would block it,
/// and the text as the policy would pass it on.
struct GuardrailRoutes: Sendable {
    let policies: GuardrailPolicies
    let body: RequestBodyReader
    /// Scores injection even where the policy does not check for it (the endpoint measures).
    let scorer = InjectionScorer()

    static let routes: [String: [HTTPRequest.Method]] = ["/v1/guardrails/check": [.post]]

    func register(on router: Router<SluiceRequestContext>) {
        router.post("/v1/guardrails/check") { request, _ in try await check(request) }
    }

    func check(_ request: Request) async throws -> Response {
        let value = try await body.decode(JSONValue.self, from: request)
        guard case .object(let fields) = value else { throw SluiceError(.invalidType, "The body must be a JSON object with a 'text' field.") }
        for key in fields.keys where !["text", "policy", "direction"].contains(key) {
            throw SluiceError(.invalidRequest, "Unknown field '\(key)' (fields: text, policy, direction).", param: key)
        }
        guard let raw = fields["text"] else { throw SluiceError(.missingParameter, "'text' is required.", param: "text") }
        guard let text = raw.stringValue else { throw SluiceError(.invalidType, "'text' must be a string, got \(raw.typeName).", param: "text") }
        let name: String
        switch fields["policy"] {
        case nil, .null?: name = policies.defaultPolicy ?? "default"
        case .string(let s)?: name = s
        case let other?: throw SluiceError(.invalidType, "'policy' must be a string, got \(other.typeName).", param: "policy")
        }
        guard let policy = policies.policies[name] else {
            throw SluiceError(.invalidValue, "No guardrail policy named '\(name)' (policies: \(policies.policies.keys.sorted().joined(separator: ", "))).", param: "policy")
        }
        let direction: GuardrailDirection
        switch fields["direction"] {
        case nil, .null?: direction = .input
        case .string(let s)?:
            guard let d = GuardrailDirection(rawValue: s) else { throw SluiceError(.invalidValue, "'direction' must be input or output, got '\(s)'.", param: "direction") }
            direction = d
        case let other?: throw SluiceError(.invalidType, "'direction' must be a string, got \(other.typeName).", param: "direction")
        }

        let entities = direction == .input ? try await policies.entityTaggers[policy.name]?.findings([text]).first : nil
        var outcome = policy.check(text, direction: direction, book: PlaceholderBook(), scoreInjection: true, entities: entities ?? [])
        var injection = outcome.injection ?? scorer.assess(text)
        var classifierReport: JSONValue?
        if let classifier = policies.injectionClassifiers["\(policy.name)/\(direction.rawValue)"], let action = policy.configuration(direction).injection?.action {
            let verdict = try await classifier.score(text)
            injection.reasons.append(verdict.reason)
            classifierReport = .object([
                "score": .double(verdict.score), "threshold": .double(classifier.threshold), "window": .int(verdict.window), "windows": .int(verdict.windows),
            ])
            if let f = classifier.finding(verdict, text: text, action: action) {
                outcome.findings.append(f)
                if action == .block && outcome.blockedBy == nil { outcome.blockedBy = f }
            }
        }
        if let topics = policies.topics["\(policy.name)/\(direction.rawValue)"], let hit = try await topics.match(text),
            let action = policy.configuration(direction).topics?.action
        {
            let f = GuardrailFinding(check: "topics", type: "DENIED_TOPIC", start: 0, end: text.unicodeScalars.count, score: hit.similarity, action: action)
            outcome.findings.append(f)
            if action == .block && outcome.blockedBy == nil { outcome.blockedBy = f }
        }
        let findings: [JSONValue] = outcome.findings.map { f in
            .object([
                "type": .string(f.type), "check": .string(f.check), "start": .int(f.start), "end": .int(f.end), "score": .double(f.score),
                "action": .string(f.action.rawValue),
            ])
        }
        let answer: JSONValue = .object([
            "policy": .string(policy.name),
            "direction": .string(direction.rawValue),
            "findings": .array(findings),
            "injection": .object([
                "score": .double(injection.score), "reasons": .array(injection.reasons.map { .string($0) }), "classifier": classifierReport ?? .null,
            ]),
            "blocked": .bool(outcome.blockedBy != nil),
            "blocked_by": outcome.blockedBy.map { .string($0.check) } ?? .null,
            "text": .string(outcome.blockedBy == nil ? outcome.text : ""),
        ])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(answer)))
    }
}
