#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Hummingbird
import HTTPTypes
import Synchronization

extension HTTPField.Name {
    static let requestID = Self("x-request-id")!
    static let sluiceModel = Self("x-sluice-model")!
    static let sluiceVariant = Self("x-sluice-variant")!
    static let sluiceExperiment = Self("x-sluice-experiment")!
    static let sluiceCost = Self("x-sluice-cost-usd")!
    static let sluiceCache = Self("x-sluice-cache")!
    static let sluiceCacheSimilarity = Self("x-sluice-cache-similarity")!
    static let sluiceAttempts = Self("x-sluice-attempts")!
    static let retryAfter = Self("retry-after")!
}

/// Gives every request an id — the client's `x-request-id` when it is sane, a new one otherwise —
/// and puts it on every response, errors included.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = SluiceRequestContext

    func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let id = request.headers.value(.requestID).flatMap { Self.isAcceptable($0) ? $0 : nil } ?? Self.makeID()
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

    /// `req_`, 12 hex digits of the Unix time in milliseconds, then 16 of a counter through a
    /// 64-bit bijection keyed by a random process seed: unique within the process, unpredictable
    /// across processes, and in time order, so the audit log's primary-key index grows at its end
    /// (random ids dirtied a random index page per row; the SQLite writer thread was ~16% of the
    /// CPU of a proxied request). No `getrandom` per request (it showed in profiles).
    static func makeID() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        let mixed = mix(n &+ seed)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let millis = UInt64(now.tv_sec) &* 1000 &+ UInt64(now.tv_nsec / 1_000_000)
        return String(unsafeUninitializedCapacity: 32) { bytes in
            let digits: StaticString = "0123456789abcdef"
            let hex = digits.utf8Start
            bytes[0] = UInt8(ascii: "r")
            bytes[1] = UInt8(ascii: "e")
            bytes[2] = UInt8(ascii: "q")
            bytes[3] = UInt8(ascii: "_")
            for i in 0..<12 { bytes[4 + i] = hex[Int((millis >> UInt64(44 - 4 * i)) & 0xf)] }
            for i in 0..<16 { bytes[16 + i] = hex[Int((mixed >> UInt64(60 - 4 * i)) & 0xf)] }
            return 32
        }
    }

    private static let counter = Atomic<UInt64>(0)
    private static let seed: UInt64 = {
        var rng = SystemRandomNumberGenerator()
        return rng.next()
    }()

    /// SplitMix64's finaliser: a bijection on 64 bits, so distinct counters give distinct ids.
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xbf58476d1ce4e5b9
        z = (z ^ (z >> 27)) &* 0x94d049bb133111eb
        return z ^ (z >> 31)
    }
}
