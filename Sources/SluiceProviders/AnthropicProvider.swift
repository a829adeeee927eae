import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import SluiceCore

/// Anthropic's Messages API behind the chat-completions interface.
public struct AnthropicProvider: ChatProvider {
    public let name: String
    let config: HTTPProviderConfig
    let transport: any UpstreamTransport

    public init(name: String, config: HTTPProviderConfig, client: HTTPClient) {
        self.name = name
        self.config = config
        var base = config.baseURL
        while base.hasSuffix("/") { base.removeLast() }
        if base.hasSuffix("/v1") { base.removeLast(3) }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "anthropic-version", value: config.anthropicVersion)
        if let key = config.apiKey { headers.add(name: "x-api-key", value: key) }
        for (k, v) in config.headers.sorted(by: { $0.key < $1.key }) { headers.replaceOrAdd(name: k, value: v) }
        // Anthropic's 529 "overloaded" is a 5xx like any other: the transport maps it so.
        self.transport = makeTransport(baseURL: base + "/v1", headers: headers, client: client, provider: name, config: config)
    }

    /// The Messages API body: the client's own when it spoke this API and no stage changed the
    /// request (so `cache_control`, `top_k`, `metadata` … reach Anthropic), else the translation.
    func body(_ request: ChatCompletionRequest, context: InferenceContext, stream: Bool) throws -> ByteBuffer {
        if let native = context.nativeRequest, native.api == .anthropicMessages, native.isUntouched(request), case .object(var fields) = native.body {
            fields["model"] = .string(request.model)
            // The answer comes back through the chat format, which has no thinking blocks, and a
            // tool-use turn without its thinking block would be refused: no extended thinking.
            fields.removeValue(forKey: "thinking")
            if stream { fields["stream"] = true } else { fields.removeValue(forKey: "stream") }
            return try JSONCoding.encode(JSONValue.object(fields))
        }
        var request = request
        request.stream = stream ? true : nil
        return try JSONCoding.encode(try AnthropicTranslator.messagesRequest(from: request, defaultMaxTokens: config.defaultMaxTokens))
    }

    public func complete(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatResult {
        let message = try await transport.postForJSON(
            config.timeouts, provider: name, path: "/messages", body: try body(request, context: context, stream: false), context: context)
        return ChatResult(completion: try AnthropicTranslator.completion(from: message, created: Int(context.receivedAtUnix)))
    }

    public func stream(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatStream {
        let body = try body(request, context: context, stream: true)
        let events = try await transport.postStreaming("/messages", body: body, maxBodyBytes: 256 << 20, context: context)
        return ChatStream(
            TranslatedSSEStream(
                events: SSEEventSequence(events), translation: AnthropicTranslator.StreamState(created: Int(context.receivedAtUnix)), provider: name,
                timeouts: config.timeouts))
    }

    public func checkHealth() async -> ProviderHealth {
        await transport.checkHealth("/models")
    }

    /// Closes kept-alive connections of the lean pool (a plain-HTTP base URL).
    public func closeIdleConnections() {
        transport.closeIdle()
    }
}
