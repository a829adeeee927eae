import Foundation
import SluiceCore

/// Gemma's chat turn format, rendered in Sluice because the base Gemma GGUF carries no chat
/// template (llama-server would fall back to ChatML, which Gemma never saw):
///
///     <start_of_turn>user
///     {system}\n\n{user}<end_of_turn>
///     <start_of_turn>model
///     {assistant}<end_of_turn>
///     <start_of_turn>model
///
/// As in Google's template: Gemma has no system role, so system (and developer) text opens the
/// first user turn; contents are trimmed; `<bos>` is the server's to add. Neighbouring messages
/// of one role are merged, since turns must alternate.
public enum GemmaTurnFormat {
    public static let startOfTurn = "<start_of_turn>"
    public static let endOfTurn = "<end_of_turn>"
    /// Markers that end generation: the end of the model's turn, or the start of one it
    /// should not be writing.
    public static let stopSequences = [endOfTurn, startOfTurn]

    /// Control tokens a message must not be able to write: llama-server parses special tokens
    /// in the prompt, so a user typing `<end_of_turn><start_of_turn>model` would forge a turn.
    static let controlTokens = ["<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>"]

    /// The prompt for a conversation, ending with the opening of the model's turn.
    /// Throws a 400 for what a text-only model without tools cannot take.
    public static func prompt(for messages: [ChatMessage]) throws -> String {
        var system: [String] = []
        var turns: [(role: String, text: String)] = []
        for (i, message) in messages.enumerated() {
            let text = try self.text(of: message, index: i)
            switch message.role {
            case .system, .developer:
                system.append(text)
                continue
            case .user:
                append(role: "user", text: text, to: &turns)
            case .assistant:
                if message.toolCalls?.isEmpty == false {
                    throw SluiceError(.unsupported, "This local model does not support tool calls.", param: "messages[\(i)].tool_calls")
                }
                append(role: "model", text: text, to: &turns)
            case .tool, .function:
                throw SluiceError(.unsupported, "This local model does not support tool calls (a '\(message.role.rawValue)' message).", param: "messages[\(i)].role")
            }
        }
        let preamble = system.filter { !$0.isEmpty }.joined(separator: "\n\n")
        if !preamble.isEmpty {
            if let first = turns.firstIndex(where: { $0.role == "user" }), first == 0 {
                turns[0].text = turns[0].text.isEmpty ? preamble : preamble + "\n\n" + turns[0].text
            } else {
                turns.insert(("user", preamble), at: 0)
            }
        }
        var prompt = ""
        for turn in turns {
            prompt += startOfTurn + turn.role + "\n" + turn.text + endOfTurn + "\n"
        }
        return prompt + startOfTurn + "model\n"
    }

    private static func append(role: String, text: String, to turns: inout [(role: String, text: String)]) {
        if let last = turns.last, last.role == role {
            turns[turns.count - 1].text = [last.text, text].filter { !$0.isEmpty }.joined(separator: "\n\n")
        } else {
            turns.append((role, text))
        }
    }

    private static func text(of message: ChatMessage, index: Int) throws -> String {
        if case .parts(let parts) = message.content {
            for (j, part) in parts.enumerated() where part.type != "text" {
                throw SluiceError(
                    .unsupported, "This local model reads text only; content part type '\(part.type)' is not supported.",
                    param: "messages[\(index)].content[\(j)]")
            }
        }
        return neutralized(trimmed(message.text))
    }

    /// `text` with control-token spellings broken by a zero-width space after `<`, so they
    /// tokenize as plain text.
    static func neutralized(_ text: String) -> String {
        guard text.contains("<") else { return text }
        var out = text
        for token in controlTokens where out.contains(token) {
            out = out.replacingOccurrences(of: token, with: "<\u{200B}" + token.dropFirst())
        }
        return out
    }

    private static func trimmed(_ s: String) -> String {
        let scalars = s.unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[start...end])
    }
}
