import SluiceCore

/// Redacts PII and secrets in text kept for the audit log: every type the scanner knows becomes
/// a typed placeholder (`[EMAIL_1]`), numbered afresh for each body.
public struct BodyRedactor: Sendable {
    private let scanner = PIIScanner()
    /// Findings below this confidence are left alone (names after weak cues, for instance).
    public var minScore = 0.5

    public init() {}

    /// The text with every finding replaced by its placeholder.
    public func redact(_ text: String) -> String {
        redact(text, book: PlaceholderBook())
    }

    /// The messages with each of their texts redacted: content (a string or its text parts), a
    /// refusal, tool-call arguments (read as JSON) and a custom tool's input. Each text is scanned
    /// on its own, not inside the body's JSON, where an escape (`\n` before a phone number) would
    /// hide a value and a placeholder could split one. One numbering for all of them: the same
    /// value is the same placeholder wherever it occurs in the request.
    public func redact(_ messages: [ChatMessage]) -> [ChatMessage] {
        let book = PlaceholderBook()
        return messages.map { message in
            var message = message
            switch message.content {
            case .text(let text)?:
                message.content = .text(redact(text, book: book))
            case .parts(let parts)?:
                message.content = .parts(parts.map { redact($0, book: book) })
            case nil:
                break
            }
            message.refusal = message.refusal.map { redact($0, book: book) }
            if let arguments = message.functionCall?.arguments {
                message.functionCall?.arguments = redact(arguments, json: true, book: book)
            }
            message.toolCalls = message.toolCalls?.map { call in
                var call = call
                call.function.arguments = redact(call.function.arguments, json: call.custom == nil, book: book)
                if case .object(var custom)? = call.custom, case .string(let input)? = custom["input"] {
                    custom["input"] = .string(redact(input, book: book))
                    call.custom = .object(custom)
                }
                return call
            }
            return message
        }
    }

    /// An answer's texts, with one numbering: each choice's content, and its tool calls'
    /// arguments read as JSON.
    public func redact(_ choices: [AnswerText]) -> [AnswerText] {
        let book = PlaceholderBook()
        return choices.map { choice in
            var choice = choice
            choice.content = choice.content.map { redact($0, book: book) }
            choice.toolCalls = choice.toolCalls.map { call in
                var call = call
                call.arguments = redact(call.arguments, json: true, book: book)
                return call
            }
            return choice
        }
    }

    private func redact(_ part: ContentPart, book: PlaceholderBook) -> ContentPart {
        guard let text = part.text else { return part }
        return part.replacingText(redact(text, book: book))
    }

    /// JSON text (`json`, or a JSON object or array) is scanned with its escapes blanked, so that
    /// a value after `\n` is found and a placeholder never breaks an escape.
    private func redact(_ text: String, json: Bool = false, book: PlaceholderBook) -> String {
        guard !text.isEmpty else { return text }
        let scalars = ScalarText(text)
        let findings = scanner.scan(json || JSONText.isJSON(text) ? scalars.blankingJSONEscapes() : scalars).filter { $0.score >= minScore }.map {
            GuardrailFinding(check: "pii", type: $0.type.rawValue, start: $0.start, end: $0.end, score: $0.score, action: .redact)
        }
        guard !findings.isEmpty else { return text }
        return TextRewriter.rewrite(scalars, findings: findings, book: book)
    }
}
