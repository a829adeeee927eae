/// The one error type of Sluice: an extensible code, a message safe to show a client, and the
/// parameter it concerns. `httpStatus` and `type` map it to OpenAI's error shape in one place.
public struct SluiceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as a stable machine-readable code (OpenAI's `error.code`).
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        /// The code's identity: unique per code.
        public let rawValue: String
        /// What clients, logs and the audit log see: OpenAI's `error.code`, which two codes may share.
        public let wireValue: String
        public init(rawValue: String) { self.init(rawValue: rawValue, wire: rawValue) }
        init(rawValue: String, wire: String) {
            self.rawValue = rawValue
            self.wireValue = wire
        }
        public var description: String { wireValue }

        // Client errors.
        public static let invalidJSON = Code(rawValue: "invalid_json")
        public static let invalidRequest = Code(rawValue: "invalid_request_error")
        public static let missingParameter = Code(rawValue: "missing_required_parameter")
        public static let invalidType = Code(rawValue: "invalid_type")
        public static let invalidValue = Code(rawValue: "invalid_value")
        public static let modelNotFound = Code(rawValue: "model_not_found")
        public static let notFound = Code(rawValue: "not_found")
        public static let methodNotAllowed = Code(rawValue: "method_not_allowed")
        public static let requestTooLarge = Code(rawValue: "request_too_large")
        public static let unsupported = Code(rawValue: "unsupported_operation")
        /// A guardrail refused the request or stopped the answer (400).
        public static let guardrailBlocked = Code(rawValue: "guardrail_blocked")
        /// A structured answer failed its JSON Schema after every repair attempt (502).
        public static let schemaValidationFailed = Code(rawValue: "schema_validation_failed")
        // Upstream errors.
        /// An upstream's 429; clients see OpenAI's `rate_limit_exceeded`, as for Sluice's own limits.
        public static let upstreamRateLimited = Code(rawValue: "upstream_rate_limit_exceeded", wire: "rate_limit_exceeded")
        public static let upstreamError = Code(rawValue: "upstream_error")
        public static let upstreamUnavailable = Code(rawValue: "upstream_unavailable")
        public static let upstreamTimeout = Code(rawValue: "upstream_timeout")
        public static let upstreamBadResponse = Code(rawValue: "upstream_bad_response")
        public static let upstreamRejected = Code(rawValue: "upstream_rejected_request")
        /// The prompt (with `max_tokens`) does not fit the model's context window (400).
        public static let contextLengthExceeded = Code(rawValue: "context_length_exceeded")
        /// An upstream's safety or content filter refused the prompt or stopped the answer (400).
        public static let contentFiltered = Code(rawValue: "content_filter")
        // Server side.
        /// Sluice's own limits: requests or tokens per minute, concurrency (429).
        public static let rateLimited = Code(rawValue: "rate_limit_exceeded")
        /// A key's or team's budget is spent (429).
        public static let insufficientQuota = Code(rawValue: "insufficient_quota")
        /// No API key, or one Sluice does not know (401).
        public static let invalidAPIKey = Code(rawValue: "invalid_api_key")
        /// A revoked or expired key, or a role or model the key may not use (403).
        public static let permissionDenied = Code(rawValue: "permission_denied")
        /// The client stopped sending before its request was complete, or left (499, nginx's
        /// "client closed request"; no one reads the answer, the audit log keeps it).
        public static let clientDisconnected = Code(rawValue: "client_disconnected")
        /// The client took longer than `server.header_timeout_s` / `body_timeout_s` to send its request (408).
        public static let requestTimeout = Code(rawValue: "request_timeout")
        public static let shuttingDown = Code(rawValue: "shutting_down")
        public static let internalError = Code(rawValue: "internal_error")
    }

    public var code: Code
    public var message: String
    public var param: String?
    /// Seconds the client should wait before retrying (429 and 503).
    public var retryAfter: Int?
    /// An explicit status, for upstream 4xx errors that are passed on as they came.
    public var statusOverride: Int?
    /// The status the upstream answered with, when the error came from one (for fallback
    /// decisions and the audit log; the client sees `httpStatus`).
    public var upstreamStatus: Int?
    /// Further response headers (`x-ratelimit-*` on a 429 from Sluice's own limits).
    public var headers: [String: String] = [:]

    public init(
        _ code: Code, _ message: String, param: String? = nil, retryAfter: Int? = nil, status: Int? = nil, upstreamStatus: Int? = nil
    ) {
        self.code = code
        self.message = message
        self.param = param
        self.retryAfter = retryAfter
        self.statusOverride = status
        self.upstreamStatus = upstreamStatus
    }

    public var description: String { "\(code): \(message)" }

    /// The HTTP status this error is answered with.
    public var httpStatus: Int {
        if let statusOverride { return statusOverride }
        switch code {
        case .invalidJSON, .invalidRequest, .missingParameter, .invalidType, .invalidValue, .unsupported, .guardrailBlocked, .contextLengthExceeded,
            .contentFiltered:
            return 400
        case .schemaValidationFailed: return 502
        case .modelNotFound, .notFound: return 404
        case .methodNotAllowed: return 405
        case .requestTooLarge: return 413
        case .rateLimited, .upstreamRateLimited, .insufficientQuota: return 429
        case .invalidAPIKey: return 401
        case .permissionDenied: return 403
        case .upstreamError, .upstreamBadResponse: return 502
        case .upstreamUnavailable, .shuttingDown: return 503
        case .upstreamTimeout: return 504
        case .upstreamRejected: return 400
        case .requestTimeout: return 408
        case .clientDisconnected: return 499
        default: return 500
        }
    }

    /// OpenAI's `error.type` for this error.
    public var type: String {
        switch httpStatus {
        case 400, 404, 405, 408, 413, 422, 499: return "invalid_request_error"
        case 401: return "authentication_error"
        case 403: return "permission_error"
        case 429: return "rate_limit_error"
        case 502, 503, 504: return "upstream_error"
        default: return "server_error"
        }
    }

    /// The error as OpenAI's wire body.
    public var body: ErrorBody {
        ErrorBody(error: .init(message: message, type: type, code: code.wireValue, param: param))
    }
}

/// OpenAI's error body: `{"error": {"message", "type", "code", "param"}}`.
public struct ErrorBody: Codable, Sendable, Hashable {
    public var error: Detail

    public init(error: Detail) { self.error = error }

    /// The inner object.
    public struct Detail: Codable, Sendable, Hashable {
        public var message: String
        public var type: String
        public var code: String?
        public var param: String?

        public init(message: String, type: String, code: String?, param: String?) {
            self.message = message
            self.type = type
            self.code = code
            self.param = param
        }

        // `code` and `param` are always present, null when unknown, as OpenAI sends them.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(message, forKey: .message)
            try c.encode(type, forKey: .type)
            try c.encode(code, forKey: .code)
            try c.encode(param, forKey: .param)
        }
    }
}

extension SluiceError {
    /// Turns a `DecodingError` from a request body into a 400 that names the offending field.
    public static func fromDecoding(_ error: any Error) -> SluiceError {
        guard let error = error as? DecodingError else {
            return SluiceError(.invalidJSON, "The request body is not valid JSON: \(error)")
        }
        func path(_ codingPath: [any CodingKey]) -> String? {
            var out = ""
            for key in codingPath {
                if let i = key.intValue {
                    out += "[\(i)]"
                } else {
                    out += out.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return out.isEmpty ? nil : out
        }
        switch error {
        case .keyNotFound(let key, let ctx):
            let param = path(ctx.codingPath + [key])
            return SluiceError(.missingParameter, "Missing required parameter: '\(param ?? key.stringValue)'.", param: param)
        case .typeMismatch(let type, let ctx):
            let param = path(ctx.codingPath)
            let expected = Self.jsonTypeName(type)
            let detail = ctx.debugDescription.hasPrefix("expected") ? ctx.debugDescription : "expected \(expected)"
            return SluiceError(.invalidType, "Invalid type for '\(param ?? "body")': \(detail).", param: param)
        case .valueNotFound(let type, let ctx):
            let param = path(ctx.codingPath)
            return SluiceError(
                .invalidType, "Invalid type for '\(param ?? "body")': expected \(Self.jsonTypeName(type)), got null.", param: param)
        case .dataCorrupted(let ctx):
            let param = path(ctx.codingPath)
            if param == nil {
                let underlying = ctx.underlyingError.map { "\($0)" } ?? ctx.debugDescription
                return SluiceError(.invalidJSON, "The request body is not valid JSON: \(Self.describeJSONError(underlying))")
            }
            return SluiceError(.invalidValue, "Invalid value for '\(param!)': \(ctx.debugDescription)", param: param)
        @unknown default:
            return SluiceError(.invalidJSON, "The request body could not be decoded.")
        }
    }

    static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Double.Type, is Float.Type: return "a number"
        case is Array<Any>.Type: return "an array"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") || name.hasPrefix("[") { return "an array" }
            if name.hasPrefix("Optional<") {
                return "a value"
            }
            return "an object"
        }
    }

    // Foundation's messages carry the position ("around line 1, column 9"); keep that, drop the
    // Swift type noise.
    static func describeJSONError(_ text: String) -> String {
        if let range = text.range(of: "debugDescription: \"") {
            let rest = text[range.upperBound...]
            if let end = rest.firstIndex(of: "\"") { return String(rest[..<end]) }
        }
        return text
    }
}
