import NIOCore
import SluiceCore
import SluiceGuardrails

/// Turns a record's captured messages and answer into the bodies the audit log keeps, per
/// `audit_log.log_bodies`: none, redacted (PII and secrets become placeholders) or full. Runs in
/// the audit-log writer, off the request path.
package struct AuditBodies: Sendable {
    package let mode: AuditLogConfig.BodyLogging
    private let redactor = BodyRedactor()

    package init(mode: AuditLogConfig.BodyLogging) { self.mode = mode }

    package func prepare(_ r: inout AuditRecord) {
        let captured = r.captured
        r.captured = nil
        switch mode {
        case .none:
            r.requestBody = nil
            r.responseBody = nil
        case .full, .redacted:
            guard let captured else { return }
            // Texts are redacted as sent, before they are written as JSON (the request) or joined
            // (the answer): scanning the JSON would miss values behind an escape and could break one.
            r.requestBody = Self.messagesJSON(mode == .redacted ? redactor.redact(captured.messages) : captured.messages)
            if let result = captured.result {
                r.responseBody = (try? result.answerText()).map { Self.answerText(mode == .redacted ? redactor.redact($0) : $0) }
            } else if let text = captured.streamText {
                r.responseBody = mode == .redacted ? redactor.redact(text) : text
            }
        }
    }

    // Sluice's own JSON writer and parser, not Foundation's coders: this runs for every request.

    /// The messages as a JSON array.
    package static func messagesJSON(_ messages: [ChatMessage]) -> String? {
        (try? ChatMessage.jsonArrayBytes(messages)).map { String(buffer: $0) }
    }

    /// An answer's text for the audit log: each choice's content, and its tool calls as name(arguments).
    package static func answerText(_ choices: [AnswerText]) -> String {
        choices.map { choice in
            var parts: [String] = []
            if let content = choice.content, !content.isEmpty { parts.append(content) }
            for call in choice.toolCalls { parts.append("\(call.name)(\(call.arguments))") }
            return parts.joined(separator: "\n")
        }.joined(separator: "\n---\n")
    }
}
