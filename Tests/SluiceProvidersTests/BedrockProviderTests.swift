import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import SluiceCore
import SluiceTesting
import Synchronization
import Testing
@testable import SluiceProviders

@Suite struct BedrockProviderTests {
    func fixture(_ name: String) throws -> Data {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/bedrock/\(name)", withExtension: nil))
        return try Data(contentsOf: url)
    }

    func json(_ name: String) throws -> JSONValue { try JSONCoding.decode(JSONValue.self, from: ByteBuffer(bytes: try fixture(name))) }

    /// Recorded event-stream bytes, kept as base64 text.
    func recorded(_ name: String) throws -> Data {
        try #require(Data(base64Encoded: try fixture(name + ".b64"), options: .ignoreUnknownCharacters))
    }

    let context = InferenceContext(requestID: "req-b1", endpoint: "chat.completions", logger: Logger(label: "t"), receivedAtUnix: 1_700_000_000)
    static let credentials = ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "AWS_REGION": "us-west-2"]

    @Test func translatesTheRequest() throws {
        var request = ChatCompletionRequest(model: "m", messages: [
            .init(role: .system, text: "Be brief."), .init(role: .user, text: "Weather?"),
            .init(role: .assistant, content: nil, toolCalls: [ToolCall(id: "tu_1", name: "get_weather", arguments: #"{"city":"Seattle"}"#)]),
            .init(role: .tool, content: .text("Rain"), toolCallId: "tu_1"), .init(role: .user, text: "Thanks"),
        ])
        request.maxTokens = 300
        request.temperature = 0.5
        request.stop = .one("END")
        request.tools = [Tool(function: .init(name: "get_weather", description: "Weather", parameters: ["type": "object"]))]
        request.toolChoice = "required"
        let body = try BedrockTranslator.converseRequest(from: request)
        #expect(body["system"] == [["text": "Be brief."]])
        #expect(body["messages"]?.arrayValue?.map { $0["role"] } == ["user", "assistant", "user"])
        #expect(body["messages"]?[1]?["content"]?[0] == ["toolUse": ["toolUseId": "tu_1", "name": "get_weather", "input": ["city": "Seattle"]]])
        // The tool result and the next user text merge into one user turn, in order.
        #expect(body["messages"]?[2]?["content"] == [["toolResult": ["toolUseId": "tu_1", "content": [["text": "Rain"]]]], ["text": "Thanks"]])
        #expect(body["inferenceConfig"] == ["maxTokens": 300, "temperature": 0.5, "stopSequences": ["END"]])
        #expect(body["toolConfig"]?["tools"]?[0]?["toolSpec"]?["inputSchema"] == ["json": ["type": "object"]])
        #expect(body["toolConfig"]?["toolChoice"] == ["any": .object([:])])
        request.messages = [.init(role: .user, content: .parts([ContentPart(imageURL: "https://example.com/cat.png")]))]
        #expect(throws: SluiceError.self) { try BedrockTranslator.converseRequest(from: request) }
        request.messages = [.init(role: .user, content: .parts([ContentPart(imageURL: "data:image/jpeg;base64,/9j/")]))]
        #expect(try BedrockTranslator.converseRequest(from: request)["messages"]?[0]?["content"]?[0] == ["image": ["format": "jpeg", "source": ["bytes": "/9j/"]]])
    }

    @Test func translatesResponsesAndGuardrails() throws {
        let completion = try BedrockTranslator.completion(from: json("converse-response.json"), id: "b1", model: "m", created: 1, provider: "br")
        let choice = try #require(completion.choices.first)
        #expect(choice.finishReason == "tool_calls" && choice.message.content == "I'll look that up.")
        #expect(choice.message.toolCalls == [ToolCall(id: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", name: "get_weather", arguments: #"{"city":"Seattle"}"#)])
        #expect(completion.usage == Usage(promptTokens: 389, completionTokens: 58))
        #expect(throws: SluiceError.self) { try BedrockTranslator.completion(from: json("guardrail-response.json"), id: "b1", model: "m", created: 1, provider: "br") }
    }

    @Test func decodesARecordedConverseStream() throws {
        var decoder = AWSEventStreamDecoder()
        var state = BedrockTranslator.StreamState(id: "b1", model: "m", created: 1, provider: "br")
        var chunks: [ChatCompletionChunk] = []
        // In uneven pieces, as a network delivers them.
        let bytes = [UInt8](try recorded("converse-stream-tool"))
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + 37)
            decoder.append(ByteBuffer(bytes: bytes[offset..<end]))
            offset = end
            while let message = try decoder.next() { chunks += try state.chunks(for: message) }
        }
        chunks.append(state.end())
        #expect(chunks.compactMap { $0.choices.first?.delta.content }.joined() == "Checking the weather.")
        let start = chunks.compactMap { $0.choices.first?.delta.toolCalls?.first }.first
        #expect(start?.id == "tooluse_abc" && start?.function?.name == "get_weather" && start?.index == 0)
        #expect(chunks.compactMap { $0.choices.first?.delta.toolCalls?.first?.function?.arguments }.joined() == #"{"city": "Seattle"}"#)
        #expect(chunks.compactMap { $0.choices.first?.finishReason }.last == "tool_calls")
        #expect(chunks.last?.usage == Usage(promptTokens: 412, completionTokens: 37))
    }

    func withProvider<T: Sendable>(
        _ base: String, environment: [String: String] = credentials, apiKey: String? = nil, _ body: @Sendable (BedrockProvider) async throws -> T
    ) async throws -> T {
        let config = HTTPProviderConfig(baseURL: base, apiKey: apiKey)
        return try await withHTTPClient(OpenAICompatibleProvider.makeHTTPClient(for: config)) { client in
            try await body(try BedrockProvider(name: "br", config: config, client: client, environment: environment))
        }
    }

    @Test func signsEveryCallAndMapsStreamsAndErrors() async throws {
        let captured = Captured()
        let response = try fixture("converse-response.json")
        let stream = try recorded("converse-stream-tool")
        let throttled = try recorded("converse-stream-throttled")
        let busy = try fixture("throttling.json")
        let verified = VerifiedSignatures()
        try await FakeUpstream.with({ router in
            router.post("/model/{id}/{operation}") { request, context -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                captured.add(request, body: body)
                verified.check(request, body: body)
                let id = context.parameters.get("id") ?? ""
                switch (id, context.parameters.get("operation") ?? "") {
                case ("busy", _):
                    return Response(status: .tooManyRequests, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: busy)))
                case ("throttled", _):
                    return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(bytes: throttled)))
                case (_, "converse-stream"):
                    return Response(status: .ok, headers: [.contentType: "application/vnd.amazon.eventstream"], body: .init(byteBuffer: ByteBuffer(bytes: stream)))
                default:
                    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: response)))
                }
            }
        }) { base in
            try await withProvider(base) { provider in
                let request = ChatCompletionRequest(model: "anthropic.claude-3-haiku-20240307-v1:0", messages: [.init(role: .user, text: "Seattle?")])
                let result = try await provider.complete(request, context: context)
                #expect(try result.completion().choices.first?.finishReason == "tool_calls")
                var chunks: [ChatCompletionChunk] = []
                for try await event in try await provider.stream(request, context: context) { chunks.append(try event.chunk()) }
                #expect(chunks.compactMap { $0.choices.first?.delta.content }.joined() == "Checking the weather.")
                #expect(chunks.last?.usage == Usage(promptTokens: 412, completionTokens: 37))
                do {
                    _ = try await provider.complete(ChatCompletionRequest(model: "busy", messages: [.init(role: .user, text: "x")]), context: context)
                    Issue.record("expected a 429")
                } catch let error as SluiceError {
                    #expect(error.code == .upstreamRateLimited && error.message.contains("Too many requests"))
                }
                do {
                    for try await _ in try await provider.stream(ChatCompletionRequest(model: "throttled", messages: [.init(role: .user, text: "x")]), context: context) {}
                    Issue.record("expected a mid-stream error")
                } catch let error as SluiceError {
                    #expect(error.code == .upstreamRateLimited && error.message.contains("Too many tokens"))
                }
            }
        }
        #expect(verified.count == 4 && verified.failures.isEmpty, "\(verified.failures)")
        #expect(captured.last?.headers["authorization"]?.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") == true)
        #expect(captured.last?.headers["authorization"]?.contains("/us-west-2/bedrock/aws4_request") == true)
    }

    @Test func aBedrockAPIKeyIsABearerToken() async throws {
        let captured = Captured()
        let response = try fixture("converse-response.json")
        try await FakeUpstream.with({ router in
            router.post("/model/{id}/converse") { request, _ -> Response in
                captured.add(request, body: try await request.body.collect(upTo: 1 << 20))
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(bytes: response)))
            }
        }) { base in
            try await withProvider(base, environment: ["AWS_REGION": "eu-west-1"], apiKey: "ABSK-test") { provider in
                _ = try await provider.complete(ChatCompletionRequest(model: "m", messages: [.init(role: .user, text: "x")]), context: context)
            }
        }
        #expect(captured.last?.headers["authorization"] == "Bearer ABSK-test" && captured.last?.headers["x-amz-date"] == nil)
    }

    @Test func missingRegionOrCredentialsIsAConfigurationError() async throws {
        let config = HTTPProviderConfig(baseURL: "")
        try await withHTTPClient(OpenAICompatibleProvider.makeHTTPClient(for: config)) { client in
            #expect(throws: ConfigError.self) { try BedrockProvider(name: "br", config: config, client: client, environment: ["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"]) }
            #expect(throws: ConfigError.self) { try BedrockProvider(name: "br", config: config, client: client, environment: ["AWS_REGION": "us-east-1"]) }
            let provider = try BedrockProvider(name: "br", config: config, client: client, environment: Self.credentials)
            #expect(provider.host == "bedrock-runtime.us-west-2.amazonaws.com")
        }
    }
}

/// Recomputes each request's signature from what arrived (host, content type, body, date);
/// HTTPTypes keeps `Host` as the request's authority.
final class VerifiedSignatures: Sendable {
    private let state = Mutex<(count: Int, failures: [String])>((0, []))

    func check(_ request: Request, body: ByteBuffer) {
        let headers = Dictionary(request.headers.map { ($0.name.canonicalName, $0.value) }, uniquingKeysWith: { a, _ in a })
        let signer = SigV4Signer(credentials: .init(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), region: "us-west-2", service: "bedrock")
        var failure: String?
        if let amzDate = headers["x-amz-date"], let date = Self.parse(amzDate) {
            let expected = signer.sign(
                method: "POST", path: request.uri.path, headers: [("host", request.head.authority ?? ""), ("content-type", headers["content-type"] ?? "")],
                body: body.readableBytesView, date: date
            ).first { $0.0 == "authorization" }?.1
            if expected != headers["authorization"] { failure = "\(request.uri.path): \(headers["authorization"] ?? "none") != \(expected ?? "none")" }
        } else {
            failure = "\(request.uri.path): no x-amz-date"
        }
        state.withLock {
            $0.count += 1
            if let failure { $0.failures.append(failure) }
        }
    }

    static func parse(_ amzDate: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: amzDate)
    }

    var count: Int { state.withLock { $0.count } }
    var failures: [String] { state.withLock { $0.failures } }
}
