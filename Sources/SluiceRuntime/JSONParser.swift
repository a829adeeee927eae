import NIOCore

/// A strict, allocation-light JSON parser from bytes to `JSONValue`, for request bodies.
///
/// It answers `nil` for anything it does not accept with certainty — a syntax error, invalid
/// UTF-8, a duplicate key, nesting deeper than `maxDepth` — and the caller then takes the
/// Foundation path, which produces the detailed error. So this parser decides nothing about bad
/// input; it only makes good input cheap (Foundation's `JSONDecoder` was about 8% of a proxied
/// request's CPU).
public enum JSONParser {
    /// Nesting deeper than this is left to the slow path (which refuses it without recursing).
    public static let maxDepth = 256

    /// The value in `buffer`'s readable bytes, or nil (see the type's comment).
    public static func parse(_ buffer: ByteBuffer) -> JSONValue? {
        buffer.withUnsafeReadableBytes { parse($0) }
    }

    /// The value in `bytes`, or nil (see the type's comment).
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> JSONValue? {
        var reader = Reader(bytes: bytes)
        guard let value = reader.value(depth: 0) else { return nil }
        reader.skipWhitespace()
        // Not a ternary: `JSONValue` is `ExpressibleByNilLiteral`, so `nil` there would be `.null`.
        guard reader.index == bytes.count else { return nil }
        return value
    }

    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        @inline(__always) func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0a, 0x0d: index += 1
                default: return
                }
            }
        }

        mutating func value(depth: Int) -> JSONValue? {
            skipWhitespace()
            guard let c = peek() else { return nil }
            switch c {
            case UInt8(ascii: "{"): return depth < JSONParser.maxDepth ? object(depth: depth + 1) : nil
            case UInt8(ascii: "["): return depth < JSONParser.maxDepth ? array(depth: depth + 1) : nil
            case UInt8(ascii: "\""): return string().map(JSONValue.string)
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default: return number()
            }
        }

        mutating func literal(_ word: StaticString, _ value: JSONValue) -> JSONValue? {
            let n = word.utf8CodeUnitCount
            guard index + n <= bytes.count else { return nil }
            for i in 0..<n where bytes[index + i] != word.utf8Start[i] { return nil }
            index += n
            return value
        }

        mutating func object(depth: Int) -> JSONValue? {
            index += 1  // {
            var members: [String: JSONValue] = [:]
            skipWhitespace()
            if peek() == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\""), let key = string() else { return nil }
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { return nil }
                index += 1
                guard let value = value(depth: depth) else { return nil }
                // A duplicate key: which one wins is the slow path's call.
                guard members.updateValue(value, forKey: key) == nil else { return nil }
                skipWhitespace()
                switch peek() {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "}"):
                    index += 1
                    return .object(members)
                default: return nil
                }
            }
        }

        mutating func array(depth: Int) -> JSONValue? {
            index += 1  // [
            var elements: [JSONValue] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "]") {
                index += 1
                return .array(elements)
            }
            while true {
                guard let value = value(depth: depth) else { return nil }
                elements.append(value)
                skipWhitespace()
                switch peek() {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "]"):
                    index += 1
                    return .array(elements)
                default: return nil
                }
            }
        }

        /// A string literal starting at the opening quote.
        mutating func string() -> String? {
            index += 1  // "
            let start = index
            // The common case: no escapes, so the bytes are the string.
            var ascii = true
            while index < bytes.count {
                let c = bytes[index]
                if c == UInt8(ascii: "\"") {
                    let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                    index += 1
                    // ASCII needs no validation; `String(validating:as:)` is generic over the
                    // sequence and not specialised, which costs metadata look-ups per string.
                    if ascii {
                        return String(unsafeUninitializedCapacity: raw.count) { buffer in
                            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw)
                            return raw.count
                        }
                    }
                    return String(validating: raw, as: UTF8.self)
                }
                if c == UInt8(ascii: "\\") { break }
                if c < 0x20 { return nil }
                if c >= 0x80 { ascii = false }
                index += 1
            }
            guard index < bytes.count else { return nil }
            var out: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
            while index < bytes.count {
                let c = bytes[index]
                switch c {
                case UInt8(ascii: "\""):
                    index += 1
                    return String(validating: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    index += 1
                    guard let e = peek() else { return nil }
                    index += 1
                    switch e {
                    case UInt8(ascii: "\""): out.append(0x22)
                    case UInt8(ascii: "\\"): out.append(0x5c)
                    case UInt8(ascii: "/"): out.append(0x2f)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0c)
                    case UInt8(ascii: "n"): out.append(0x0a)
                    case UInt8(ascii: "r"): out.append(0x0d)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var scalar = hex4() else { return nil }
                        if (0xD800...0xDBFF).contains(scalar) {
                            // A high surrogate must be followed by an escaped low one.
                            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                            else { return nil }
                            index += 2
                            guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(scalar) {
                            return nil
                        }
                        guard let s = Unicode.Scalar(scalar) else { return nil }
                        guard let encoded = UTF8.encode(s) else { return nil }
                        out.append(contentsOf: encoded)
                    default: return nil
                    }
                default:
                    if c < 0x20 { return nil }
                    out.append(c)
                    index += 1
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[index]
                let d: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
                default: return nil
                }
                v = v << 4 | d
                index += 1
            }
            return v
        }

        /// A number per JSON's grammar: integers that fit `Int` as `.int`, the rest as `.double`.
        mutating func number() -> JSONValue? {
            let start = index
            var negative = false
            if peek() == UInt8(ascii: "-") {
                negative = true
                index += 1
            }
            guard let first = peek(), first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { return nil }
            var magnitude: UInt64 = 0
            var overflow = false
            if first == UInt8(ascii: "0") {
                index += 1
            } else {
                while let c = peek(), c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                    let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
                    let (m2, o2) = m1.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
                    overflow = overflow || o1 || o2
                    magnitude = m2
                    index += 1
                }
            }
            var integral = true
            if peek() == UInt8(ascii: ".") {
                integral = false
                index += 1
                guard digits() else { return nil }
            }
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                integral = false
                index += 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
                guard digits() else { return nil }
            }
            if integral && !overflow {
                if negative {
                    if magnitude <= UInt64(Int.max) + 1 { return .int(magnitude == UInt64(Int.max) + 1 ? Int.min : -Int(magnitude)) }
                } else if magnitude <= UInt64(Int.max) {
                    return .int(Int(magnitude))
                }
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            guard let d = Double(text), d.isFinite else { return nil }
            return .double(d)
        }

        /// One or more digits.
        mutating func digits() -> Bool {
            let start = index
            while let c = peek(), c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") { index += 1 }
            return index > start
        }
    }
}
