/// Finds where a JSON document first goes wrong, for error messages (Foundation's decoder on
/// Linux does not say). Runs only after decoding has already failed.
public enum JSONSyntaxCheck {
    /// A syntax error: what was wrong, at which byte offset, line and column (1-based).
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var offset: Int
        public var line: Int
        public var column: Int
        public var description: String { "\(message) at line \(line), column \(column) (byte \(offset))" }
    }

    public static func firstProblem<C: Collection>(in bytes: C) -> Problem? where C.Element == UInt8 {
        Array(bytes).withUnsafeBytes { raw in
            var scanner = Scanner(bytes: raw)
            return scanner.run()
        }
    }

    /// A cursor over JSON bytes that validates what it skips. Also the base of readers that pick
    /// a few fields out of a document without decoding all of it (`CompletionSummaryReader`).
    package struct Scanner {
        package let bytes: UnsafeRawBufferPointer
        package var i = 0

        package init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        package mutating func run() -> Problem? {
            do throws(Problem) {
                skipSpace()
                try value(depth: 0)
                skipSpace()
                if i < bytes.count { throw fail("unexpected content after the JSON value") }
                return nil
            } catch let problem as Problem {
                return problem
            } catch {
                return nil
            }
        }

        package func fail(_ message: String) -> Problem {
            var line = 1
            var column = 1
            for b in bytes[..<min(i, bytes.count)] {
                if b == 0x0a {
                    line += 1
                    column = 1
                } else if b & 0xC0 != 0x80 {
                    column += 1
                }
            }
            let what = i < bytes.count ? "'\(String(decoding: [bytes[i]], as: UTF8.self))'" : "end of input"
            return Problem(message: "\(message) (found \(what))", offset: i, line: line, column: column)
        }

        package mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[i]) { i += 1 }
        }

        package mutating func expect(_ literal: String) throws(Problem) {
            for b in literal.utf8 {
                guard i < bytes.count, bytes[i] == b else { throw fail("invalid literal, expected '\(literal)'") }
                i += 1
            }
        }

        package mutating func value(depth: Int) throws(Problem) {
            guard depth < 512 else { throw fail("nesting is too deep") }
            guard i < bytes.count else { throw fail("expected a value") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return }
                while true {
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                    try string()
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
                    i += 1
                    skipSpace()
                    try value(depth: depth + 1)
                    skipSpace()
                    guard i < bytes.count else { throw fail("unterminated object") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return }
                    throw fail("expected ',' or '}' in an object")
                }
            case UInt8(ascii: "["):
                i += 1
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return }
                while true {
                    skipSpace()
                    try value(depth: depth + 1)
                    skipSpace()
                    guard i < bytes.count else { throw fail("unterminated array") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return }
                    throw fail("expected ',' or ']' in an array")
                }
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "t"): try expect("true")
            case UInt8(ascii: "f"): try expect("false")
            case UInt8(ascii: "n"): try expect("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw fail("expected a value")
            }
        }

        package mutating func string() throws(Problem) {
            i += 1
            while i < bytes.count {
                let b = bytes[i]
                if b == UInt8(ascii: "\"") { i += 1; return }
                if b < 0x20 { throw fail("control character in a string") }
                if b == UInt8(ascii: "\\") {
                    i += 1
                    guard i < bytes.count else { break }
                    if bytes[i] == UInt8(ascii: "u") {
                        for _ in 0..<4 {
                            i += 1
                            guard i < bytes.count, (bytes[i] >= 0x30 && bytes[i] <= 0x39) || ((bytes[i] | 0x20) >= 0x61 && (bytes[i] | 0x20) <= 0x66) else {
                                throw fail("invalid \\u escape")
                            }
                        }
                    } else if !"\"\\/bfnrt".utf8.contains(bytes[i]) {
                        throw fail("invalid escape")
                    }
                }
                i += 1
            }
            throw fail("unterminated string")
        }

        package mutating func number() throws(Problem) {
            let start = i
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            func digits(_ s: inout Scanner) -> Int {
                let from = s.i
                while s.i < s.bytes.count, s.bytes[s.i] >= 0x30, s.bytes[s.i] <= 0x39 { s.i += 1 }
                return s.i - from
            }
            guard digits(&self) > 0 else { throw fail("invalid number") }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                guard digits(&self) > 0 else { throw fail("invalid number") }
            }
            if i < bytes.count, bytes[i] | 0x20 == UInt8(ascii: "e") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits(&self) > 0 else { throw fail("invalid number") }
            }
            _ = start
        }
    }
}

extension JSONSyntaxCheck.Problem: Error {}
