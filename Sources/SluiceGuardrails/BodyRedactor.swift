import SluiceCore

/// Redacts PII and secrets in text kept for the audit log: every type the scanner knows becomes
/// a typed placeholder (`[EMAIL_1]`), numbered afresh for each text.
public struct BodyRedactor: Sendable {
    private let scanner = PIIScanner()
    /// Findings below this confidence are left alone (names after weak cues, for instance).
    public var minScore = 0.5

    public init() {}

    /// The text with every finding replaced by its placeholder.
    public func redact(_ text: String) -> String {
        guard !text.isEmpty else { return text }
        let scalars = ScalarText(text)
        let findings = scanner.scan(scalars).filter { $0.score >= minScore }.map {
            GuardrailFinding(check: "pii", type: $0.type.rawValue, start: $0.start, end: $0.end, score: $0.score, action: .redact)
        }
        guard !findings.isEmpty else { return text }
        return TextRewriter.rewrite(scalars, findings: findings, book: PlaceholderBook())
    }
}
