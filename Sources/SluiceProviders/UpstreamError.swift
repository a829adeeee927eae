import AsyncHTTPClient
import NIOCore
import NIOPosix
import SluiceCore

/// Maps what an upstream answered, or how the call failed, to a `SluiceError` with the status a
/// client should see: 429 stays 429 with its `Retry-After`, 5xx becomes 502, a timeout 504, an
/// upstream that cannot be reached 502, a request the upstream rejected 400.
enum UpstreamError {
    /// An HTTP error answer from the upstream.
    static func fromResponse(status: Int, body: ByteBuffer?, retryAfter: String?, provider: String) -> SluiceError {
        let upstreamMessage = body.flatMap(message(in:)) ?? "HTTP \(status)"
        let retry = retryAfter.flatMap(parseRetryAfter) ?? body.flatMap(retryDelay(in:))
        switch status {
        case 429:
            return SluiceError(
                .upstreamRateLimited, "Upstream '\(provider)' is rate limiting: \(upstreamMessage)", retryAfter: retry ?? 1,
                upstreamStatus: status)
        case 400, 413, 422:
            // (`case 400, 413, 422 where …` would apply the condition to 422 alone.)
            if isContextLengthMessage(upstreamMessage) {
                return SluiceError(
                    .contextLengthExceeded, "Upstream '\(provider)' cannot take a prompt this long: \(upstreamMessage)", param: "messages",
                    upstreamStatus: status)
            }
            if isContentFilter(body) {
                return SluiceError(
                    .contentFiltered, "Upstream '\(provider)' refused the prompt under its content policy: \(upstreamMessage)", upstreamStatus: status)
            }
            return SluiceError(.upstreamRejected, "Upstream '\(provider)' rejected the request: \(upstreamMessage)", upstreamStatus: status)
        case 401, 403:
            return SluiceError(
                .upstreamError, "Upstream '\(provider)' refused Sluice's credentials (HTTP \(status)); check the provider's api_key",
                upstreamStatus: status)
        case 404:
            return SluiceError(.upstreamError, "Upstream '\(provider)' does not know this model or path: \(upstreamMessage)", upstreamStatus: status)
        default:
            return SluiceError(
                .upstreamError, "Upstream '\(provider)' failed with HTTP \(status): \(upstreamMessage)", retryAfter: retry,
                upstreamStatus: status)
        }
    }

    /// A failure to get an answer at all.
    static func fromTransport(_ error: any Error, provider: String, timeouts: Timeouts, wholeCall: Bool = false) -> any Error {
        if error is CancellationError { return error }
        if let error = error as? SluiceError { return error }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded:
                if wholeCall {
                    return SluiceError(.upstreamTimeout, "Upstream '\(provider)' did not finish within \(timeouts.totalMs) ms")
                }
                return SluiceError(.upstreamTimeout, "Upstream '\(provider)' did not answer within \(timeouts.firstTokenMs) ms")
            case .readTimeout:
                return SluiceError(.upstreamTimeout, "Upstream '\(provider)' stalled for more than \(timeouts.idleMs) ms")
            case .connectTimeout:
                return SluiceError(.upstreamTimeout, "Could not connect to upstream '\(provider)' within \(timeouts.connectMs) ms")
            case .cancelled:
                return CancellationError()
            case .remoteConnectionClosed:
                return SluiceError(.upstreamError, "Upstream '\(provider)' closed the connection before answering")
            default:
                return SluiceError(.upstreamError, "Upstream '\(provider)' could not be reached: \(error)")
            }
        }
        if let error = error as? HTTP1ConnectionPool.Failure {
            switch error {
            case .closed(let received):
                return SluiceError(
                    .upstreamError, received ? "Upstream '\(provider)' closed the connection mid-response" : "Upstream '\(provider)' closed the connection before answering")
            case .tooLarge:
                return SluiceError(.upstreamBadResponse, "Upstream '\(provider)' sent a response larger than Sluice accepts")
            case .idle:
                return SluiceError(.upstreamTimeout, "Upstream '\(provider)' stalled for more than \(timeouts.idleMs) ms")
            case .noAnswer:
                return SluiceError(.upstreamTimeout, "Upstream '\(provider)' did not answer within \(timeouts.firstTokenMs) ms")
            }
        }
        if let error = error as? ChannelError, case .connectTimeout = error {
            return SluiceError(.upstreamTimeout, "Could not connect to upstream '\(provider)' within \(timeouts.connectMs) ms")
        }
        if let error = error as? NIOConnectionError {
            let cause = error.connectionErrors.first.map { "\($0.error)" } ?? "\(error)"
            return SluiceError(.upstreamError, "Could not connect to upstream '\(provider)': \(cause)")
        }
        if error is IOError {
            return SluiceError(.upstreamError, "Could not reach upstream '\(provider)': \(error)")
        }
        return SluiceError(.upstreamError, "Upstream '\(provider)' failed: \(error)")
    }

    /// Whether an upstream's 400 says the prompt is longer than its context window (OpenAI's
    /// "maximum context length", llama.cpp's "exceeds the available context size", Anthropic's
    /// "prompt is too long", vLLM's "longer than the maximum model length").
    static func isContextLengthMessage(_ message: String) -> Bool {
        let m = message.lowercased()
        return m.contains("context length") || m.contains("context_length") || m.contains("context size") || m.contains("context window")
            || m.contains("prompt is too long") || m.contains("maximum model length")
            // Gemini: "The input token count (…) exceeds the maximum number of tokens allowed"; Bedrock: "Input is too long".
            || m.contains("exceeds the maximum number of tokens") || m.contains("input is too long") || m.contains("too many input tokens")
    }

    /// Whether an error body is a content-policy refusal (Azure OpenAI's `content_filter` code,
    /// OpenAI's `content_policy_violation`).
    static func isContentFilter(_ body: ByteBuffer?) -> Bool {
        guard let body, let decoded = try? JSONCoding.decode(JSONValue.self, from: body) else { return false }
        let code = decoded["error"]?["code"]?.stringValue ?? ""
        return code == "content_filter" || code == "content_policy_violation" || decoded["error"]?["innererror"]?["code"]?.stringValue == "ResponsibleAIPolicyViolation"
    }

    /// Google's `RetryInfo` (`{"error": {"details": [{"retryDelay": "20s"}]}}`), in whole seconds.
    static func retryDelay(in body: ByteBuffer) -> Int? {
        guard let details = (try? JSONCoding.decode(JSONValue.self, from: body))?["error"]?["details"]?.arrayValue else { return nil }
        for detail in details {
            if let delay = detail["retryDelay"]?.stringValue, delay.hasSuffix("s"), let seconds = Double(delay.dropLast()) {
                return max(0, Int(seconds.rounded(.up)))
            }
        }
        return nil
    }

    /// The message of an OpenAI- or Anthropic-shaped error body, if it is one.
    static func message(in body: ByteBuffer) -> String? {
        if let decoded = try? JSONCoding.decode(JSONValue.self, from: body) {
            if let m = decoded["error"]?["message"]?.stringValue { return m }
            if let m = decoded["error"]?.stringValue { return m }
            if let m = decoded["message"]?.stringValue { return m }
        }
        let text = String(buffer: body).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : String(text.prefix(300))
    }

    static func parseRetryAfter(_ value: String) -> Int? {
        if let seconds = Double(value.trimmingCharacters(in: .whitespaces)) { return max(0, Int(seconds.rounded(.up))) }
        return nil
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

extension Set where Element == Character {
    fileprivate static let whitespacesAndNewlines: Set<Character> = [" ", "\n", "\t", "\r"]
    fileprivate static let whitespaces: Set<Character> = [" ", "\t"]
}

extension HTTP1ConnectionPool.Response {
    /// Throws the mapped error when the upstream answered 400 or above.
    func failIfError(provider: String) throws {
        guard status.code >= 400 else { return }
        throw UpstreamError.fromResponse(
            status: Int(status.code), body: body, retryAfter: headers.first(name: "retry-after"), provider: provider)
    }
}

extension HTTP1ConnectionPool.StreamedResponse {
    /// Reads the error body (up to 1 MiB) and throws the mapped error when the upstream
    /// answered 400 or above.
    func failIfError(provider: String) async throws {
        guard status.code >= 400 else { return }
        var errorBody = ByteBuffer()
        for try await var part in body where errorBody.readableBytes < 1 << 20 { errorBody.writeBuffer(&part) }
        throw UpstreamError.fromResponse(
            status: Int(status.code), body: errorBody, retryAfter: headers.first(name: "retry-after"), provider: provider)
    }
}
