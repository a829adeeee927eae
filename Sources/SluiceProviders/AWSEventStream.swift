import NIOCore
import SluiceCore

/// One message of AWS's `application/vnd.amazon.eventstream` framing (ConverseStream's body):
/// its string headers (`:event-type`, `:message-type`, `:exception-type`) and its payload.
public struct AWSEventStreamMessage: Sendable, Hashable {
    public var headers: [String: String]
    public var payload: ByteBuffer
}

/// Splits AWS event-stream bytes into messages as they arrive: a 12-byte prelude (total length,
/// headers length, CRC32 of the two), the headers, the payload, and a CRC32 of everything before
/// it. Both checksums are verified; a frame that fails one is a bad response, never guessed at.
public struct AWSEventStreamDecoder: Sendable {
    var buffer = ByteBuffer()
    /// The largest message accepted (AWS caps event-stream messages at 16 MiB).
    static let maxMessageBytes = 16 << 20

    public init() {}

    public mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        buffer.writeBuffer(&bytes)
    }

    /// Whether bytes of an unfinished message are left (at the end of the body, a cut-off stream).
    public var hasPartialMessage: Bool { buffer.readableBytes > 0 }

    /// The next whole message, nil until one has arrived.
    public mutating func next() throws -> AWSEventStreamMessage? {
        guard buffer.readableBytes >= 12,
            let total = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
            let headersLength = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self),
            let preludeCRC = buffer.getInteger(at: buffer.readerIndex + 8, as: UInt32.self)
        else { return nil }
        let start = buffer.readerIndex
        guard CRC32.checksum(buffer.readableBytesView.prefix(8)) == preludeCRC else {
            throw SluiceError(.upstreamBadResponse, "An event-stream message's prelude checksum does not match")
        }
        guard total >= 16, Int(total) <= Self.maxMessageBytes, Int(headersLength) <= Int(total) - 16 else {
            throw SluiceError(.upstreamBadResponse, "An event-stream message declares impossible lengths (\(total), \(headersLength))")
        }
        guard buffer.readableBytes >= Int(total) else { return nil }
        let messageCRC = buffer.getInteger(at: start + Int(total) - 4, as: UInt32.self)
        guard CRC32.checksum(buffer.readableBytesView.prefix(Int(total) - 4)) == messageCRC else {
            throw SluiceError(.upstreamBadResponse, "An event-stream message's checksum does not match")
        }
        guard let headerBytes = buffer.getSlice(at: start + 12, length: Int(headersLength)),
            let payload = buffer.getSlice(at: start + 12 + Int(headersLength), length: Int(total) - Int(headersLength) - 16)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: Int(total))
        buffer.discardReadBytes()
        return AWSEventStreamMessage(headers: try Self.headers(headerBytes), payload: payload)
    }

    /// The headers with string values; values of other types are read past.
    static func headers(_ bytes: ByteBuffer) throws -> [String: String] {
        var bytes = bytes
        var out: [String: String] = [:]
        func bad() -> SluiceError { SluiceError(.upstreamBadResponse, "An event-stream message has malformed headers") }
        while bytes.readableBytes > 0 {
            guard let nameLength = bytes.readInteger(as: UInt8.self), let name = bytes.readString(length: Int(nameLength)),
                let type = bytes.readInteger(as: UInt8.self)
            else { throw bad() }
            switch type {
            case 0, 1: break  // true, false
            case 2: guard bytes.readInteger(as: UInt8.self) != nil else { throw bad() }
            case 3: guard bytes.readInteger(as: UInt16.self) != nil else { throw bad() }
            case 4: guard bytes.readInteger(as: UInt32.self) != nil else { throw bad() }
            case 5, 8: guard bytes.readInteger(as: UInt64.self) != nil else { throw bad() }
            case 6, 7:
                guard let length = bytes.readInteger(as: UInt16.self), let value = bytes.readSlice(length: Int(length)) else { throw bad() }
                if type == 7 { out[name] = String(buffer: value) }
            case 9: guard bytes.readSlice(length: 16) != nil else { throw bad() }
            default: throw bad()
            }
        }
        return out
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it).
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
