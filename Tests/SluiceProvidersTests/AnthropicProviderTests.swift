import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import SluiceCore
import SluiceTesting
import Testing
@testable import SluiceProviders

@Suite struct AnthropicProviderTests {
    func fixture(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/anthropic/\(name)", withExtension: nil))
        return try String(contentsOf: url, encoding: .utf8)
    }

    func json(_ text: String) throws -> JSONValue {
        try JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: text))
    }

    let context = InferenceContext(requestID: "req-a", endpoint: "chat.completions", logger: Logger(label: "t"), receivedAtUnix: 1_700_000_000)

    @Test func translatesTheRequest() throws {
        let request = try JSONCoding.decode(ChatCompletionRequest.self, from: ByteBuffer(string: fixture("chat-request.json")))
        let translated = try AnthropicTranslator.messagesRequest(from: request, defaultMaxTokens: 4096)
        #expect(translated == (try json(fixture("messages-request.expected.json"))))
    }

    @Test func defaultsMaxTokensAndMapsToolChoice() throws {
        var request = ChatCompletionRequest(model: "claude", messages: [.init(role: .user, text: "hi")])
        request.tools = [Tool(function: .init(name: "f"))]
        request.toolChoice = "required"
        request.parallelToolCalls = false
        let t = try AnthropicTranslator.messagesRequest(from: request, defaultMaxTokens: 1234)
        #expect(t["max_tokens"] == .int(1234))
        #expect(t["tool_choice"] == ["type": "any", "disable_parallel_tool_use": true])
        #expect(t["tools"]?.arrayValue?.first?["input_schema"] == ["type": "object", "properties": .object([:])])
    }

    @Test func rejectsWhatAnthropicCannotTake() {
        var request = ChatCompletionRequest(model: "claude", messages: [.init(role: .tool, content: .text("x"))])
        #expect(throws: SluiceError.self) { try AnthropicTranslator.messagesRequest(from: request, defaultMaxTokens: 10) }
        request.messages = [.init(role: .user, content: .parts([try! JSONCoding.decode(ContentPart.self, from: ByteBuffer(string: #"{"type":"input_audio","input_audio":{}}"#))]))]
        #expect(throws: SluiceError.self) { try AnthropicTranslator.messagesRequest(from: request, defaultMaxTokens: 10) }
    }

    @Test func translatesTheResponse() throws {
        let completion = try AnthropicTranslator.completion(from: json(fixture("messages-response.json")), created: 5)
        #expect(completion.id == "msg_01XFDUDYJgAACzvnptvVoYEL")
        #expect(completion.model == "claude-sonnet-4-5-20250929")
        let choice = try #require(completion.choices.first)
        #expect(choice.finishReason == "tool_calls")
        #expect(choice.message.content == "I'll look up tomorrow's forecast.")
        #expect(choice.message.toolCalls == [ToolCall(id: "toolu_01B", name: "get_weather", arguments: #"{"city":"Paris","day":"tomorrow"}"#)])
        #expect(completion.usage == Usage(promptTokens: 480, completionTokens: 41))
    }

    func withProvider<T: Sendable>(_ base: String, _ body: @Sendable (AnthropicProvider) async throws -> T) async throws -> T {
        let config = HTTPProviderConfig(baseURL: base, apiKey: "sk-ant-test")
        return try await withHTTPClient(OpenAICompatibleProvider.makeHTTPClient(for: config)) { client in
            try await body(AnthropicProvider(name: "claude", config: config, client: client))
        }
    }

    @Test func callsTheMessagesAPIAndStreams() async throws {
        let captured = Captured()
        let response = try fixture("messages-response.json")
        let stream = try fixture("messages-stream.sse")
        let overloaded = try fixture("error-overloaded.json")
        try await FakeUpstream.with({ router in
            router.post("/v1/messages") { request, _ -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                captured.add(request, body: body)
                if String(buffer: body).contains(#""stream":true"#) {
                    return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: .init(byteBuffer: ByteBuffer(string: stream)))
                }
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: response)))
            }
            router.post("/busy/v1/messages") { _, _ in
                Response(status: .init(code: 529), body: .init(byteBuffer: ByteBuffer(string: overloaded)))
            }
        }) { base in
            try await withProvider(base) { provider in
                let request = ChatCompletionRequest(model: "claude-sonnet-4-5", messages: [.init(role: .user, text: "Paris?")])
                let result = try await provider.complete(request, context: context)
                #expect(try result.completion().choices.first?.finishReason == "tool_calls")

                var streamed = request
                streamed.stream = true
                var chunks: [ChatCompletionChunk] = []
                for try await event in try await provider.stream(streamed, context: context) { chunks.append(try event.chunk()) }
                let text = chunks.compactMap { $0.choices.first?.delta.content }.joined()
                #expect(text == "Checking now.")
                let toolStart = chunks.compactMap { $0.choices.first?.delta.toolCalls?.first }.first
                #expect(toolStart?.id == "toolu_01C")
                #expect(toolStart?.index == 0)
                #expect(toolStart?.function?.name == "get_weather")
                let args = chunks.compactMap { $0.choices.first?.delta.toolCalls?.first?.function?.arguments }.joined()
                #expect(args == #"{"city": "Paris"}"#)
                #expect(chunks.compactMap { $0.choices.first?.finishReason }.last == "tool_calls")
                #expect(chunks.last?.usage == Usage(promptTokens: 25, completionTokens: 32))
                #expect(chunks.last?.choices.isEmpty == true)
            }
            try await withProvider(base + "/busy") { provider in
                let request = ChatCompletionRequest(model: "claude", messages: [.init(role: .user, text: "x")])
                do {
                    _ = try await provider.complete(request, context: context)
                    Issue.record("expected an error")
                } catch let error as SluiceError {
                    #expect(error.httpStatus == 502)
                    #expect(error.message.contains("Overloaded"), "\(String(reflecting: error))")
                }
            }
        }
        #expect(captured.last?.headers["x-api-key"] == "sk-ant-test")
        #expect(captured.last?.headers["anthropic-version"] == "2023-06-01")
        #expect(captured.last?.headers["authorization"] == nil)
    }
}

@Suite struct AnthropicPassThroughTests {
    /// A Messages API request to an Anthropic deployment goes as the client wrote it (fields the
    /// chat format cannot carry included) unless a stage changed its translation.
    @Test func sendsTheClientsOwnBodyWhenNothingChangedIt() async throws {
        let captured = Captured()
        let url = try #require(Bundle.module.url(forResource: "Fixtures/anthropic/messages-response.json", withExtension: nil))
        let response = try String(contentsOf: url, encoding: .utf8)
        let native = try JSONCoding.decode(
            JSONValue.self,
            from: ByteBuffer(
                string: #"""
                    {"model": "claude-alias", "max_tokens": 100, "top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024},
                     "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
                     "messages": [{"role": "user", "content": "Paris?"}]}
                    """#))
        let translated = {
            var chat = ChatCompletionRequest(model: "claude-alias", messages: [.init(role: .system, text: "Be brief."), .init(role: .user, text: "Paris?")])
            chat.maxTokens = 100
            return chat
        }()
        try await FakeUpstream.with({ router in
            router.post("/v1/messages") { request, _ -> Response in
                captured.add(request, body: try await request.body.collect(upTo: 1 << 20))
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: response)))
            }
        }) { base in
            let config = HTTPProviderConfig(baseURL: base, apiKey: "k")
            try await withHTTPClient(OpenAICompatibleProvider.makeHTTPClient(for: config)) { client in
                let provider = AnthropicProvider(name: "claude", config: config, client: client)
                var context = InferenceContext(requestID: "r", endpoint: "messages", logger: Logger(label: "t"), receivedAtUnix: 1)
                context.nativeRequest = NativeRequest(api: .anthropicMessages, body: native, translated: translated)
                var routed = translated
                routed.model = "claude-sonnet-4-5"
                _ = try await provider.complete(routed, context: context)
                let sent = try JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: captured.last?.body ?? ""))
                #expect(sent["model"] == "claude-sonnet-4-5" && sent["top_k"] == 5 && sent["thinking"] == nil)
                #expect(sent["system"]?[0]?["cache_control"] == ["type": "ephemeral"] && sent["stream"] == nil)

                // A guardrail that redacted the prompt changed it: the translation goes instead.
                routed.messages[1] = .init(role: .user, text: "[REDACTED]?")
                _ = try await provider.complete(routed, context: context)
                let redacted = try JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: captured.last?.body ?? ""))
                #expect(redacted["top_k"] == nil && redacted["messages"]?[0]?["content"]?[0]?["text"] == "[REDACTED]?")
            }
        }
    }
}
