import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SluiceCore

/// Google's Gemini API behind the chat-completions and embeddings interfaces, authenticated by
/// `x-goog-api-key`.
public struct GeminiProvider: ChatProvider, EmbeddingProvider {
    public let name: String
    let config: HTTPProviderConfig
    let transport: any UpstreamTransport

    /// Throws when there is no API key: a provider that can only ever answer 401 is a configuration error.
    public init(name: String, config: HTTPProviderConfig, client: HTTPClient) throws {
        let key = try Self.key(name: name, config: config)
        self.name = name
        self.config = config
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "x-goog-api-key", value: key)
        for (k, v) in config.headers.sorted(by: { $0.key < $1.key }) { headers.replaceOrAdd(name: k, value: v) }
        self.transport = makeTransport(baseURL: config.baseURL, headers: headers, client: client, provider: name, config: config)
    }

    /// The API key; checked before any HTTP client exists.
    public static func key(name: String, config: HTTPProviderConfig) throws -> String {
        guard let key = config.apiKey else {
            throw ConfigError(path: "providers.\(name).api_key", "Gemini needs an API key (e.g. api_key: ${GEMINI_API_KEY})")
        }
        return key
    }

    /// `models/NAME:method`; a model named `models/…` already has its prefix.
    static func path(_ model: String, _ method: String) -> String {
        let bare = model.hasPrefix("models/") ? String(model.dropFirst("models/".count)) : model
        let escaped = bare.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/", ":"])) ?? bare
        return "/models/\(escaped):\(method)"
    }

    static func responseID(_ context: InferenceContext) -> String {
        "gemini-" + context.requestID.filter { $0.isLetter || $0.isNumber }
    }

    public func complete(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatResult {
        let response = try await transport.postForJSON(
            config.timeouts, provider: name, path: Self.path(request.model, "generateContent"),
            body: try JSONCoding.encode(try GeminiTranslator.generateContentRequest(from: request)), context: context)
        return ChatResult(
            completion: try GeminiTranslator.completion(
                from: response, id: Self.responseID(context), model: request.model, created: Int(context.receivedAtUnix), provider: name))
    }

    public func stream(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatStream {
        let body = try JSONCoding.encode(try GeminiTranslator.generateContentRequest(from: request))
        let events = try await transport.postStreaming(
            Self.path(request.model, "streamGenerateContent") + "?alt=sse", body: body, maxBodyBytes: 256 << 20, context: context)
        let state = GeminiTranslator.StreamState(id: Self.responseID(context), model: request.model, created: Int(context.receivedAtUnix), provider: name)
        return ChatStream(TranslatedSSEStream(events: SSEEventSequence(events), translation: state, provider: name, timeouts: config.timeouts))
    }

    public func embed(_ request: EmbeddingsRequest, context: InferenceContext) async throws -> EmbeddingsResponse {
        let response = try await transport.postForJSON(
            config.timeouts, provider: name, path: Self.path(request.model, "batchEmbedContents"),
            body: try JSONCoding.encode(try GeminiTranslator.embedRequest(from: request, model: request.model)), context: context)
        return try GeminiTranslator.embeddings(from: response, request: request, provider: name)
    }

    public func checkHealth() async -> ProviderHealth {
        await transport.checkHealth("/models")
    }

    public func closeIdleConnections() {
        transport.closeIdle()
    }
}
