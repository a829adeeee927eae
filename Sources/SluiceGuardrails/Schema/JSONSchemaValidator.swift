import Foundation
import SluiceCore

/// Validates JSON values against a JSON Schema (the subset structured outputs use): `type`,
/// `properties`, `required`, `additionalProperties`, `enum`, `const`, `items`, `minItems`,
/// `maxItems`, `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `minLength`,
/// `maxLength`, `pattern`, `anyOf`, `oneOf`, `allOf`, `not`, and `$ref` into `$defs`/`definitions`.
public struct JSONSchemaValidator: Sendable {
    /// One violation: where (a JSON Pointer into the instance) and what.
    public struct Violation: Sendable, Hashable, CustomStringConvertible {
        public var path: String
        public var message: String
        public var description: String { "\(path.isEmpty ? "/" : path): \(message)" }
    }

    private let root: JSONValue
    private let patterns: [String: PatternBox]

    /// Compiles a schema; throws a 400-shaped error when the schema itself is unusable.
    public init(schema: JSONValue) throws {
        self.root = schema
        var patterns: [String: PatternBox] = [:]
        try Self.collectPatterns(schema, into: &patterns)
        self.patterns = patterns
    }

    /// The violations of `value` (empty when it is valid); at most `limit` are reported.
    public func validate(_ value: JSONValue, limit: Int = 20) -> [Violation] {
        var out: [Violation] = []
        check(value, against: root, path: "", into: &out, depth: 0)
        return Array(out.prefix(limit))
    }

    /// Parses `text` as JSON and validates it; a parse failure is one violation.
    public func validate(text: String) -> [Violation] {
        let trimmed = Self.stripCodeFence(text)
        let bytes = Array(trimmed.utf8)
        guard let value = bytes.withUnsafeBytes({ JSONParser.parse($0) }) else {
            return [Violation(path: "", message: "the answer is not valid JSON")]
        }
        return validate(value)
    }

    /// Models often wrap JSON in a Markdown code fence; the fence is not part of the answer.
    /// The text inside a Markdown code fence, when a model wrapped its JSON in one.
    public static func stripCodeFence(_ text: String) -> String {
        var t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard t.hasPrefix("```") else { return t }
        if let newline = t.firstIndex(of: "\n") { t = String(t[t.index(after: newline)...]) }
        if t.hasSuffix("```") { t = String(t.dropLast(3)) }
        return t
    }

    static func collectPatterns(_ schema: JSONValue, into patterns: inout [String: PatternBox]) throws {
        switch schema {
        case .object(let o):
            if let p = o["pattern"]?.stringValue, patterns[p] == nil {
                do {
                    patterns[p] = PatternBox(try NSRegularExpression(pattern: p))
                } catch {
                    throw SluiceError(.invalidValue, "The JSON Schema's pattern '\(p)' is not a valid regular expression.", param: "response_format")
                }
            }
            for v in o.values { try collectPatterns(v, into: &patterns) }
        case .array(let a):
            for v in a { try collectPatterns(v, into: &patterns) }
        default:
            break
        }
    }

    private func resolve(_ ref: String) -> JSONValue? {
        guard ref.hasPrefix("#") else { return nil }
        if ref == "#" { return root }
        var node = root
        for raw in ref.dropFirst(2).split(separator: "/") {
            let key = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            guard let next = node[key] else { return nil }
            node = next
        }
        return node
    }

    private func check(_ value: JSONValue, against schema: JSONValue, path: String, into out: inout [Violation], depth: Int) {
        guard depth < 64 else { return out.append(Violation(path: path, message: "schema nesting too deep")) }
        if case .bool(let allowed) = schema {
            if !allowed { out.append(Violation(path: path, message: "no value is allowed here")) }
            return
        }
        guard case .object(let s) = schema else { return }
        if let ref = s["$ref"]?.stringValue {
            guard let target = resolve(ref) else { return out.append(Violation(path: path, message: "unresolvable $ref \(ref)")) }
            check(value, against: target, path: path, into: &out, depth: depth + 1)
        }
        if let type = s["type"] {
            let allowed = type.stringValue.map { [$0] } ?? (type.arrayValue ?? []).compactMap(\.stringValue)
            if !allowed.isEmpty && !allowed.contains(where: { Self.has(value, type: $0) }) {
                out.append(Violation(path: path, message: "expected \(allowed.joined(separator: " or ")), got \(value.typeName)"))
                return
            }
        }
        if let options = s["enum"]?.arrayValue, !options.contains(where: { Self.equal($0, value) }) {
            out.append(Violation(path: path, message: "must be one of \(options.map(Self.render).joined(separator: ", "))"))
        }
        if let constant = s["const"], !Self.equal(constant, value) {
            out.append(Violation(path: path, message: "must be \(Self.render(constant))"))
        }
        switch value {
        case .object(let o): checkObject(o, s, path: path, into: &out, depth: depth)
        case .array(let a): checkArray(a, s, path: path, into: &out, depth: depth)
        case .string(let str): checkString(str, s, path: path, into: &out)
        case .int, .double: checkNumber(value.doubleValue!, s, path: path, into: &out)
        default: break
        }
        if let all = s["allOf"]?.arrayValue {
            for sub in all { check(value, against: sub, path: path, into: &out, depth: depth + 1) }
        }
        if let any = s["anyOf"]?.arrayValue {
            var best: [Violation]?
            for sub in any {
                var v: [Violation] = []
                check(value, against: sub, path: path, into: &v, depth: depth + 1)
                if v.isEmpty { best = nil; break }
                if best == nil || v.count < best!.count { best = v }
            }
            if let best { out.append(Violation(path: path, message: "matches none of anyOf (closest: \(best.first!.description))")) }
        }
        if let one = s["oneOf"]?.arrayValue {
            var matching = 0
            for sub in one {
                var v: [Violation] = []
                check(value, against: sub, path: path, into: &v, depth: depth + 1)
                if v.isEmpty { matching += 1 }
            }
            if matching != 1 { out.append(Violation(path: path, message: "must match exactly one of oneOf, matches \(matching)")) }
        }
        if let not = s["not"] {
            var v: [Violation] = []
            check(value, against: not, path: path, into: &v, depth: depth + 1)
            if v.isEmpty { out.append(Violation(path: path, message: "must not match the schema under 'not'")) }
        }
    }

    private func checkObject(_ o: [String: JSONValue], _ s: [String: JSONValue], path: String, into out: inout [Violation], depth: Int) {
        let properties = s["properties"]?.objectValue ?? [:]
        for name in (s["required"]?.arrayValue ?? []).compactMap(\.stringValue) where o[name] == nil {
            out.append(Violation(path: path, message: "missing required property '\(name)'"))
        }
        for (key, v) in o.sorted(by: { $0.key < $1.key }) {
            let child = path + "/" + key
            if let sub = properties[key] {
                check(v, against: sub, path: child, into: &out, depth: depth + 1)
            } else if let extra = s["additionalProperties"] {
                if case .bool(false) = extra {
                    out.append(Violation(path: path, message: "property '\(key)' is not allowed"))
                } else {
                    check(v, against: extra, path: child, into: &out, depth: depth + 1)
                }
            }
        }
        if let min = s["minProperties"]?.intValue, o.count < min { out.append(Violation(path: path, message: "needs at least \(min) properties")) }
        if let max = s["maxProperties"]?.intValue, o.count > max { out.append(Violation(path: path, message: "allows at most \(max) properties")) }
    }

    private func checkArray(_ a: [JSONValue], _ s: [String: JSONValue], path: String, into out: inout [Violation], depth: Int) {
        if let min = s["minItems"]?.intValue, a.count < min { out.append(Violation(path: path, message: "needs at least \(min) items, has \(a.count)")) }
        if let max = s["maxItems"]?.intValue, a.count > max { out.append(Violation(path: path, message: "allows at most \(max) items, has \(a.count)")) }
        let prefix = s["prefixItems"]?.arrayValue ?? []
        for (i, v) in a.enumerated() {
            if i < prefix.count {
                check(v, against: prefix[i], path: "\(path)/\(i)", into: &out, depth: depth + 1)
            } else if let items = s["items"] {
                check(v, against: items, path: "\(path)/\(i)", into: &out, depth: depth + 1)
            }
        }
        if case .bool(true) = s["uniqueItems"] ?? .null {
            for i in a.indices { for j in a.indices where j > i && Self.equal(a[i], a[j]) {
                out.append(Violation(path: path, message: "items \(i) and \(j) are equal but must be unique"))
            } }
        }
    }

    private func checkString(_ str: String, _ s: [String: JSONValue], path: String, into out: inout [Violation]) {
        let length = str.unicodeScalars.count
        if let min = s["minLength"]?.intValue, length < min { out.append(Violation(path: path, message: "must be at least \(min) characters, has \(length)")) }
        if let max = s["maxLength"]?.intValue, length > max { out.append(Violation(path: path, message: "must be at most \(max) characters, has \(length)")) }
        if let p = s["pattern"]?.stringValue, let regex = patterns[p]?.regex {
            let range = NSRange(str.startIndex..., in: str)
            if regex.firstMatch(in: str, range: range) == nil { out.append(Violation(path: path, message: "does not match pattern \(p)")) }
        }
    }

    private func checkNumber(_ n: Double, _ s: [String: JSONValue], path: String, into out: inout [Violation]) {
        if let min = s["minimum"]?.doubleValue, n < min { out.append(Violation(path: path, message: "must be ≥ \(Self.render(s["minimum"]!))")) }
        if let max = s["maximum"]?.doubleValue, n > max { out.append(Violation(path: path, message: "must be ≤ \(Self.render(s["maximum"]!))")) }
        if let min = s["exclusiveMinimum"]?.doubleValue, n <= min { out.append(Violation(path: path, message: "must be > \(Self.render(s["exclusiveMinimum"]!))")) }
        if let max = s["exclusiveMaximum"]?.doubleValue, n >= max { out.append(Violation(path: path, message: "must be < \(Self.render(s["exclusiveMaximum"]!))")) }
        if let m = s["multipleOf"]?.doubleValue, m > 0, (n / m).rounded() * m != n { out.append(Violation(path: path, message: "must be a multiple of \(Self.render(s["multipleOf"]!))")) }
    }

    static func has(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object): return true
        case ("number", .int), ("number", .double): return true
        case ("integer", .int): return true
        case ("integer", .double(let d)): return d.rounded() == d && d.isFinite
        default: return false
        }
    }

    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return a == b
    }

    static func render(_ v: JSONValue) -> String {
        (try? String(decoding: JSONEncoder().encode(v), as: UTF8.self)) ?? v.typeName
    }
}

/// NSRegularExpression is immutable and thread-safe once built.
struct PatternBox: @unchecked Sendable {
    let regex: NSRegularExpression
    init(_ regex: NSRegularExpression) { self.regex = regex }
}
