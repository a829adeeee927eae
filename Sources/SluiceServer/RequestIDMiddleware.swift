import Hummingbird
import HTTPTypes
import Synchronization

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

    /// `req_` and 24 hex digits, unique within the process and unpredictable across processes:
    /// a counter through a 64-bit bijection keyed by a random process seed, then 32 bits of the
    /// seed. (Two `getrandom` calls per request showed in profiles.)
    static func makeID() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        let mixed = mix(n &+ seed.0)
        var bytes = [UInt8](repeating: 0, count: 28)
        bytes[0] = UInt8(ascii: "r")
        bytes[1] = UInt8(ascii: "e")
        bytes[2] = UInt8(ascii: "q")
        bytes[3] = UInt8(ascii: "_")
        let digits = Array("0123456789abcdef".utf8)
        for i in 0..<16 { bytes[4 + i] = digits[Int((mixed >> UInt64(60 - 4 * i)) & 0xf)] }
        for i in 0..<8 { bytes[20 + i] = digits[Int((seed.1 >> UInt32(28 - 4 * i)) & 0xf)] }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static let counter = Atomic<UInt64>(0)
    private static let seed: (UInt64, UInt32) = {
        var rng = SystemRandomNumberGenerator()
        return (rng.next(), rng.next())
    }()

    /// SplitMix64's finaliser: a bijection on 64 bits, so distinct counters give distinct ids.
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xbf58476d1ce4e5b9
        z = (z ^ (z >> 27)) &* 0x94d049bb133111eb
        return z ^ (z >> 31)
    }
}
