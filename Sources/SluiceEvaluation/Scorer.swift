import Foundation
import SluiceCore
import SluiceGuardrails

/// How an offline evaluation scores an answer. The deterministic ones score here; `similarity`
/// and `judge` need a model, which the runner asks.
public enum Scorer: Sendable, Hashable {
    /// 1 when the answer equals the reference (whitespace collapsed, case ignored; JSON compared as JSON).
    case exact
    case contains(String)
    case notContains(String)
    case regex(String)
    /// 1 when the answer is JSON valid against the flow's output schema.
    case jsonSchema
    /// The cosine similarity of the answer's and the reference's embeddings (by this embedding model).
    case similarity(String)
    /// The answer's length in characters.
    case length
    case latency
    case cost
    case judge(String)

    /// Parses `exact`, `contains:TEXT`, `not_contains:TEXT`, `regex:PATTERN`, `json_schema`,
    /// `similarity:MODEL`, `length`, `latency`, `cost`, `judge:NAME`.
    public init(parsing text: String) throws {
        let (head, tail) = text.firstIndex(of: ":").map { (String(text[..<$0]), String(text[text.index(after: $0)...])) } ?? (text, "")
        switch (head, tail.isEmpty) {
        case ("exact", true): self = .exact
        case ("contains", false): self = .contains(tail)
        case ("not_contains", false): self = .notContains(tail)
        case ("regex", false):
            guard (try? NSRegularExpression(pattern: tail)) != nil else { throw SluiceError(.invalidValue, "Scorer '\(text)': not a valid regular expression.") }
            self = .regex(tail)
        case ("json_schema", true): self = .jsonSchema
        case ("similarity", false): self = .similarity(tail)
        case ("length", true): self = .length
        case ("latency", true): self = .latency
        case ("cost", true): self = .cost
        case ("judge", false): self = .judge(tail)
        default:
            throw SluiceError(
                .invalidValue,
                "Unknown scorer '\(text)'; scorers are exact, contains:TEXT, not_contains:TEXT, regex:PATTERN, json_schema, similarity:MODEL, length, latency, cost, judge:NAME.")
        }
    }

    public var name: String {
        switch self {
        case .exact: "exact"
        case .contains(let t): "contains:\(t)"
        case .notContains(let t): "not_contains:\(t)"
        case .regex(let p): "regex:\(p)"
        case .jsonSchema: "json_schema"
        case .similarity(let m): "similarity:\(m)"
        case .length: "length"
        case .latency: "latency"
        case .cost: "cost"
        case .judge(let j): "judge:\(j)"
        }
    }

    /// Whether the score measures quality (higher is better), as opposed to size, speed or price.
    public var isQuality: Bool {
        switch self {
        case .length, .latency, .cost: false
        default: true
        }
    }

    /// The score of an answer, for the scorers that need no model (nil for the others).
    public func score(output: String, reference: String?, latencyMs: Double, costUSD: Double, schema: JSONValue?) -> Double? {
        switch self {
        case .exact:
            guard let reference else { return nil }
            return Self.equivalent(output, reference) ? 1 : 0
        case .contains(let t): return output.localizedCaseInsensitiveContains(t) ? 1 : 0
        case .notContains(let t): return output.localizedCaseInsensitiveContains(t) ? 0 : 1
        case .regex(let p):
            guard let re = try? NSRegularExpression(pattern: p) else { return 0 }
            return re.firstMatch(in: output, range: NSRange(output.startIndex..., in: output)) != nil ? 1 : 0
        case .jsonSchema:
            guard let schema, let validator = try? JSONSchemaValidator(schema: schema) else { return nil }
            let text = JSONSchemaValidator.stripCodeFence(output)
            guard let value = Array(text.utf8).withUnsafeBytes({ JSONParser.parse($0) }) else { return 0 }
            return validator.validate(value, limit: 1).isEmpty ? 1 : 0
        case .length: return Double(output.count)
        case .latency: return latencyMs
        case .cost: return costUSD
        case .similarity, .judge: return nil
        }
    }

    /// Equal as JSON when both parse, else as text with whitespace collapsed and case ignored.
    static func equivalent(_ a: String, _ b: String) -> Bool {
        let pa = Array(JSONSchemaValidator.stripCodeFence(a).utf8).withUnsafeBytes { JSONParser.parse($0) }
        let pb = Array(JSONSchemaValidator.stripCodeFence(b).utf8).withUnsafeBytes { JSONParser.parse($0) }
        if let pa, let pb, case .object = pa { return pa == pb }
        func normal(_ s: String) -> String { s.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        return normal(a) == normal(b)
    }
}
