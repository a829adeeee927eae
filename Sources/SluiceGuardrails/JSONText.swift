import SluiceCore

/// Text that is itself JSON — a tool's result, a structured answer, tool-call arguments — as the
/// checks read it. Escapes hide what they stand for from detectors that read words (`\n` before
/// a phone number, `\u0069gnore` for "ignore"), so span checks read the text with its escapes
/// blanked (`ScalarText.blankingJSONEscapes`) and the injection checks read its strings.
enum JSONText {
    /// JSON's white space: space, tab, line feed, carriage return.
    static let whitespace: [UInt8] = [32, 9, 10, 13]

    /// Whether a text whose first character other than white space is `c` may be a JSON object
    /// or array (all that the first piece of a stream can tell).
    static func opens(with c: UInt32) -> Bool { c == 123 || c == 91 }  // `{`, `[`

    private static func opensAsJSON(_ text: String) -> Bool {
        guard let first = text.utf8.first(where: { !whitespace.contains($0) }) else { return false }
        return opens(with: UInt32(first))
    }

    /// Whether `text` is a JSON object or array: it opens with `{` or `[` and parses.
    static func isJSON(_ text: String) -> Bool {
        opensAsJSON(text) && JSONSyntaxCheck.firstProblem(in: text.utf8) == nil
    }

    /// The text as the word-reading checks see it: a JSON object or array with its escapes
    /// blanked to spaces of their own length (offsets unchanged), any other text as it is.
    static func scannable(_ text: String) -> String {
        guard isJSON(text), text.utf8.contains(92) else { return text }
        let blanked = ScalarText(text).blankingJSONEscapes()
        return blanked.slice(0, blanked.count)
    }

    /// The keys and string values of a JSON object or array, escapes decoded, one per line
    /// (members in key order); nil when `text` is not one.
    static func strings(_ text: String) -> String? {
        guard opensAsJSON(text) else { return nil }
        var text = text
        guard let value = text.withUTF8({ JSONParser.parse(UnsafeRawBufferPointer($0)) }) else { return nil }
        var lines: [String] = []
        collect(value, into: &lines)
        return lines.joined(separator: "\n")
    }

    private static func collect(_ value: JSONValue, into lines: inout [String]) {
        switch value {
        case .string(let s):
            lines.append(s)
        case .array(let items):
            for item in items { collect(item, into: &lines) }
        case .object(let members):
            for key in members.keys.sorted() {
                lines.append(key)
                collect(members[key]!, into: &lines)
            }
        case .null, .bool, .int, .double:
            break
        }
    }
}
