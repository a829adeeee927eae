/// Decodes a `JSONValue` tree into `Decodable` types, strictly: every key of every mapping must
/// be read by the type it decodes into, and a type mismatch names the key path. This is how an
/// unknown key in `sluice.yaml` becomes an error that says where it is. It is the request
/// bodies' decoder (`JSONValueDecoder`) in its strict mode.
public enum StrictDecoder {
    public static func decode<T: Decodable>(_ type: T.Type, from tree: JSONValue) throws -> T {
        let decoded: (value: T, unknownKey: String?)
        do {
            decoded = try JSONValueDecoder.decodeStrictly(type, from: tree)
        } catch let error as DecodingError {
            throw ConfigError(decoding: error)
        }
        if let unknown = decoded.unknownKey { throw ConfigError(path: unknown, "unknown key") }
        return decoded.value
    }
}

extension ConfigError {
    init(decoding error: DecodingError) {
        switch error {
        case .keyNotFound(let key, let ctx):
            self.init(path: JSONValueDecoder.dottedPath(ctx.codingPath + [key]), "required key is missing")
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx), .dataCorrupted(let ctx):
            self.init(path: JSONValueDecoder.dottedPath(ctx.codingPath), ctx.debugDescription)
        @unknown default:
            self.init(path: "", "\(error)")
        }
    }
}

