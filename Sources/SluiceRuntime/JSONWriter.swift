import NIOCore

/// JSON text for `JSONValue`s, formatted as Foundation's `JSONEncoder` formats them.
public enum JSONWriter {
    /// A number JSON cannot express (not-a-number, an infinity).
    public struct NotFinite: Error {}

    /// Appends `value`'s JSON text (object keys sorted).
    public static func write(_ value: JSONValue, to out: inout ByteBuffer) throws {
        switch value {
        case .null: out.writeStaticString("null")
        case .bool(let b): b ? out.writeStaticString("true") : out.writeStaticString("false")
        case .int(let i): out.writeString(String(i))
        case .double(let d): try writeDouble(d, to: &out)
        case .string(let s): writeString(s, to: &out)
        case .array(let a):
            out.writeInteger(UInt8(ascii: "["))
            for (i, e) in a.enumerated() {
                if i > 0 { out.writeInteger(UInt8(ascii: ",")) }
                try write(e, to: &out)
            }
            out.writeInteger(UInt8(ascii: "]"))
        case .object(let o):
            out.writeInteger(UInt8(ascii: "{"))
            var first = true
            for (k, v) in o.sorted(by: { $0.key < $1.key }) {
                if !first { out.writeInteger(UInt8(ascii: ",")) }
                first = false
                writeString(k, to: &out)
                out.writeInteger(UInt8(ascii: ":"))
                try write(v, to: &out)
            }
            out.writeInteger(UInt8(ascii: "}"))
        }
    }

    /// Shortest round-trip digits, without a trailing `.0` (`1`, `0.7`, `1e+20`), as Foundation.
    /// Not-a-number and infinities are not JSON.
    package static func writeDouble(_ d: Double, to out: inout ByteBuffer) throws {
        guard d.isFinite else { throw JSONWriter.NotFinite() }
        var text = d.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        out.writeString(text)
    }

    /// A string literal: `"` and `\` escaped, control characters as `\n`-style or `\u00xx`.
    package static func writeString(_ s: String, to out: inout ByteBuffer) {
        out.writeInteger(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { bytes in
            var plain = 0
            for i in 0..<bytes.count {
                let c = bytes[i]
                guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else { continue }
                out.writeBytes(UnsafeBufferPointer(rebasing: bytes[plain..<i]))
                plain = i + 1
                switch c {
                case UInt8(ascii: "\""): out.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): out.writeStaticString("\\\\")
                case 0x0a: out.writeStaticString("\\n")
                case 0x0d: out.writeStaticString("\\r")
                case 0x09: out.writeStaticString("\\t")
                case 0x08: out.writeStaticString("\\b")
                case 0x0c: out.writeStaticString("\\f")
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    out.writeStaticString("\\u00")
                    out.writeInteger(hex[Int(c >> 4)])
                    out.writeInteger(hex[Int(c & 0xf)])
                }
            }
            out.writeBytes(UnsafeBufferPointer(rebasing: bytes[plain..<bytes.count]))
        }
        out.writeInteger(UInt8(ascii: "\""))
    }
}
