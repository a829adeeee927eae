import Foundation
import NIOCore

/// The one JSON configuration Sluice uses (encoders and decoders are made once, not per request).
public enum JSONCoding {
    /// Shared encoder; configured once and never changed after, so safe to share.
    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// Shared decoder.
    public static let decoder = JSONDecoder()

    /// Encodes a value into a new buffer.
    public static func encode<T: Encodable>(_ value: T) throws -> ByteBuffer {
        ByteBuffer(bytes: try encoder.encode(value))
    }

    /// Decodes a value from a buffer's readable bytes.
    public static func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T {
        try decoder.decode(type, from: Data(buffer.readableBytesView))
    }
}
