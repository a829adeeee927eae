import NIOCore
import SluiceClientAPIs
import SluiceCore
import SluiceObservability

/// Frames server-sent events the way OpenAI does: `data: <json>\n\n`, ending with `data: [DONE]\n\n`.
enum SSEEncoder {
    static let done = ByteBuffer(string: "data: [DONE]\n\n")

    /// One event around an already-encoded JSON payload.
    static func event(_ payload: ByteBuffer) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(payload.readableBytes + 8)
        out.writeStaticString("data: ")
        var payload = payload
        out.writeBuffer(&payload)
        out.writeStaticString("\n\n")
        return out
    }

    /// One event for a chunk, reusing the upstream's bytes when the chunk is unchanged.
    static func event(_ event: ChatStreamEvent) throws -> ByteBuffer {
        try self.event(event.bytes())
    }

    /// The error event that ends a stream which failed after it started.
    static func errorEvent(_ error: SluiceError) -> ByteBuffer {
        let payload = (try? JSONCoding.encode(error.body)) ?? ByteBuffer(string: #"{"error":{"message":"stream failed","type":"server_error","code":null,"param":null}}"#)
        return self.event(payload)
    }

    /// A named event (`event: NAME`), as the Responses and Messages APIs send them.
    static func event(_ named: NamedEvent) throws -> ByteBuffer {
        var out = ByteBuffer()
        out.writeStaticString("event: ")
        out.writeString(named.name)
        out.writeStaticString("\ndata: ")
        try JSONWriter.write(named.data, to: &out)
        out.writeStaticString("\n\n")
        return out
    }
}
