import Hummingbird
import NIOCore
import SluiceCore
import SluiceObservability

/// Reads and decodes request bodies with the server's size limit and OpenAI-shaped errors.
struct RequestBodyReader: Sendable {
    let maxBytes: Int

    func read(_ request: Request) async throws -> ByteBuffer {
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > maxBytes {
            throw tooLarge
        }
        do {
            return try await request.body.collect(upTo: maxBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge
        }
    }

    /// Decodes the body as a `T`; `direct` may read a parsed body itself (nil leaves it to `Codable`).
    func decode<T: Decodable>(_ type: T.Type, from request: Request, direct: (JSONValue) -> T? = { _ in nil }) async throws -> T {
        let body = try await read(request)
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
        do {
            return try JSONCoding.decode(type, from: body)
        } catch {
            if let problem = JSONSyntaxCheck.firstProblem(in: body.readableBytesView) {
                throw SluiceError(.invalidJSON, "The request body is not valid JSON: \(problem).")
            }
            throw SluiceError.fromDecoding(error)
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
