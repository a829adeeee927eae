import SluiceCore
import Testing

/// Codes are told apart by identity even where clients see the same `error.code`.
@Suite struct ErrorCodeTests {
    @Test func anUpstreamRateLimitIsNotSluicesOwn() {
        #expect(SluiceError.Code.upstreamRateLimited != .rateLimited)
        #expect(SluiceError.Code.upstreamRateLimited.wireValue == "rate_limit_exceeded")
        #expect(SluiceError.Code.rateLimited.wireValue == "rate_limit_exceeded")
        let upstream = SluiceError(.upstreamRateLimited, "slow down", retryAfter: 2)
        let own = SluiceError(.rateLimited, "slow down", retryAfter: 2)
        #expect(upstream != own)
        #expect(upstream.body.error.code == "rate_limit_exceeded" && own.body.error.code == "rate_limit_exceeded")
        #expect(upstream.httpStatus == 429 && own.httpStatus == 429)
        switch upstream.code {
        case .rateLimited: Issue.record("an upstream 429 matched Sluice's own rate limit")
        case .upstreamRateLimited: break
        default: Issue.record("unexpected code \(upstream.code)")
        }
    }

    @Test func everyCodeHasItsOwnIdentity() {
        let codes: [SluiceError.Code] = [
            .invalidJSON, .invalidRequest, .missingParameter, .invalidType, .invalidValue, .modelNotFound, .notFound, .methodNotAllowed,
            .requestTooLarge, .unsupported, .guardrailBlocked, .schemaValidationFailed, .upstreamRateLimited, .upstreamError,
            .upstreamUnavailable, .upstreamTimeout, .upstreamBadResponse, .upstreamRejected, .contextLengthExceeded, .rateLimited,
            .insufficientQuota, .invalidAPIKey, .permissionDenied, .shuttingDown, .internalError,
        ]
        #expect(Set(codes).count == codes.count)
        #expect(Set(codes.map(\.rawValue)).count == codes.count)
    }
}
