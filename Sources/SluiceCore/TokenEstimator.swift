/// A fast estimate of token counts, for admission before the upstream reports real usage.
/// Roughly one token per four characters of English, with the per-message overhead of the
/// OpenAI chat format; it errs on the high side so reservations are not too small.
public enum TokenEstimator {
    /// Estimated tokens of a piece of text.
    public static func tokens(in text: String) -> Int {
        let utf8 = text.utf8.count
        guard utf8 > 0 else { return 0 }
        // Non-ASCII text (CJK, emoji) takes more tokens per character than the UTF-8 bytes / 4 rule
        // would suggest for ASCII; bytes / 3 bounds both reasonably.
        var ascii = 0
        for byte in text.utf8 where byte < 0x80 { ascii += 1 }
        let nonASCII = utf8 - ascii
        return max(1, (ascii + 3) / 4 + (nonASCII + 2) / 3)
    }

    /// Estimated prompt tokens of a chat request (messages, names and tool definitions).
    public static func promptTokens(of request: ChatCompletionRequest) -> Int {
        var total = 3
        for message in request.messages {
            total += 4 + tokens(in: message.text)
            if let name = message.name { total += tokens(in: name) }
            for call in message.toolCalls ?? [] {
                total += tokens(in: call.function.name) + tokens(in: call.function.arguments)
            }
        }
        for tool in request.tools ?? [] {
            total += 8 + tokens(in: tool.function.name) + tokens(in: tool.function.description ?? "")
            if let parameters = tool.function.parameters { total += tokens(in: "\(parameters)") / 2 }
        }
        return total
    }

    /// Tokens of an embeddings request's input: exact for pre-tokenized input, else estimated.
    public static func inputTokens(of request: EmbeddingsRequest) -> Int {
        switch request.input {
        case .tokens(let t): t.reduce(0) { $0 + $1.count }
        case .strings(let s): s.reduce(0) { $0 + tokens(in: $1) }
        }
    }
}
