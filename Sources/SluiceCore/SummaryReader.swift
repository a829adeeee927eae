import NIOCore

/// Reads what accounting needs from a forwarded completion or stream chunk straight from its
/// bytes, validating the JSON it skips, without decoding the rest: usage, finish reason, and
/// for chunks how much output they carry. A full `JSONDecoder` pass cost ~4% of a proxied
/// request, and ~20% of a stream (it ran for every token).
///
/// Returns nil for anything it does not read with certainty (escaped keys, non-integer token
/// counts, unexpected shapes); the caller then decodes with `JSONDecoder` as before.
enum SummaryReader {
    /// A whole completion's accounting fields.
    struct Summary: Equatable {
        var usage: Usage?
        var finishReason: String?
    }

    static func completion(_ buffer: ByteBuffer) -> Summary? {
        buffer.withUnsafeReadableBytes { raw in
            var reader = Reader(scanner: JSONSyntaxCheck.Scanner(bytes: raw))
            return reader.completion()
        }
    }

    static func chunk(_ buffer: ByteBuffer) -> ChunkSummary? {
        buffer.withUnsafeReadableBytes { raw in
            var reader = Reader(scanner: JSONSyntaxCheck.Scanner(bytes: raw))
            return reader.chunk()
        }
    }

    /// Every choice's text and tool calls, from a whole completion's bytes.
    static func answer(_ buffer: ByteBuffer) -> [AnswerText]? {
        buffer.withUnsafeReadableBytes { raw in
            var reader = Reader(scanner: JSONSyntaxCheck.Scanner(bytes: raw))
            return reader.answer()
        }
    }

    /// The first choice's `delta.content` in a chunk's bytes: `.some(nil)` when it has none.
    static func firstDeltaContent(_ buffer: ByteBuffer) -> String?? {
        buffer.withUnsafeReadableBytes { raw in
            var reader = Reader(scanner: JSONSyntaxCheck.Scanner(bytes: raw))
            return reader.firstDeltaContent()
        }
    }

    struct Reader {
        var scanner: JSONSyntaxCheck.Scanner

        private var bytes: UnsafeRawBufferPointer { scanner.bytes }
        private var atEnd: Bool { scanner.i >= bytes.count }
        private var peek: UInt8 { bytes[scanner.i] }

        /// Consumes `byte` (after whitespace) or fails.
        private mutating func take(_ byte: UInt8) -> Bool {
            scanner.skipSpace()
            guard !atEnd, peek == byte else { return false }
            scanner.i += 1
            return true
        }

        /// The bytes of a string without escapes, or nil.
        private mutating func plainString() -> UnsafeRawBufferPointer? {
            scanner.skipSpace()
            guard !atEnd, peek == UInt8(ascii: "\"") else { return nil }
            let start = scanner.i + 1
            var j = start
            while j < bytes.count {
                let b = bytes[j]
                if b == UInt8(ascii: "\"") {
                    scanner.i = j + 1
                    return UnsafeRawBufferPointer(rebasing: bytes[start..<j])
                }
                if b == UInt8(ascii: "\\") || b < 0x20 { return nil }
                j += 1
            }
            return nil
        }

        private mutating func skipValue() -> Bool {
            scanner.skipSpace()
            do throws(JSONSyntaxCheck.Problem) {
                try scanner.value(depth: 1)
                return true
            } catch {
                return false
            }
        }

        private mutating func null() -> Bool {
            scanner.skipSpace()
            guard bytes.count - scanner.i >= 4, bytes[scanner.i] == UInt8(ascii: "n") else { return false }
            return skipValue()
        }

        /// Iterates an object's members; `member` reads the value of each key and returns false to give up.
        private mutating func object(_ member: (inout Reader, UnsafeRawBufferPointer) -> Bool) -> Bool {
            guard take(UInt8(ascii: "{")) else { return false }
            if take(UInt8(ascii: "}")) { return true }
            while true {
                guard let key = plainString(), take(UInt8(ascii: ":")) else { return false }
                guard member(&self, key) else { return false }
                if take(UInt8(ascii: ",")) { continue }
                return take(UInt8(ascii: "}"))
            }
        }

        /// The length in bytes of a string value as written (escapes included), validated.
        private mutating func stringLength() -> Int? {
            scanner.skipSpace()
            guard !atEnd, peek == UInt8(ascii: "\"") else { return nil }
            let start = scanner.i
            do throws(JSONSyntaxCheck.Problem) {
                try scanner.string()
            } catch {
                return nil
            }
            return scanner.i - start - 2
        }

        /// A string value, unescaped; nil if it is not a valid string.
        private mutating func text() -> String? {
            scanner.skipSpace()
            guard !atEnd, peek == UInt8(ascii: "\"") else { return nil }
            let start = scanner.i
            if let plain = plainString() { return String(decoding: plain, as: UTF8.self) }
            // Escapes: validated by the scanner, unescaped by the parser (one string, no containers).
            scanner.i = start
            do throws(JSONSyntaxCheck.Problem) {
                try scanner.string()
            } catch {
                return nil
            }
            return JSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[start..<scanner.i]))?.stringValue
        }

        /// A string or null (`.some(nil)`); nil for anything else.
        private mutating func optionalText() -> String?? {
            if null() { return .some(nil) }
            guard let value = text() else { return nil }
            return .some(value)
        }

        /// Each element of an array, read by `element`, which returns false to give up.
        private mutating func array(_ element: (inout Reader) -> Bool) -> Bool {
            guard take(UInt8(ascii: "[")) else { return false }
            if take(UInt8(ascii: "]")) { return true }
            while true {
                guard element(&self) else { return false }
                if take(UInt8(ascii: ",")) { continue }
                return take(UInt8(ascii: "]"))
            }
        }

        mutating func answer() -> [AnswerText]? {
            var choices: [AnswerText]?
            let ok = object { reader, key in
                guard key.elementsEqual("choices".utf8) else { return reader.skipValue() }
                var read: [AnswerText] = []
                guard reader.array({ reader in
                    var choice = AnswerText()
                    let ok = reader.object { reader, key in
                        guard key.elementsEqual("message".utf8) else { return reader.skipValue() }
                        return reader.message(into: &choice)
                    }
                    read.append(choice)
                    return ok
                }) else { return false }
                choices = read
                return true
            }
            scanner.skipSpace()
            guard ok, atEnd else { return nil }
            return choices
        }

        private mutating func message(into choice: inout AnswerText) -> Bool {
            object { reader, key in
                if key.elementsEqual("content".utf8) {
                    guard let content = reader.optionalText() else { return false }
                    choice.content = content
                    return true
                }
                guard key.elementsEqual("tool_calls".utf8) else { return reader.skipValue() }
                if reader.null() { return true }
                return reader.array { reader in
                    var call = AnswerText.ToolCall(name: "", arguments: "")
                    let ok = reader.object { reader, key in
                        guard key.elementsEqual("function".utf8) else { return reader.skipValue() }
                        return reader.object { reader, key in
                            let isName = key.elementsEqual("name".utf8)
                            guard isName || key.elementsEqual("arguments".utf8) else { return reader.skipValue() }
                            guard let value = reader.optionalText() else { return false }
                            if isName { call.name = value ?? "" } else { call.arguments = value ?? "" }
                            return true
                        }
                    }
                    choice.toolCalls.append(call)
                    return ok
                }
            }
        }

        mutating func firstDeltaContent() -> String?? {
            var content: String?
            let ok = object { reader, key in
                guard key.elementsEqual("choices".utf8) else { return reader.skipValue() }
                var first = true
                return reader.array { reader in
                    defer { first = false }
                    guard first else { return reader.skipValue() }
                    return reader.object { reader, key in
                        guard key.elementsEqual("delta".utf8) else { return reader.skipValue() }
                        return reader.object { reader, key in
                            guard key.elementsEqual("content".utf8) else { return reader.skipValue() }
                            guard let value = reader.optionalText() else { return false }
                            content = value
                            return true
                        }
                    }
                }
            }
            scanner.skipSpace()
            guard ok, atEnd else { return nil }
            return .some(content)
        }

        private mutating func integer() -> Int? {
            scanner.skipSpace()
            var value = 0
            var digits = 0
            while !atEnd, peek >= UInt8(ascii: "0"), peek <= UInt8(ascii: "9"), digits < 15 {
                value = value * 10 + Int(peek - UInt8(ascii: "0"))
                scanner.i += 1
                digits += 1
            }
            guard digits > 0 else { return nil }
            if !atEnd {
                // A fraction, an exponent or an absurd length: not read with certainty.
                let next = peek
                if next == UInt8(ascii: ".") || next == UInt8(ascii: "e") || next == UInt8(ascii: "E") { return nil }
                if next >= UInt8(ascii: "0") && next <= UInt8(ascii: "9") { return nil }
            }
            return value
        }

        /// A `usage` member's value: null leaves `usage` nil; an object sets it; anything else fails.
        private mutating func optionalUsage(into usage: inout Usage?) -> Bool {
            if null() { return true }
            guard let read = self.usage() else { return false }
            usage = read
            return true
        }

        mutating func completion() -> Summary? {
            var summary = Summary()
            var sawChoices = false
            let ok = object { reader, key in
                if key.elementsEqual("usage".utf8) { return reader.optionalUsage(into: &summary.usage) }
                if key.elementsEqual("choices".utf8) {
                    sawChoices = true
                    guard let finish = reader.firstFinishReason() else { return false }
                    summary.finishReason = finish
                    return true
                }
                return reader.skipValue()
            }
            scanner.skipSpace()
            guard ok, sawChoices, atEnd else { return nil }
            return summary
        }

        mutating func chunk() -> ChunkSummary? {
            var summary = ChunkSummary()
            var sawChoices = false
            let ok = object { reader, key in
                if key.elementsEqual("usage".utf8) { return reader.optionalUsage(into: &summary.usage) }
                if key.elementsEqual("choices".utf8) {
                    sawChoices = true
                    return reader.chunkChoices(into: &summary)
                }
                return reader.skipValue()
            }
            scanner.skipSpace()
            guard ok, sawChoices, atEnd else { return nil }
            return summary
        }

        private mutating func chunkChoices(into summary: inout ChunkSummary) -> Bool {
            guard take(UInt8(ascii: "[")) else { return false }
            if take(UInt8(ascii: "]")) { return true }
            while true {
                summary.choiceCount += 1
                let ok = object { reader, key in
                    if key.elementsEqual("finish_reason".utf8) {
                        if reader.null() { return true }
                        guard let raw = reader.plainString() else { return false }
                        summary.finishReason = String(decoding: raw, as: UTF8.self)
                        return true
                    }
                    if key.elementsEqual("delta".utf8) {
                        return reader.delta(into: &summary)
                    }
                    return reader.skipValue()
                }
                guard ok else { return false }
                if take(UInt8(ascii: ",")) { continue }
                return take(UInt8(ascii: "]"))
            }
        }

        private mutating func delta(into summary: inout ChunkSummary) -> Bool {
            object { reader, key in
                if key.elementsEqual("content".utf8) {
                    if reader.null() { return true }
                    guard let n = reader.stringLength() else { return false }
                    summary.outputBytes += n
                    return true
                }
                if key.elementsEqual("tool_calls".utf8) {
                    if reader.null() { return true }
                    return reader.toolCalls(into: &summary)
                }
                return reader.skipValue()
            }
        }

        private mutating func toolCalls(into summary: inout ChunkSummary) -> Bool {
            guard take(UInt8(ascii: "[")) else { return false }
            if take(UInt8(ascii: "]")) { return true }
            while true {
                let ok = object { reader, key in
                    guard key.elementsEqual("function".utf8) else { return reader.skipValue() }
                    return reader.object { reader, key in
                        guard key.elementsEqual("name".utf8) || key.elementsEqual("arguments".utf8) else { return reader.skipValue() }
                        if reader.null() { return true }
                        guard let n = reader.stringLength() else { return false }
                        summary.outputBytes += n
                        return true
                    }
                }
                guard ok else { return false }
                if take(UInt8(ascii: ",")) { continue }
                return take(UInt8(ascii: "]"))
            }
        }

        private mutating func usage() -> Usage? {
            var prompt: Int?
            var completion: Int?
            var total: Int?
            let ok = object { reader, key in
                if key.elementsEqual("prompt_tokens".utf8) {
                    prompt = reader.integer()
                    return prompt != nil
                }
                if key.elementsEqual("completion_tokens".utf8) {
                    completion = reader.integer()
                    return completion != nil
                }
                if key.elementsEqual("total_tokens".utf8) {
                    total = reader.integer()
                    return total != nil
                }
                return reader.skipValue()
            }
            guard ok else { return nil }
            var usage = Usage(promptTokens: prompt ?? 0, completionTokens: completion ?? 0)
            if let total { usage.totalTokens = total }
            return usage
        }

        /// The first choice's finish reason; `.some(nil)` when it is null or absent.
        private mutating func firstFinishReason() -> String?? {
            guard take(UInt8(ascii: "[")) else { return nil }
            if take(UInt8(ascii: "]")) { return .some(nil) }
            var finish: String?
            let ok = object { reader, key in
                if key.elementsEqual("finish_reason".utf8) {
                    if reader.null() { return true }
                    guard let raw = reader.plainString() else { return false }
                    finish = String(decoding: raw, as: UTF8.self)
                    return true
                }
                return reader.skipValue()
            }
            guard ok else { return nil }
            while take(UInt8(ascii: ",")) {
                guard skipValue() else { return nil }
            }
            guard take(UInt8(ascii: "]")) else { return nil }
            return .some(finish)
        }
    }
}
