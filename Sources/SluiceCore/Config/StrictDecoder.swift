import Synchronization

/// Decodes a `JSONValue` tree into `Decodable` types, strictly: every key of every mapping must
/// be read by the type it decodes into, and a type mismatch names the key path. This is how an
/// unknown key in `sluice.yaml` becomes an error that says where it is.
public enum StrictDecoder {
    public static func decode<T: Decodable>(_ type: T.Type, from tree: JSONValue) throws -> T {
        let visits = VisitLog()
        let decoder = TreeDecoder(value: tree, codingPath: [], visits: visits)
        let value: T
        do {
            value = try T(from: decoder)
        } catch let error as DecodingError {
            throw ConfigError(decoding: error)
        }
        if let unknown = firstUnknownKey(in: tree, path: [], visits: visits) {
            throw ConfigError(path: unknown, "unknown key")
        }
        return value
    }

    static func firstUnknownKey(in value: JSONValue, path: [String], visits: VisitLog) -> String? {
        switch value {
        case .object(let members):
            for key in members.keys.sorted() {
                let child = path + [key]
                let dotted = dottedPath(child)
                guard visits.contains(dotted) else { return dotted }
                if let found = firstUnknownKey(in: members[key]!, path: child, visits: visits) { return found }
            }
        case .array(let items):
            for (i, item) in items.enumerated() {
                var child = path
                if let last = child.popLast() { child.append("\(last)[\(i)]") } else { child.append("[\(i)]") }
                if let found = firstUnknownKey(in: item, path: child, visits: visits) { return found }
            }
        default:
            break
        }
        return nil
    }

    static func dottedPath(_ parts: [String]) -> String { parts.joined(separator: ".") }

    static func dottedPath(_ codingPath: [any CodingKey]) -> String {
        var parts: [String] = []
        for key in codingPath {
            if let i = key.intValue {
                if let last = parts.popLast() { parts.append("\(last)[\(i)]") } else { parts.append("[\(i)]") }
            } else {
                parts.append(key.stringValue)
            }
        }
        return dottedPath(parts)
    }
}

extension ConfigError {
    init(decoding error: DecodingError) {
        switch error {
        case .keyNotFound(let key, let ctx):
            self.init(path: StrictDecoder.dottedPath(ctx.codingPath + [key]), "required key is missing")
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx), .dataCorrupted(let ctx):
            self.init(path: StrictDecoder.dottedPath(ctx.codingPath), ctx.debugDescription)
        @unknown default:
            self.init(path: "", "\(error)")
        }
    }
}

final class VisitLog: Sendable {
    private let keys = Mutex(Set<String>())
    func insert(_ path: String) { _ = keys.withLock { $0.insert(path) } }
    func contains(_ path: String) -> Bool { keys.withLock { $0.contains(path) } }
}

struct TreeDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    let visits: VisitLog
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else {
            throw DecodingError.typeMismatch(
                [String: JSONValue].self, .init(codingPath: codingPath, debugDescription: "expected a mapping, got \(value.typeName)"))
        }
        return KeyedDecodingContainer(KeyedContainer<Key>(members: members, codingPath: codingPath, visits: visits))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else {
            throw DecodingError.typeMismatch(
                [JSONValue].self, .init(codingPath: codingPath, debugDescription: "expected a list, got \(value.typeName)"))
        }
        return UnkeyedContainer(items: items, codingPath: codingPath, visits: visits)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleContainer(value: value, codingPath: codingPath, visits: visits)
    }
}

struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [any CodingKey]
    let visits: VisitLog

    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func child(_ key: Key) throws -> TreeDecoder {
        let path = codingPath + [key]
        visits.insert(StrictDecoder.dottedPath(path))
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "required key is missing"))
        }
        return TreeDecoder(value: value, codingPath: path, visits: visits)
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        visits.insert(StrictDecoder.dottedPath(codingPath + [key]))
        if case .null = members[key.stringValue] ?? .null { return true }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try T(from: child(key))
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        visits.insert(StrictDecoder.dottedPath(codingPath + [key]))
        guard let value = members[key.stringValue], value != .null else { return nil }
        return try T(from: TreeDecoder(value: value, codingPath: codingPath + [key], visits: visits))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try child(key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { TreeDecoder(value: .object(members), codingPath: codingPath, visits: visits) }
    func superDecoder(forKey key: Key) throws -> any Decoder { try child(key) }
}

struct UnkeyedContainer: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [any CodingKey]
    let visits: VisitLog
    var currentIndex = 0

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func nextDecoder() throws -> TreeDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(JSONValue.self, .init(codingPath: codingPath, debugDescription: "list ended early"))
        }
        defer { currentIndex += 1 }
        return TreeDecoder(value: items[currentIndex], codingPath: codingPath + [AnyCodingKey(intValue: currentIndex)!], visits: visits)
    }

    mutating func decodeNil() throws -> Bool {
        if !isAtEnd, items[currentIndex] == .null {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: nextDecoder()) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try nextDecoder().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try nextDecoder().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try nextDecoder() }
}

struct SingleContainer: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]
    let visits: VisitLog

    func decodeNil() -> Bool { value == .null }

    private func mismatch(_ expected: String) -> DecodingError {
        let shown: String
        switch value {
        case .string(let s): shown = "string \"\(s)\""
        case .int(let i): shown = "number \(i)"
        case .double(let d): shown = "number \(d)"
        case .bool(let b): shown = "boolean \(b)"
        default: shown = value.typeName
        }
        return DecodingError.typeMismatch(Any.self, .init(codingPath: codingPath, debugDescription: "expected \(expected), got \(shown)"))
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let b) = value else { throw mismatch("a boolean") }
        return b
    }

    func decode(_ type: String.Type) throws -> String {
        switch value {
        case .string(let s): return s
        // A plain YAML scalar such as `version: 1` is still a fine string.
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return String(b)
        default: throw mismatch("a string")
        }
    }

    func decode(_ type: Double.Type) throws -> Double {
        switch value {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: throw mismatch("a number")
        }
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

    func decode(_ type: Int.Type) throws -> Int {
        switch value {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9e15: return Int(d)
        default: throw mismatch("an integer")
        }
    }

    func decode(_ type: Int8.Type) throws -> Int8 { try narrow(decode(Int.self)) }
    func decode(_ type: Int16.Type) throws -> Int16 { try narrow(decode(Int.self)) }
    func decode(_ type: Int32.Type) throws -> Int32 { try narrow(decode(Int.self)) }
    func decode(_ type: Int64.Type) throws -> Int64 { Int64(try decode(Int.self)) }
    func decode(_ type: UInt.Type) throws -> UInt { try narrow(decode(Int.self)) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try narrow(decode(Int.self)) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try narrow(decode(Int.self)) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try narrow(decode(Int.self)) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try narrow(decode(Int.self)) }

    private func narrow<T: FixedWidthInteger>(_ i: Int) throws -> T {
        guard let v = T(exactly: i) else { throw mismatch("an integer in \(T.min)...\(T.max)") }
        return v
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if type == JSONValue.self {
            markAll(value, path: StrictDecoder.dottedPath(codingPath))
            return value as! T
        }
        return try T(from: TreeDecoder(value: value, codingPath: codingPath, visits: visits))
    }

    // A free-form value (`JSONValue`) accepts any keys below it.
    private func markAll(_ value: JSONValue, path: String) {
        switch value {
        case .object(let members):
            for (key, child) in members {
                let p = path.isEmpty ? key : "\(path).\(key)"
                visits.insert(p)
                markAll(child, path: p)
            }
        case .array(let items):
            for (i, item) in items.enumerated() { markAll(item, path: "\(path)[\(i)]") }
        default: break
        }
    }
}
