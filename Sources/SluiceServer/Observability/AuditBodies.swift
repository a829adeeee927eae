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
        let messages = r.requestMessages
        r.requestMessages = nil
        switch mode {
        case .none:
            r.requestBody = nil
            r.responseBody = nil
        case .full, .redacted:
            if let messages, let encoded = try? JSONCoding.encode(messages) { r.requestBody = String(buffer: encoded) }
            if mode == .redacted {
                r.requestBody = r.requestBody.map(redactor.redact)
                r.responseBody = r.responseBody.map(redactor.redact)
            }
        }
        return r
    }
}
