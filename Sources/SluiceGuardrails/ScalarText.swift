/// Text as an array of Unicode code points, so that offsets are the integers Python uses
/// (`text[start:end]`) and detectors scan with plain indexing instead of `String.Index`.
public struct ScalarText: Sendable, Hashable {
    /// The code points.
    public let scalars: [UInt32]

    public init(_ text: String) {
        var out: [UInt32] = []
        out.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars { out.append(s.value) }
        scalars = out
    }

    init(unchecked scalars: [UInt32]) { self.scalars = scalars }

    /// The number of code points.
    public var count: Int { scalars.count }

    /// The text between two code-point offsets. Written straight into the string (a word fits
    /// in a small string, which takes no allocation at all); the detectors slice every word.
    public func slice(_ start: Int, _ end: Int) -> String {
        let a = max(0, start)
        let b = min(end, scalars.count)
        guard a < b else { return "" }
        var length = 0
        for v in scalars[a..<b] { length += Self.utf8Length(v) }
        return String(unsafeUninitializedCapacity: length) { out in
            var i = 0
            for v in scalars[a..<b] {
                switch Self.utf8Length(v) {
                case 0:
                    continue
                case 1:
                    out[i] = UInt8(v)
                case 2:
                    out[i] = UInt8(0xC0 | v >> 6)
                    out[i + 1] = UInt8(0x80 | v & 0x3F)
                case 3:
                    out[i] = UInt8(0xE0 | v >> 12)
                    out[i + 1] = UInt8(0x80 | v >> 6 & 0x3F)
                    out[i + 2] = UInt8(0x80 | v & 0x3F)
                default:
                    out[i] = UInt8(0xF0 | v >> 18)
                    out[i + 1] = UInt8(0x80 | v >> 12 & 0x3F)
                    out[i + 2] = UInt8(0x80 | v >> 6 & 0x3F)
                    out[i + 3] = UInt8(0x80 | v & 0x3F)
                }
                i += Self.utf8Length(v)
            }
            return i
        }
    }

    /// 0 for what is not a Unicode scalar (a surrogate, or past U+10FFFF), which is left out,
    /// as `appendUTF8` leaves it out.
    @inline(__always) static func utf8Length(_ v: UInt32) -> Int {
        if v < 0x80 { return 1 }
        if v < 0x800 { return 2 }
        if v < 0x10000 { return v >= 0xD800 && v <= 0xDFFF ? 0 : 3 }
        return v <= 0x10FFFF ? 4 : 0
    }

    /// The same text with every JSON escape sequence (`\n`, `\"`, `\u00e9`) blanked to spaces of
    /// its own length, for scanning JSON text such as tool-call arguments. Offsets stay those of
    /// the JSON, so findings rewrite it directly; a detector sees an escaped line break as a
    /// break, not as a letter `n` joined to the next word, and no finding starts or ends inside an
    /// escape, so a rewrite never leaves a lone backslash behind.
    func blankingJSONEscapes() -> ScalarText {
        guard scalars.contains(92) else { return self }
        var out = scalars
        var i = 0
        while i < out.count {
            guard out[i] == 92 else {
                i += 1
                continue
            }
            var length = min(2, out.count - i)
            if i + 1 < out.count, out[i + 1] == 117, i + 6 <= out.count, (i + 2..<i + 6).allSatisfy({ Scalar.isHex(out[$0]) }) {
                length = 6
            }
            for k in i..<(i + length) { out[k] = 32 }
            i += length
        }
        return ScalarText(unchecked: out)
    }

    /// Appends the UTF-8 of the code points between two offsets (far cheaper than growing a
    /// `String.UnicodeScalarView` one scalar at a time).
    func appendUTF8(_ start: Int, _ end: Int, to out: inout [UInt8]) {
        let a = max(0, start)
        let b = min(end, scalars.count)
        guard a < b else { return }
        // Grown by `append`'s doubling: reserving exactly this much on every call would copy the
        // whole buffer once per segment once a rewrite outgrows its first reservation.
        for v in scalars[a..<b] {
            if v < 0x80 {
                out.append(UInt8(v))
            } else if let u = Unicode.Scalar(v) {
                out.append(contentsOf: UTF8.encode(u)!)
            }
        }
    }

    @inline(__always) public subscript(i: Int) -> UInt32 { i >= 0 && i < scalars.count ? scalars[i] : 0 }

    /// Whether the ASCII letters from `i` spell `word`, ignoring case.
    func matches(_ word: String, at i: Int) -> Bool {
        var j = i
        for u in word.utf8 {
            guard j < scalars.count, Scalar.lower(scalars[j]) == UInt32(u) else { return false }
            j += 1
        }
        return true
    }

    /// Whether the code points from `i` are `cue`'s (lower-case), ASCII letters in either case.
    func matches(_ cue: [UInt32], at i: Int) -> Bool {
        guard i >= 0, i + cue.count <= scalars.count else { return false }
        for k in cue.indices where Scalar.lower(scalars[i + k]) != cue[k] { return false }
        return true
    }

    /// Whether one of `cues` (lower-case ASCII) occurs, ignoring case, in the code points from `from` to `to`.
    func containsCue(_ cues: [[UInt32]], from: Int, to: Int) -> Bool {
        let a = max(0, from)
        let b = min(to, scalars.count)
        guard a < b else { return false }
        for cue in cues where cue.count <= b - a {
            var i = a
            while i + cue.count <= b {
                if Scalar.lower(scalars[i]) == cue[0] {
                    var k = 1
                    while k < cue.count && Scalar.lower(scalars[i + k]) == cue[k] { k += 1 }
                    if k == cue.count { return true }
                }
                i += 1
            }
        }
        return false
    }

    /// Lower-cased text of the `window` code points before `i` (for context cues).
    func lowercasedContext(before i: Int, window: Int) -> String {
        var s = String.UnicodeScalarView()
        for v in scalars[max(0, i - window)..<max(0, min(i, scalars.count))] { if let u = Unicode.Scalar(Scalar.lower(v)) { s.append(u) } }
        return String(s)
    }
}

/// Character classes over code points (ASCII fast paths, Unicode properties beyond).
enum Scalar {
    @inline(__always) static func isDigit(_ c: UInt32) -> Bool { c &- 48 < 10 }
    @inline(__always) static func isASCIILetter(_ c: UInt32) -> Bool { (c | 0x20) &- 97 < 26 }
    @inline(__always) static func isUpperASCII(_ c: UInt32) -> Bool { c &- 65 < 26 }
    @inline(__always) static func isASCIIAlnum(_ c: UInt32) -> Bool { isDigit(c) || isASCIILetter(c) }
    @inline(__always) static func isHex(_ c: UInt32) -> Bool { isDigit(c) || (c | 0x20) &- 97 < 6 }
    @inline(__always) static func lower(_ c: UInt32) -> UInt32 { isUpperASCII(c) ? c | 0x20 : c }

    /// Letters in any script.
    static func isLetter(_ c: UInt32) -> Bool {
        if c < 128 { return isASCIILetter(c) }
        return Unicode.Scalar(c)?.properties.isAlphabetic ?? false
    }

    /// Upper-case letters in any script.
    static func isUpper(_ c: UInt32) -> Bool {
        if c < 128 { return isUpperASCII(c) }
        return Unicode.Scalar(c)?.properties.isUppercase ?? false
    }

    static func isWordChar(_ c: UInt32) -> Bool { isDigit(c) || isLetter(c) || c == 95 }

    static func isSpace(_ c: UInt32) -> Bool {
        c == 32 || c == 9 || c == 10 || c == 13 || c == 0xA0 || c == 0x202F || c == 0x2009
    }
}
