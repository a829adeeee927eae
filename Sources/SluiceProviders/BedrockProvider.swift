import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SluiceCore

/// AWS Bedrock's Converse and ConverseStream APIs behind the chat-completions interface. Calls
/// are signed with SigV4 (credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), or carry a Bedrock API key (`api_key`) as a bearer token.
public struct BedrockProvider: ChatProvider {
    public let name: String
    let config: HTTPProviderConfig
    let transport: any UpstreamTransport
    let signer: SigV4Signer?
    /// The `Host` the signature covers (sent as such by either transport).
    let host: String
    /// The base URL's path, which the signed path starts with.
    let basePath: String
    let now: @Sendable () -> Date

    /// Throws when there is no region or no credentials: a provider that can only ever answer 403
    /// is a configuration error.
    public init(
        name: String, config: HTTPProviderConfig, client: HTTPClient, environment: [String: String] = ProcessInfo.processInfo.environment,
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws {
        let access = try Self.access(name: name, config: config, environment: environment)
        var config = config
        config.baseURL = access.baseURL
        guard let url = URL(string: config.baseURL), let urlHost = url.host else {
            throw ConfigError(path: "providers.\(name).base_url", "must be an http(s) URL, got '\(config.baseURL)'")
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        if let key = config.apiKey { headers.add(name: "authorization", value: "Bearer \(key)") }
        self.signer = access.signer
        for (k, v) in config.headers.sorted(by: { $0.key < $1.key }) { headers.replaceOrAdd(name: k, value: v) }
        self.name = name
        self.config = config
        self.host = url.port.map { "\(urlHost):\($0)" } ?? urlHost
        var basePath = url.path
        while basePath.hasSuffix("/") { basePath.removeLast() }
        self.basePath = basePath
        self.now = now
        self.transport = makeTransport(baseURL: config.baseURL, headers: headers, client: client, provider: name, config: config)
    }

    /// Where and how a Bedrock provider calls: its base URL (from the region unless given) and its
    /// signer (none with an API key). Checked before any HTTP client exists.
    public static func access(
        name: String, config: HTTPProviderConfig, environment: [String: String]
    ) throws -> (baseURL: String, signer: SigV4Signer?) {
        let region = config.region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"]
        guard let region, !region.isEmpty else {
            throw ConfigError(path: "providers.\(name).region", "Bedrock needs a region (region: us-east-1, or AWS_REGION)")
        }
        let baseURL = config.baseURL.isEmpty ? "https://bedrock-runtime.\(region).amazonaws.com" : config.baseURL
        if config.apiKey != nil { return (baseURL, nil) }
        guard let credentials = SigV4Signer.Credentials.fromEnvironment(environment) else {
            throw ConfigError(
                path: "providers.\(name)",
                "Bedrock needs credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or api_key for a Bedrock API key")
        }
        return (baseURL, SigV4Signer(credentials: credentials, region: region, service: "bedrock"))
    }

    /// `/model/ID/operation`, the id encoded whole (`:` and the `/` of an ARN included).
    static func path(_ model: String, _ operation: String) -> String {
        let id = model.addingPercentEncoding(withAllowedCharacters: SigV4Signer.unreserved) ?? model
        return "/model/\(id)/\(operation)"
    }

    /// The per-request headers: `Host`, and the signature when signing.
    func requestHeaders(path: String, body: ByteBuffer) -> HTTPHeaders {
        var headers = HTTPHeaders([("host", host)])
        guard let signer else { return headers }
        let signed = signer.sign(
            method: "POST", path: basePath + path, headers: [("host", host), ("content-type", "application/json")],
            body: body.readableBytesView, date: now())
        for (name, value) in signed { headers.add(name: name, value: value) }
        return headers
    }

    static func responseID(_ context: InferenceContext) -> String {
        "bedrock-" + context.requestID.filter { $0.isLetter || $0.isNumber }
    }

    public func complete(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatResult {
        let body = try JSONCoding.encode(try BedrockTranslator.converseRequest(from: request))
        let path = Self.path(request.model, "converse")
        let response = try await transport.postForJSON(
            config.timeouts, provider: name, path: path, body: body, headers: requestHeaders(path: path, body: body), context: context)
        return ChatResult(
            completion: try BedrockTranslator.completion(
                from: response, id: Self.responseID(context), model: request.model, created: Int(context.receivedAtUnix), provider: name))
    }

    public func stream(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatStream {
        let body = try JSONCoding.encode(try BedrockTranslator.converseRequest(from: request))
        let path = Self.path(request.model, "converse-stream")
        let bytes = try await transport.postStreaming(path, body: body, headers: requestHeaders(path: path, body: body), maxBodyBytes: 256 << 20, context: context)
        let state = BedrockTranslator.StreamState(id: Self.responseID(context), model: request.model, created: Int(context.receivedAtUnix), provider: name)
        return ChatStream(BedrockChunkSequence(body: bytes, state: state, provider: name, timeouts: config.timeouts))
    }

    /// Bedrock's runtime has no unauthenticated probe; failures show in the circuit breaker instead.
    public func checkHealth() async -> ProviderHealth { .healthy }

    public func closeIdleConnections() {
        transport.closeIdle()
    }
}

/// ConverseStream's event-stream body turned into chat chunks.
struct BedrockChunkSequence: AsyncSequence, Sendable {
    typealias Element = ChatStreamEvent
    let body: UpstreamBody
    let state: BedrockTranslator.StreamState
    let provider: String
    let timeouts: Timeouts

    func makeAsyncIterator() -> Iterator { Iterator(base: body.makeAsyncIterator(), state: state, owner: self) }

    struct Iterator: AsyncIteratorProtocol {
        var base: UpstreamBody.AsyncIterator
        var state: BedrockTranslator.StreamState
        let owner: BedrockChunkSequence
        var decoder = AWSEventStreamDecoder()
        var pending: [ChatCompletionChunk] = []
        var done = false

        mutating func next() async throws -> ChatStreamEvent? {
            while pending.isEmpty {
                if done { return nil }
                if let message = try decoder.next() {
                    pending = try state.chunks(for: message)
                    continue
                }
                let bytes: ByteBuffer?
                do {
                    bytes = try await base.next()
                } catch {
                    throw UpstreamError.fromTransport(error, provider: owner.provider, timeouts: owner.timeouts)
                }
                guard let bytes else {
                    guard state.stopped, !decoder.hasPartialMessage else {
                        throw SluiceError(.upstreamError, "Upstream '\(owner.provider)' ended the stream before messageStop")
                    }
                    done = true
                    return ChatStreamEvent(chunk: state.end())
                }
                decoder.append(bytes)
            }
            return ChatStreamEvent(chunk: pending.removeFirst())
        }
    }
}
