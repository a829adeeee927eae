import SluiceCore
import SluiceGuardrails

/// Turns a record's captured messages and answer into the bodies the audit log keeps, per
/// `audit_log.log_bodies`: none, redacted (PII and secrets become placeholders) or full. Runs in
/// the audit-log writer, off the request path.
struct AuditBodies: Sendable {
    let mode: AuditLogConfig.BodyLogging
    private let redactor = BodyRedactor()

    init(mode: AuditLogConfig.BodyLogging) { self.mode = mode }

    func prepare(_ record: RequestRecord) -> RequestRecord {
        var r = record
        let captured = r.captured
        r.captured = nil
        switch mode {
        case .none:
            r.requestBody = nil
            r.responseBody = nil
        case .full, .redacted:
            guard let captured else { return r }
            if let encoded = try? JSONCoding.encode(captured.messages) { r.requestBody = String(buffer: encoded) }
            if let result = captured.result, let completion = try? result.completion() {
                r.responseBody = Self.answerText(completion)
            } else if !captured.events.isEmpty {
                // A stream: the first choice's text.
                r.responseBody = captured.events.compactMap { try? $0.chunk().choices.first?.delta.content }.joined()
            }
            if mode == .redacted {
                r.requestBody = r.requestBody.map(redactor.redact)
                r.responseBody = r.responseBody.map(redactor.redact)
            }
        }
        return r
    }

    /// An answer's text for the audit log: each choice's content, and its tool calls as name(arguments).
    static func answerText(_ c: ChatCompletion) -> String {
        c.choices.map { choice in
            var parts: [String] = []
            if let content = choice.message.content, !content.isEmpty { parts.append(content) }
            for call in choice.message.toolCalls ?? [] { parts.append("\(call.function.name)(\(call.function.arguments))") }
            return parts.joined(separator: "\n")
        }.joined(separator: "\n---\n")
    }
}
