import Hummingbird
import NIOCore
import NIOHTTP1
import SluiceCore
import SluiceObservability

/// Reads and decodes request bodies with the server's size limit and OpenAI-shaped errors.
struct RequestBodyReader: Sendable {
    let maxBytes: Int

    func read(_ request: Request) async throws -> ByteBuffer {
        try await Self.collect(request, upTo: maxBytes, tooLarge: tooLarge)
    }

    /// How much of an oversized body is read and thrown away before the 413 is sent: a client
    /// that writes its whole body before reading (Python's `urllib`, which also asks to close
    /// the connection) would otherwise never see the answer. Beyond this the body deadline ends it.
    static let drainLimit = 64 * 1024 * 1024

    /// The body, at most `limit` bytes; each way reading it can fail becomes its client error
    /// (413 too large, 400 broken framing, 408 too slow, 499 the client left), never a 500.
    static func collect(_ request: Request, upTo limit: Int, tooLarge: @autoclosure () -> SluiceError) async throws -> ByteBuffer {
        var drain = false
        if let declared = request.headers.value(.contentLength).flatMap(Int.init), declared > limit {
            guard declared <= limit + drainLimit else { throw tooLarge() }
            drain = true
        }
        var collected = ByteBuffer()
        var total = 0
        do {
            for try await part in request.body {
                total += part.readableBytes
                if total > limit { drain = true }
                if drain {
                    if total > limit + drainLimit { break }
                    continue
                }
                var part = part
                collected.writeBuffer(&part)
            }
        } catch {
            throw bodyReadError(error, tooLarge: tooLarge())
        }
        if drain { throw tooLarge() }
        return collected
    }

    /// The client error for a failure while reading a request body.
    static func bodyReadError(_ error: any Error, tooLarge: @autoclosure () -> SluiceError) -> SluiceError {
        switch error {
        case let error as SluiceError: return error
        case is NIOTooManyBytesError: return tooLarge()
        case let error as HTTPError where error.status == .contentTooLarge: return tooLarge()
        case is ReadDeadlineExceeded:
            return SluiceError(.requestTimeout, "The request body did not arrive within server.body_timeout_s.")
        case HTTPParserError.invalidEOFState:
            return SluiceError(.clientDisconnected, "The client closed the connection before sending the whole request body.")
        case let error as HTTPParserError:
            return SluiceError(.invalidRequest, "The request's HTTP framing is invalid: \(error.debugDescription).")
        case is CancellationError, is ChannelError:
            return SluiceError(.clientDisconnected, "The connection closed while the request body was being read.")
        default:
            return SluiceError(.invalidRequest, "The request body could not be read.")
        }
    }

    /// Decodes the body as a `T`; `direct` may read a parsed body itself (nil leaves it to `Codable`).
    func decode<T: Decodable>(_ type: T.Type, from request: Request, direct: (JSONValue) -> T? = { _ in nil }) async throws -> T {
        try Self.decode(type, from: try await read(request), direct: direct)
    }

    /// Decodes a body read whole. Out of line, so that the reading frame above (which a
    /// connection's task keeps the memory of) holds none of the decoders' temporaries.
    @inline(never)
    static func decode<T: Decodable>(_ type: T.Type, from body: ByteBuffer, direct: (JSONValue) -> T?) throws -> T {
        guard body.readableBytes > 0 else {
            throw SluiceError(.invalidJSON, "The request body is empty; send a JSON object.")
        }
        // Well-formed JSON through the fast parser; anything it is unsure of through Foundation,
        // whose errors (with the position of a syntax error) are the ones clients see.
        if let value = JSONParser.parse(body) {
            if let decoded = direct(value) { return decoded }
            do {
                return try JSONValueDecoder.decode(type, from: value)
            } catch {
                throw SluiceError.fromDecoding(error)
            }
        }
        // JSON text is UTF-8 (RFC 8259); say so rather than let a decoder call a broken string "invalid type".
        if let offset = Self.firstInvalidUTF8(body.readableBytesView) {
            throw SluiceError(.invalidJSON, "The request body is not valid UTF-8 (at byte \(offset)).")
        }
        do {
            return try JSONCoding.decode(type, from: body)
        } catch {
            if let problem = JSONSyntaxCheck.firstProblem(in: body.readableBytesView) {
                throw SluiceError(.invalidJSON, "The request body is not valid JSON: \(problem).")
            }
            throw SluiceError.fromDecoding(error)
        }
    }

    /// The offset of the first byte that is not part of valid UTF-8, if any.
    static func firstInvalidUTF8(_ bytes: ByteBufferView) -> Int? {
        var offset = 0
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let s): offset += UTF8.width(s)
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    private var tooLarge: SluiceError {
        SluiceError(.requestTooLarge, "The request body is larger than \(maxBytes) bytes (server.max_body_bytes).")
    }
}

extension Request {
    /// The request's `x-` headers, `Cache-Control` and W3C trace context (`traceparent`,
    /// `tracestate`), with lower-cased names, for the pipeline.
    var extensionHeaders: [String: String] {
        var out: [String: String] = [:]
        for field in headers {
            let name = field.name.canonicalName
            if name.hasPrefix("x-") || name == "traceparent" || name == "tracestate" {
                out[name] = field.value
            } else if name == "cache-control" {
                // Directives may come in several fields; they add up.
                out[name] = out[name].map { $0 + ", " + field.value } ?? field.value
            }
        }
        return out
    }
}
