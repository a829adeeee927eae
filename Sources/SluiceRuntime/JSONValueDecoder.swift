import Synchronization

/// Decodes `Decodable` types from a parsed `JSONValue`, with the same `DecodingError`s (and
/// coding paths) as Foundation's `JSONDecoder`, so the types' `Codable` conformances stay the one
/// definition of the wire format. Used with `JSONParser` for request bodies; `StrictDecoder`
/// (in SluiceCore) runs the same decoder in its strict mode for `sluice.yaml`.
public enum JSONValueDecoder {
    /// Decodes a `T` from `value`.
    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try JSONTreeDecoder(value: value, path: .root, strict: nil).decode(type)
    }

    /// Decodes in strict mode (for config files): plain scalars read as strings, errors worded
    /// for a person editing the file, and the first key of `value` that no type read (a dotted
    /// path such as `server.bogus` or `models[0].nmae`) returned beside the value.
    public static func decodeStrictly<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> (value: T, unknownKey: String?) {
        let keys = StrictKeys()
        let decoded = try JSONTreeDecoder(value: value, path: .root, strict: keys).decode(type)
        return (decoded, keys.firstUnread(in: value, path: []))
    }

    /// A coding path as `a.b[2].c`.
    public static func dottedPath(_ codingPath: [any CodingKey]) -> String {
        var parts: [String] = []
        for key in codingPath {
            if let i = key.intValue {
                if let last = parts.popLast() { parts.append("\(last)[\(i)]") } else { parts.append("[\(i)]") }
            } else {
                parts.append(key.stringValue)
            }
        }
        return parts.joined(separator: ".")
    }
}

/// The strict mode's record of every key a type read (as dotted paths), so that a key nobody
/// read can be reported as unknown; the mode also reads plain scalars as strings (`version: 1`)
/// and words its errors for a config file.
final class StrictKeys: Sendable {
    private let keys = Mutex(Set<String>())

    func visit(_ path: DecodingPath) { visit(JSONValueDecoder.dottedPath(path.codingPath)) }
    func visit(_ dotted: String) { _ = keys.withLock { $0.insert(dotted) } }
    func contains(_ dotted: String) -> Bool { keys.withLock { $0.contains(dotted) } }

    /// A free-form value (`JSONValue`) accepts any keys below it.
    func visitAll(_ value: JSONValue, path: DecodingPath) {
        visitAll(value, dotted: JSONValueDecoder.dottedPath(path.codingPath))
    }

    /// The first key below `value` (in sorted order, depth first) that nobody read.
    func firstUnread(in value: JSONValue, path: [String]) -> String? {
        switch value {
        case .object(let members):
            for key in members.keys.sorted() {
                let child = path + [key]
                let dotted = child.joined(separator: ".")
                guard contains(dotted) else { return dotted }
                if let found = firstUnread(in: members[key]!, path: child) { return found }
            }
        case .array(let items):
            for (i, item) in items.enumerated() {
                var child = path
                if let last = child.popLast() { child.append("\(last)[\(i)]") } else { child.append("[\(i)]") }
                if let found = firstUnread(in: item, path: child) { return found }
            }
        default:
            break
        }
        return nil
    }

    private func visitAll(_ value: JSONValue, dotted: String) {
        switch value {
        case .object(let members):
            for (key, child) in members {
                let p = dotted.isEmpty ? key : "\(dotted).\(key)"
                visit(p)
                visitAll(child, dotted: p)
            }
        case .array(let items):
            for (i, item) in items.enumerated() { visitAll(item, dotted: "\(dotted)[\(i)]") }
        default: break
        }
    }
}

/// Lets `JSONValue(from:)` take the value as it is instead of probing each type.
protocol JSONValueDecoding {
    var jsonValue: JSONValue { get }
}

/// Where a value sits, as a linked list (an array per level would allocate on every step).
indirect enum DecodingPath {
    case root
    case key(String, DecodingPath)
    case index(Int, DecodingPath)

    var codingPath: [any CodingKey] {
        var keys: [any CodingKey] = []
        var node = self
        while true {
            switch node {
            case .root: return keys.reversed()
            case .key(let k, let parent):
                keys.append(AnyCodingKey(k))
                node = parent
            case .index(let i, let parent):
                keys.append(IndexKey(intValue: i))
                node = parent
            }
        }
    }

    func appending(_ key: String) -> DecodingPath { .key(key, self) }
}

/// An array position in a coding path.
private struct IndexKey: CodingKey {
    var stringValue: String { "Index \(intValue ?? 0)" }
    var intValue: Int?
    init(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

struct JSONTreeDecoder: Decoder, JSONValueDecoding {
    let value: JSONValue
    let path: DecodingPath
    /// Set in strict mode.
    let strict: StrictKeys?

    var jsonValue: JSONValue {
        strict?.visitAll(value, path: path)
        return value
    }
    var codingPath: [any CodingKey] { path.codingPath }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        // Fast paths for the leaves and for `JSONValue` itself; the rest through `init(from:)`.
        if type == JSONValue.self, let v = value as? T {
            strict?.visitAll(value, path: path)
            return v
        }
        return try T(from: self)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else {
            throw mismatch([String: JSONValue].self, strict == nil ? "an object" : "a mapping")
        }
        return KeyedDecodingContainer(JSONKeyedContainer<Key>(members: members, path: path, strict: strict))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let elements) = value else {
            throw mismatch([JSONValue].self, strict == nil ? "an array" : "a list")
        }
        return JSONUnkeyedContainer(elements: elements, path: path, strict: strict)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { JSONSingleValueContainer(value: value, path: path, strict: strict) }

    func mismatch(_ type: Any.Type, _ what: String) -> DecodingError {
        let message = strict == nil ? "Expected to decode \(what) but found \(value.typeName) instead." : "expected \(what), got \(value.typeName)"
        return DecodingError.typeMismatch(type, .init(codingPath: codingPath, debugDescription: message))
    }
}

/// The leaf conversions, shared by the three container kinds.
extension JSONValue {
    fileprivate func decodeBool(_ path: DecodingPath, _ strict: StrictKeys?) throws -> Bool {
        if case .bool(let b) = self { return b }
        throw leafError(Bool.self, path, strict, expected: "a boolean")
    }

    fileprivate func decodeString(_ path: DecodingPath, _ strict: StrictKeys?) throws -> String {
        switch self {
        case .string(let s): return s
        // A plain YAML scalar such as `version: 1` is still a fine string in a config file.
        case .int(let i) where strict != nil: return String(i)
        case .double(let d) where strict != nil: return String(d)
        case .bool(let b) where strict != nil: return String(b)
        default: throw leafError(String.self, path, strict, expected: "a string")
        }
    }

    fileprivate func decodeDouble(_ path: DecodingPath, _ strict: StrictKeys?) throws -> Double {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: throw leafError(Double.self, path, strict, expected: "a number")
        }
    }

    fileprivate func decodeInteger<I: FixedWidthInteger>(_ type: I.Type, _ path: DecodingPath, _ strict: StrictKeys?) throws -> I {
        switch self {
        case .int(let i):
            if let v = I(exactly: i) { return v }
        case .double(let d):
            if d.isFinite, d == d.rounded(), let v = I(exactly: d) { return v }
            if strict != nil, !(d.isFinite && d == d.rounded()) { throw leafError(I.self, path, strict, expected: "an integer") }
        default:
            throw leafError(I.self, path, strict, expected: "an integer")
        }
        // A whole number out of the type's range.
        if strict != nil { throw leafError(I.self, path, strict, expected: "an integer in \(I.min)...\(I.max)") }
        let shown: String = switch self {
        case .int(let i): String(i)
        case .double(let d): String(d)
        default: typeName
        }
        throw DecodingError.dataCorrupted(.init(codingPath: path.codingPath, debugDescription: "Number \(shown) does not fit in \(I.self)."))
    }

    fileprivate func leafError(_ type: Any.Type, _ path: DecodingPath, _ strict: StrictKeys?, expected: String) -> DecodingError {
        if strict != nil {
            let shown: String
            switch self {
            case .string(let s): shown = "string \"\(s)\""
            case .int(let i): shown = "number \(i)"
            case .double(let d): shown = "number \(d)"
            case .bool(let b): shown = "boolean \(b)"
            default: shown = typeName
            }
            return .typeMismatch(Any.self, .init(codingPath: path.codingPath, debugDescription: "expected \(expected), got \(shown)"))
        }
        if case .null = self {
            return .valueNotFound(type, .init(codingPath: path.codingPath, debugDescription: "Expected \(type) value but found null instead."))
        }
        return .typeMismatch(type, .init(codingPath: path.codingPath, debugDescription: "Expected to decode \(type) but found \(typeName) instead."))
    }

    fileprivate func decodeValue<T: Decodable>(_ type: T.Type, _ path: DecodingPath, _ strict: StrictKeys?) throws -> T {
        try JSONTreeDecoder(value: self, path: path, strict: strict).decode(type)
    }
}

private struct JSONKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let path: DecodingPath
    let strict: StrictKeys?

    var codingPath: [any CodingKey] { path.codingPath }
    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func member(_ key: Key) throws -> JSONValue {
        strict?.visit(at(key))
        guard let v = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "No value associated with key \(key.stringValue)."))
        }
        return v
    }

    /// The member, or nil when it is absent or null (`decodeIfPresent`'s rule).
    private func present(_ key: Key) -> JSONValue? {
        strict?.visit(at(key))
        guard let v = members[key.stringValue] else { return nil }
        if case .null = v { return nil }
        return v
    }

    private func at(_ key: Key) -> DecodingPath { path.appending(key.stringValue) }

    func decodeNil(forKey key: Key) throws -> Bool {
        if strict != nil, members[key.stringValue] == nil {
            // Strict mode reads an absent key as null (as the config's own decoder always did).
            strict?.visit(at(key))
            return true
        }
        if case .null = try member(key) { return true }
        return false
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try member(key).decodeBool(at(key), strict) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try member(key).decodeString(at(key), strict) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try member(key).decodeDouble(at(key), strict) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try member(key).decodeDouble(at(key), strict)) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try member(key).decodeInteger(Int.self, at(key), strict) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try member(key).decodeInteger(Int8.self, at(key), strict) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try member(key).decodeInteger(Int16.self, at(key), strict) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try member(key).decodeInteger(Int32.self, at(key), strict) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try member(key).decodeInteger(Int64.self, at(key), strict) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try member(key).decodeInteger(UInt.self, at(key), strict) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try member(key).decodeInteger(UInt8.self, at(key), strict) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try member(key).decodeInteger(UInt16.self, at(key), strict) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try member(key).decodeInteger(UInt32.self, at(key), strict) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try member(key).decodeInteger(UInt64.self, at(key), strict) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try member(key).decodeValue(type, at(key), strict) }

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try present(key)?.decodeBool(at(key), strict) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try present(key)?.decodeString(at(key), strict) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try present(key)?.decodeDouble(at(key), strict) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try present(key)?.decodeInteger(Int.self, at(key), strict) }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { try present(key)?.decodeValue(type, at(key), strict) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try JSONTreeDecoder(value: member(key), path: at(key), strict: strict).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try JSONTreeDecoder(value: member(key), path: at(key), strict: strict).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { JSONTreeDecoder(value: .object(members), path: path, strict: strict) }
    func superDecoder(forKey key: Key) throws -> any Decoder { JSONTreeDecoder(value: members[key.stringValue] ?? .null, path: at(key), strict: strict) }
}

private struct JSONUnkeyedContainer: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let path: DecodingPath
    let strict: StrictKeys?
    var currentIndex = 0

    init(elements: [JSONValue], path: DecodingPath, strict: StrictKeys?) {
        self.elements = elements
        self.path = path
        self.strict = strict
    }

    var codingPath: [any CodingKey] { path.codingPath }
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private mutating func next<T>(_ type: T.Type, _ body: (JSONValue, DecodingPath, StrictKeys?) throws -> T) throws -> T {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                type, .init(codingPath: path.codingPath + [IndexKey(intValue: currentIndex)], debugDescription: strict == nil ? "Unkeyed container is at end." : "list ended early"))
        }
        let value = try body(elements[currentIndex], .index(currentIndex, path), strict)
        currentIndex += 1
        return value
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { return false }
        if case .null = elements[currentIndex] {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(type) { try $0.decodeBool($1, $2) } }
    mutating func decode(_ type: String.Type) throws -> String { try next(type) { try $0.decodeString($1, $2) } }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(type) { try $0.decodeDouble($1, $2) } }
    mutating func decode(_ type: Int.Type) throws -> Int { try next(type) { try $0.decodeInteger(Int.self, $1, $2) } }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next(type) { try $0.decodeValue(type, $1, $2) } }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(type) { try $0.decodeInteger(Int8.self, $1, $2) } }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(type) { try $0.decodeInteger(Int16.self, $1, $2) } }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(type) { try $0.decodeInteger(Int32.self, $1, $2) } }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(type) { try $0.decodeInteger(Int64.self, $1, $2) } }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next(type) { try $0.decodeInteger(UInt.self, $1, $2) } }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(type) { try $0.decodeInteger(UInt8.self, $1, $2) } }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(type) { try $0.decodeInteger(UInt16.self, $1, $2) } }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(type) { try $0.decodeInteger(UInt32.self, $1, $2) } }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(type) { try $0.decodeInteger(UInt64.self, $1, $2) } }
    mutating func decode(_ type: Float.Type) throws -> Float { Float(try next(Double.self) { try $0.decodeDouble($1, $2) }) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next(KeyedDecodingContainer<NestedKey>.self) { try JSONTreeDecoder(value: $0, path: $1, strict: $2).container(keyedBy: type) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next((any UnkeyedDecodingContainer).self) { try JSONTreeDecoder(value: $0, path: $1, strict: $2).unkeyedContainer() }
    }

    mutating func superDecoder() throws -> any Decoder {
        try next((any Decoder).self) { JSONTreeDecoder(value: $0, path: $1, strict: $2) }
    }
}

private struct JSONSingleValueContainer: SingleValueDecodingContainer {
    let value: JSONValue
    let path: DecodingPath
    let strict: StrictKeys?

    var codingPath: [any CodingKey] { path.codingPath }

    func decodeNil() -> Bool {
        if case .null = value { return true }
        return false
    }

    func decode(_ type: Bool.Type) throws -> Bool { try value.decodeBool(path, strict) }
    func decode(_ type: String.Type) throws -> String { try value.decodeString(path, strict) }
    func decode(_ type: Double.Type) throws -> Double { try value.decodeDouble(path, strict) }
    func decode(_ type: Float.Type) throws -> Float { Float(try value.decodeDouble(path, strict)) }
    func decode(_ type: Int.Type) throws -> Int { try value.decodeInteger(Int.self, path, strict) }
    func decode(_ type: Int64.Type) throws -> Int64 { try value.decodeInteger(Int64.self, path, strict) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try value.decodeInteger(UInt64.self, path, strict) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try value.decodeValue(type, path, strict) }
    func decode(_ type: Int8.Type) throws -> Int8 { try value.decodeInteger(Int8.self, path, strict) }
    func decode(_ type: Int16.Type) throws -> Int16 { try value.decodeInteger(Int16.self, path, strict) }
    func decode(_ type: Int32.Type) throws -> Int32 { try value.decodeInteger(Int32.self, path, strict) }
    func decode(_ type: UInt.Type) throws -> UInt { try value.decodeInteger(UInt.self, path, strict) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try value.decodeInteger(UInt8.self, path, strict) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try value.decodeInteger(UInt16.self, path, strict) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try value.decodeInteger(UInt32.self, path, strict) }
}
