import NIOCore

/// One server-sent event: its `event:` name if any and its `data:` payload (lines joined by `\n`).
public struct SSEEvent: Sendable, Hashable {
    public var event: String?
    public var data: ByteBuffer
}

/// Splits a byte stream into server-sent events, however the bytes were chunked on the wire.
/// Accepts `\n` and `\r\n` line endings, comments, and multi-line `data:`.
public struct SSEParser: Sendable {
    private var buffer = ByteBuffer()
    private var event: String?
    private var data: ByteBuffer?

    public init() {}

    private static let empty = ByteBuffer()

    /// Adds bytes as they arrived.
    public mutating func append(_ bytes: ByteBuffer) {
        if buffer.readableBytes == 0 {
            buffer = bytes
        } else {
            var bytes = bytes
            buffer.writeBuffer(&bytes)
        }
    }

    /// The next complete event, or nil when more bytes are needed.
    public mutating func next() -> SSEEvent? {
        while let line = readLine() {
            if line.readableBytes == 0 {
                // A blank line dispatches the event, if it carried data.
                if let data {
                    let out = SSEEvent(event: event, data: data)
                    self.data = nil
                    self.event = nil
                    return out
                }
                event = nil
                continue
            }
            process(line)
        }
        return nil
    }

    /// The event left when the stream ended without a final blank line.
    public mutating func finish() -> SSEEvent? {
        if buffer.readableBytes > 0 {
            let line = buffer.readSlice(length: buffer.readableBytes)!
            process(line)
        }
        guard let data else { return nil }
        self.data = nil
        return SSEEvent(event: event, data: data)
    }

    private mutating func readLine() -> ByteBuffer? {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            // Let go of the network read's storage: a held stream would otherwise keep its last
            // read buffer, and the channel would allocate a new one for every read.
            if buffer.readableBytes == 0 { buffer = Self.empty }
            return nil
        }
        let length = newline - buffer.readerIndex
        var line = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytesView.last == UInt8(ascii: "\r") {
            line = line.getSlice(at: line.readerIndex, length: line.readableBytes - 1)!
        }
        return line
    }

    private mutating func process(_ line: ByteBuffer) {
        let view = line.readableBytesView
        if view.first == UInt8(ascii: ":") { return }  // comment
        let colon = view.firstIndex(of: UInt8(ascii: ":"))
        let fieldEnd = colon ?? view.endIndex
        let field = String(decoding: view[view.startIndex..<fieldEnd], as: UTF8.self)
        var valueStart = colon.map { $0 + 1 } ?? view.endIndex
        if valueStart < view.endIndex, view[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let value = line.getSlice(at: valueStart, length: view.endIndex - valueStart)!
        switch field {
        case "data":
            if var existing = data {
                existing.writeInteger(UInt8(ascii: "\n"))
                var value = value
                existing.writeBuffer(&value)
                data = existing
            } else {
                data = value
            }
        case "event":
            event = String(buffer: value)
        default:
            break  // id, retry: not used by model APIs
        }
    }
}

/// Server-sent events read from an async sequence of byte buffers (an HTTP response body).
public struct SSEEventSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    public typealias Element = SSEEvent
    let base: Base

    public init(_ base: Base) { self.base = base }

    public func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator()) }

    public struct Iterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var parser = SSEParser()
        var ended = false

        public mutating func next() async throws -> SSEEvent? {
            while true {
                if let event = parser.next() { return event }
                if ended { return nil }
                if let bytes = try await base.next(isolation: #isolation) {
                    parser.append(bytes)
                } else {
                    ended = true
                    return parser.finish()
                }
            }
        }
    }
}
