import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import SluiceCore
import SluiceTesting
import Testing
@testable import SluiceProviders

@Suite struct GeminiProviderTests {
    func fixture(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/gemini/\(name)", withExtension: nil))
        return try String(contentsOf: url, encoding: .utf8)
    }

    func json(_ text: String) throws -> JSONValue { try JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: text)) }

    let context = InferenceContext(requestID: "req-g1", endpoint: "chat.completions", logger: Logger(label: "t"), receivedAtUnix: 1_700_000_000)

    @Test func translatesTheRequest() throws {
        var request = try JSONCoding.decode(
            ChatCompletionRequest.self,
            from: ByteBuffer(
                string: #"""
                    {"model": "gemini-2.5-flash", "temperature": 0.4, "max_completion_tokens": 200, "stop": ["END"], "seed": 7,
                     "messages": [
                       {"role": "system", "content": "Be brief."},
                       {"role": "user", "content": [{"type": "text", "text": "Weather here?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]},
                       {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                       {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
                       {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 21}"}
                     ],
                     "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
                     "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                     "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}}
                    """#))
        let body = try GeminiTranslator.generateContentRequest(from: request)
        #expect(body["systemInstruction"] == ["parts": [["text": "Be brief."]]])
        #expect(body["contents"]?[0]?["role"] == "user" && body["contents"]?[0]?["parts"]?[1] == ["inlineData": ["mimeType": "image/png", "data": "iVBOR"]])
        #expect(body["contents"]?[1] == ["role": "model", "parts": [["functionCall": ["name": "get_weather", "args": ["city": "Paris"]]]]])
        // Tool results answer by the function's name; a non-object result is wrapped.
        #expect(body["contents"]?[2]?["parts"]?[0] == ["functionResponse": ["name": "get_weather", "response": ["result": "Sunny"]]])
        #expect(body["contents"]?[2]?["parts"]?[1]?["functionResponse"]?["response"] == ["temp_c": 21])
        #expect(body["generationConfig"]?["maxOutputTokens"] == 200 && body["generationConfig"]?["stopSequences"] == ["END"])
        #expect(body["generationConfig"]?["responseMimeType"] == "application/json" && body["generationConfig"]?["responseJsonSchema"] == ["type": "object"])
        #expect(body["tools"]?[0]?["functionDeclarations"]?[0]?["parametersJsonSchema"]?["type"] == "object")
        #expect(body["toolConfig"] == ["functionCallingConfig": ["mode": "ANY", "allowedFunctionNames": ["get_weather"]]])
        request.messages = [.init(role: .user, content: .parts([try JSONCoding.decode(ContentPart.self, from: ByteBuffer(string: #"{"type":"input_audio","input_audio":{}}"#))]))]
        #expect(throws: SluiceError.self) { try GeminiTranslator.generateContentRequest(from: request) }
    }

    @Test func translatesTheResponseSkippingThoughts() throws {
        let completion = try GeminiTranslator.completion(from: json(fixture("generate-response.json")), id: "g1", model: "gemini", created: 5, provider: "gem")
        let choice = try #require(completion.choices.first)
        #expect(choice.message.content == "Let me check the forecast." && choice.finishReason == "tool_calls")
        #expect(choice.message.toolCalls?.first?.function.name == "get_weather")
        #expect(choice.message.toolCalls?.first?.function.arguments == #"{"city":"Paris","day":"tomorrow"}"#)
        #expect(completion.usage == Usage(promptTokens: 57, completionTokens: 33) && completion.model == "gemini-2.5-flash")
    }

    @Test func aBlockedPromptIsAContentFilterError() throws {
        do {
            _ = try GeminiTranslator.completion(from: json(fixture("blocked.json")), id: "g1", model: "gemini", created: 5, provider: "gem")
            Issue.record("expected an error")
        } catch let error as SluiceError {
            #expect(error.code == .contentFiltered && error.httpStatus == 400 && error.message.contains("SAFETY"))
        }
    }

    func withProvider<T: Sendable>(_ base: String, _ body: @Sendable (GeminiProvider) async throws -> T) async throws -> T {
        let config = HTTPProviderConfig(baseURL: base, apiKey: "AIza-test")
        return try await withHTTPClient(OpenAICompatibleProvider.makeHTTPClient(for: config)) { client in
            try await body(try GeminiProvider(name: "gem", config: config, client: client))
        }
    }

    @Test func callsGenerateContentStreamsEmbedsAndMapsErrors() async throws {
        let captured = Captured()
        let response = try fixture("generate-response.json")
        let stream = try fixture("stream.sse")
        let embed = try fixture("embed-response.json")
        let quota = try fixture("error-429.json")
        let tooLong = try fixture("error-context.json")
        try await FakeUpstream.with({ router in
            router.post("/v1beta/models/{call}") { request, context -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                captured.add(request, body: body)
                let call = context.parameters.get("call") ?? ""
                let (status, text): (Int, String) =
                    switch call {
                    case "gemini-2.5-flash:generateContent": (200, response)
                    case "gemini-2.5-flash:streamGenerateContent": (200, stream)
                    case "text-embedding-004:batchEmbedContents": (200, embed)
                    case "busy:generateContent": (429, quota)
                    default: (400, tooLong)
                    }
                return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
            }
        }) { base in
            try await withProvider(base + "/v1beta") { provider in
                let request = ChatCompletionRequest(model: "gemini-2.5-flash", messages: [.init(role: .user, text: "Paris?")])
                let result = try await provider.complete(request, context: context)
                #expect(try result.completion().choices.first?.finishReason == "tool_calls")

                var chunks: [ChatCompletionChunk] = []
                for try await event in try await provider.stream(request, context: context) { chunks.append(try event.chunk()) }
                #expect(chunks.compactMap { $0.choices.first?.delta.content }.joined() == "The sky is blue.")
                let call = chunks.compactMap { $0.choices.first?.delta.toolCalls?.first }.first
                #expect(call?.index == 0 && call?.function?.name == "get_weather" && call?.function?.arguments == #"{"city":"Paris"}"#)
                #expect(chunks.compactMap { $0.choices.first?.finishReason }.last == "tool_calls")
                #expect(chunks.last?.usage == Usage(promptTokens: 9, completionTokens: 14))

                let vectors = try await provider.embed(
                    EmbeddingsRequest(model: "text-embedding-004", input: .strings(["a", "b"])), context: context)
                #expect(vectors.data.count == 2 && vectors.data[1].embedding == .float([0.05, 0.25, -0.5]))
                let embedBody = try json(captured.last?.body ?? "")
                #expect(embedBody["requests"]?[0]?["model"] == "models/text-embedding-004")

                do {
                    _ = try await provider.complete(ChatCompletionRequest(model: "busy", messages: [.init(role: .user, text: "x")]), context: context)
                    Issue.record("expected a 429")
                } catch let error as SluiceError {
                    #expect(error.code == .upstreamRateLimited && error.retryAfter == 19)
                }
                do {
                    _ = try await provider.complete(ChatCompletionRequest(model: "huge", messages: [.init(role: .user, text: "x")]), context: context)
                    Issue.record("expected a 400")
                } catch let error as SluiceError {
                    #expect(error.code == .contextLengthExceeded)
                }
            }
        }
        #expect(captured.last?.headers["x-goog-api-key"] == "AIza-test" && captured.last?.headers["authorization"] == nil)
    }

    @Test func withoutAKeyTheProviderIsAConfigurationError() async throws {
        let config = HTTPProviderConfig(baseURL: "http://127.0.0.1:9")
        try await withHTTPClient(OpenAICompatibleProvider.makeHTTPClient(for: config)) { client in
            #expect(throws: ConfigError.self) { try GeminiProvider(name: "gem", config: config, client: client) }
        }
    }
}
