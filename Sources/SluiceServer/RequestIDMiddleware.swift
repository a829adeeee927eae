import Hummingbird
import HTTPTypes

extension HTTPField.Name {
    static let requestID = Self("x-request-id")!
    static let sluiceModel = Self("x-sluice-model")!
    static let sluiceCost = Self("x-sluice-cost-usd")!
    static let sluiceCache = Self("x-sluice-cache")!
    static let sluiceAttempts = Self("x-sluice-attempts")!
    static let retryAfter = Self("retry-after")!
}

/// Gives every request an id — the client's `x-request-id` when it is sane, a new one otherwise —
/// and puts it on every response, errors included.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = SluiceRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let id = request.headers[.requestID].flatMap { Self.isAcceptable($0) ? $0 : nil } ?? Self.makeID()
        context.requestID = id
        context.logger[metadataKey: "request_id"] = .string(id)
        var response = try await next(request, context)
        response.headers[.requestID] = id
        return response
    }

    /// Up to 128 visible ASCII characters: anything else could corrupt logs or headers.
    static func isAcceptable(_ id: String) -> Bool {
        let utf8 = id.utf8
        return !utf8.isEmpty && utf8.count <= 128 && utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f }
    }

    static func makeID() -> String {
        var rng = SystemRandomNumberGenerator()
        let a = rng.next() as UInt64
        let b = rng.next() as UInt32
        return "req_" + hex(a, width: 16) + hex(UInt64(b), width: 8)
    }

    private static func hex(_ v: UInt64, width: Int) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: width - s.count) + s
    }
}
