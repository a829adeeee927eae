import Hummingbird
import HTTPTypes
import NIOCore
import NIOHTTP1
import SluiceClientAPIs
import SluiceCore
import SluiceObservability

/// Turns every error into OpenAI's error shape (Anthropic's on `/v1/messages`) with the right status: a `SluiceError` as it
/// says, Hummingbird's 404/413/… as the matching code, an unknown path on a known route as 405,
/// anything unexpected as a 500 that reveals nothing about the internals.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = SluiceRequestContext
    /// Paths the router serves and the methods each accepts (for 405 and `Allow`).
    let routes: [String: [HTTPRequest.Method]]

    func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return errorResponse(error, request: request, context: context)
        }
    }

    // Out of line: every request's frame would otherwise carry this path's temporaries, and a
    // connection's task keeps its deepest frames' memory for as long as the connection lasts.
    @inline(never)
    func errorResponse(_ error: any Error, request: Request, context: Context) -> Response {
        let sluiceError = translate(error, request: request)
        if sluiceError.httpStatus >= 500 && sluiceError.code == .internalError {
            context.logger.error("unexpected error", metadata: ["error": "\(error)"])
        }
        var response = Self.response(for: sluiceError, anthropic: request.uri.path.hasPrefix("/v1/messages"))
        if sluiceError.code == .methodNotAllowed, let allowed = allowedMethods(request.uri.path) {
            response.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
        }
        return response
    }

    /// The methods a path accepts: an exact route, or one with `{parameter}` segments.
    func allowedMethods(_ path: String) -> [HTTPRequest.Method]? {
        if let exact = routes[path] { return exact }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for (pattern, methods) in routes where pattern.contains("{") {
            let parts = pattern.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == segments.count else { continue }
            if zip(parts, segments).allSatisfy({ p, s in (p.hasPrefix("{") && p.hasSuffix("}") && !s.isEmpty) || p == s }) { return methods }
        }
        return nil
    }

    func translate(_ error: any Error, request: Request) -> SluiceError {
        if let error = error as? SluiceError { return error }
        if let error = error as? HTTPError {
            switch error.status {
            case .notFound:
                if let allowed = allowedMethods(request.uri.path), !allowed.contains(request.method) {
                    return SluiceError(.methodNotAllowed, "Method \(request.method.rawValue) is not allowed on \(request.uri.path); use \(allowed.map(\.rawValue).joined(separator: " or ")).")
                }
                return SluiceError(.notFound, "Unknown path \(request.method.rawValue) \(request.uri.path).")
            case .contentTooLarge:
                return SluiceError(.requestTooLarge, "The request body is larger than the server allows.")
            case .methodNotAllowed:
                return SluiceError(.methodNotAllowed, "Method \(request.method.rawValue) is not allowed on \(request.uri.path).")
            default:
                let code = error.status.code
                return SluiceError(
                    code < 500 ? .invalidRequest : .internalError, error.body ?? error.status.reasonPhrase, status: code)
            }
        }
        if error is CancellationError {
            return SluiceError(.shuttingDown, "The request was cancelled.", status: 499)
        }
        // A body read outside RequestBodyReader (Hummingbird's own collect) fails the same ways.
        if error is NIOTooManyBytesError || error is HTTPParserError || error is ReadDeadlineExceeded {
            return RequestBodyReader.bodyReadError(error, tooLarge: SluiceError(.requestTooLarge, "The request body is larger than the server allows."))
        }
        return SluiceError(.internalError, "Internal server error.")
    }

    /// The HTTP response for an error.
    /// `anthropic`: in Anthropic's shape (`{"type": "error", "error": {"type", "message"}}`), for
    /// the Messages API's clients.
    static func response(for error: SluiceError, anthropic: Bool = false) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retry = error.retryAfter { headers[.retryAfter] = String(retry) }
        for (name, value) in error.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        let body = (anthropic ? try? JSONCoding.encode(MessagesAPI.errorBody(error)) : try? JSONCoding.encode(error.body)) ?? ByteBuffer(string: #"{"error":{"message":"error","type":"server_error","code":null,"param":null}}"#)
        return Response(status: .init(code: error.httpStatus), headers: headers, body: .init(byteBuffer: body))
    }
}
