import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SluiceCore

/// Any server that speaks OpenAI's `/v1` API: OpenAI, vLLM, llama.cpp, Ollama, LM Studio, and
/// Azure OpenAI (the same bodies at other paths, with other credentials). Non-streamed answers
/// are decoded for accounting and forwarded as the upstream's bytes; streamed answers are
/// forwarded event by event.
public struct OpenAICompatibleProvider: ChatProvider, EmbeddingProvider {
    public let name: String
    let config: HTTPProviderConfig
    /// The lean pool for a plain-HTTP upstream, AsyncHTTPClient otherwise.
    let transport: any UpstreamTransport
    let paths: OpenAIPaths

    /// Where each call goes: OpenAI's paths, or Azure's per-deployment paths with `api-version`.
    public struct OpenAIPaths: Sendable {
        let azureAPIVersion: String?

        public static let openAI = OpenAIPaths(azureAPIVersion: nil)
        public static func azure(apiVersion: String) -> OpenAIPaths { OpenAIPaths(azureAPIVersion: apiVersion) }

        /// The path of `operation` (`chat/completions`, `embeddings`) for a model.
        func path(_ operation: String, model: String) -> String {
            guard let version = azureAPIVersion else { return "/" + operation }
            if version == "v1" { return "/openai/v1/" + operation }
            let deployment = model.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? model
            return "/openai/deployments/\(deployment)/\(operation)?api-version=\(version)"
        }

        var health: String {
            guard let version = azureAPIVersion else { return "/models" }
            return version == "v1" ? "/openai/v1/models" : "/openai/models?api-version=\(version)"
        }
    }

    /// Makes a provider that sends its calls through `client` (one client per provider, so its
    /// pool and timeouts are the provider's own; see `makeHTTPClient`), or, for a plain-HTTP
    /// base URL, through a lean pool of its own.
    public init(name: String, config: HTTPProviderConfig, client: HTTPClient) {
        self.init(name: name, config: config, client: client, paths: .openAI, credential: config.apiKey.map { ("authorization", "Bearer \($0)") })
    }

    /// Azure OpenAI: `api_key` as the `api-key` header, else an Entra ID token (from
    /// `AZURE_OPENAI_AD_TOKEN`) as a bearer token; neither is a configuration error.
    public static func azure(
        name: String, config: HTTPProviderConfig, client: HTTPClient, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> OpenAICompatibleProvider {
        let credential = try azureCredential(name: name, config: config, environment: environment)
        return OpenAICompatibleProvider(name: name, config: config, client: client, paths: .azure(apiVersion: config.apiVersion), credential: credential)
    }

    /// The header Azure OpenAI is called with; checked before any HTTP client exists.
    public static func azureCredential(name: String, config: HTTPProviderConfig, environment: [String: String]) throws -> (String, String) {
        if let key = config.apiKey { return ("api-key", key) }
        if let token = environment["AZURE_OPENAI_AD_TOKEN"], !token.isEmpty { return ("authorization", "Bearer \(token)") }
        throw ConfigError(path: "providers.\(name)", "Azure OpenAI needs api_key (e.g. ${AZURE_OPENAI_API_KEY}) or an Entra ID token in AZURE_OPENAI_AD_TOKEN")
    }

    init(name: String, config: HTTPProviderConfig, client: HTTPClient, paths: OpenAIPaths, credential: (String, String)?) {
        self.name = name
        self.config = config
        self.paths = paths
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "accept", value: "application/json, text/event-stream")
        if let (header, value) = credential { headers.add(name: header, value: value) }
        for (k, v) in config.headers.sorted(by: { $0.key < $1.key }) { headers.replaceOrAdd(name: k, value: v) }
        self.transport = makeTransport(baseURL: config.baseURL, headers: headers, client: client, provider: name, config: config)
    }

    /// Closes kept-alive connections of the lean pool.
    public func closeIdleConnections() {
        transport.closeIdle()
    }

    /// An HTTP client configured with a provider's pool size and timeouts.
    public static func makeHTTPClient(for config: HTTPProviderConfig) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .milliseconds(Int64(config.timeouts.connectMs)), read: .milliseconds(Int64(config.timeouts.idleMs)))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: config.maxConnections)
        configuration.httpVersion = .automatic
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// POSTs a body and returns the whole answer, within `total_ms`.
    private func fetchWhole(path: String, body: ByteBuffer, context: InferenceContext, limit: Int) async throws -> ByteBuffer {
        try await transport.postWithin(config.timeouts, provider: name, path: path, body: body, maxBodyBytes: limit, context: context)
    }

    public func complete(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatResult {
        var request = request
        request.stream = nil
        request.streamOptions = nil
        let bytes = try await fetchWhole(path: paths.path("chat/completions", model: request.model), body: try request.jsonBytes(), context: context, limit: 64 << 20)
        do {
            return try ChatResult(encoded: bytes)
        } catch {
            throw SluiceError(.upstreamBadResponse, "Upstream '\(name)' returned a response that is not a chat completion: \(error)")
        }
    }

    public func stream(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatStream {
        var request = request
        request.stream = true
        // Always ask for usage so the call can be accounted; the stage that knows what the
        // client asked for strips it again if the client did not.
        request.streamOptions = StreamOptions(includeUsage: true)
        let deadline = ContinuousClock.now + .milliseconds(config.timeouts.totalMs)
        let body = try await transport.postStreaming(
            paths.path("chat/completions", model: request.model), body: try request.jsonBytes(), maxBodyBytes: 256 << 20, context: context)
        return ChatStream(ChatEventSequence(events: SSEEventSequence(body), provider: name, timeouts: config.timeouts, deadline: deadline))
    }

    public func embed(_ request: EmbeddingsRequest, context: InferenceContext) async throws -> EmbeddingsResponse {
        let bytes = try await fetchWhole(path: paths.path("embeddings", model: request.model), body: try JSONCoding.encode(request), context: context, limit: 256 << 20)
        do {
            return try JSONCoding.decode(EmbeddingsResponse.self, from: bytes)
        } catch {
            throw SluiceError(.upstreamBadResponse, "Upstream '\(name)' returned a response that is not an embeddings list: \(error)")
        }
    }

    public func checkHealth() async -> ProviderHealth {
        await transport.checkHealth(paths.health)
    }
}

/// Turns an upstream's SSE events into chat chunks, keeping each event's bytes for forwarding.
struct ChatEventSequence<Events: AsyncSequence & Sendable>: AsyncSequence, Sendable where Events.Element == SSEEvent {
    typealias Element = ChatStreamEvent
    let events: Events
    let provider: String
    let timeouts: Timeouts
    let deadline: ContinuousClock.Instant

    func makeAsyncIterator() -> Iterator { Iterator(base: events.makeAsyncIterator(), owner: self) }

    struct Iterator: AsyncIteratorProtocol {
        var base: Events.AsyncIterator
        let owner: ChatEventSequence
        var done = false

        mutating func next() async throws -> ChatStreamEvent? {
            guard !done else { return nil }
            while true {
                let event: SSEEvent?
                do {
                    event = try await base.next(isolation: #isolation)
                } catch {
                    done = true
                    throw UpstreamError.fromTransport(error, provider: owner.provider, timeouts: owner.timeouts)
                }
                guard let event else {
                    done = true
                    throw SluiceError(.upstreamError, "Upstream '\(owner.provider)' ended the stream without [DONE]")
                }
                if ContinuousClock.now > owner.deadline {
                    done = true
                    throw SluiceError(.upstreamTimeout, "Upstream '\(owner.provider)' did not finish within \(owner.timeouts.totalMs) ms")
                }
                let data = event.data
                if data.readableBytes == 6, data.readableBytesView.elementsEqual("[DONE]".utf8) {
                    done = true
                    // Read the body to its end (the response's last chunk may come in a later
                    // packet), so the connection is returned for reuse instead of being closed as
                    // abandoned. A stall here ends at the idle timeout; its error no longer matters.
                    while (try? await base.next(isolation: #isolation)) != nil {}
                    return nil
                }
                if data.readableBytes == 0 { continue }
                do {
                    return try ChatStreamEvent(encoded: data)
                } catch {
                    done = true
                    if let message = UpstreamError.message(in: data), (try? JSONCoding.decode(JSONValue.self, from: data))?["error"] != nil {
                        throw SluiceError(.upstreamError, "Upstream '\(owner.provider)' failed mid-stream: \(message)")
                    }
                    throw SluiceError(.upstreamBadResponse, "Upstream '\(owner.provider)' sent a stream event that is not a chat chunk")
                }
            }
        }
    }
}
