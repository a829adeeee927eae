/// Decodes a `JSONValue` tree into `Decodable` types, strictly: every key of every mapping must
/// be read by the type it decodes into, and a type mismatch names the key path. This is how an
/// unknown key in `sluice.yaml` becomes an error that says where it is. It is the request
/// bodies' decoder (`JSONValueDecoder`) in its strict mode.
public enum StrictDecoder {
    public static func decode<T: Decodable>(_ type: T.Type, from tree: JSONValue) throws -> T {
        let visits = StrictKeys()
        let value: T
        do {
            value = try JSONTreeDecoder(value: tree, path: .root, strict: visits).decode(type)
        } catch let error as DecodingError {
            throw ConfigError(decoding: error)
        }
        if let unknown = firstUnknownKey(in: tree, path: [], visits: visits) {
            throw ConfigError(path: unknown, "unknown key")
        }
        return value
    }

    static func firstUnknownKey(in value: JSONValue, path: [String], visits: StrictKeys) -> String? {
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

