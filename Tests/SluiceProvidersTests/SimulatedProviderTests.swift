import Logging
import SluiceCore
import Testing
@testable import SluiceProviders

@Suite struct SimulatedProviderTests {
    func context(_ headers: [String: String] = [:]) -> InferenceContext {
        InferenceContext(requestID: "req-sim", endpoint: "chat.completions", logger: Logger(label: "t"), headers: headers, receivedAtUnix: 0)
    }

    var provider: SimulatedProvider {
        var config = SimulatedProviderConfig()
        config.reply = "one two three four"
        return SimulatedProvider(name: "sim", config: config, timeouts: Timeouts(firstTokenMs: 100))
    }

    func ask(_ text: String = "hello there") -> ChatCompletionRequest {
        ChatCompletionRequest(model: "small", messages: [.init(role: .user, text: text)])
    }

    @Test func answersFromConfigAndHeaders() async throws {
        let fixed = try await provider.complete(ask(), context: context())
        #expect(try fixed.completion().choices[0].message.content == "one two three four")
        #expect(try fixed.completion().usage?.completionTokens == 4)

        let echo = try await provider.complete(ask("repeat me"), context: context(["x-sim-mode": "echo"]))
        #expect(try echo.completion().choices[0].message.content == "repeat me")

        let long = try await provider.complete(ask(), context: context(["x-sim-tokens": "10"]))
        #expect(try long.completion().usage?.completionTokens == 10)
        #expect(try long.completion().choices[0].message.content == "one two three four one two three four one two")
    }

    @Test func honoursStopAndMaxTokens() async throws {
        var r = ask()
        r.stop = .one("three")
        let stopped = try await provider.complete(r, context: context())
        #expect(try stopped.completion().choices[0].message.content == "one two ")
        #expect(try stopped.completion().choices[0].finishReason == "stop")

        var capped = ask()
        capped.maxTokens = 2
        let result = try await provider.complete(capped, context: context())
        #expect(try result.completion().choices[0].finishReason == "length")
        #expect(try result.completion().usage?.completionTokens == 2)
    }

    @Test func callsToolsAndAnswersSchemas() async throws {
        var r = ask()
        r.tools = [Tool(function: .init(name: "lookup", parameters: ["type": "object", "properties": ["q": ["type": "string"], "n": ["type": "integer", "minimum": 3]], "required": ["q", "n"]]))]
        let call = try await provider.complete(r, context: context())
        #expect(try call.completion().choices[0].finishReason == "tool_calls")
        #expect(try call.completion().choices[0].message.toolCalls?.first?.function.arguments == #"{"n":3,"q":"q"}"#)
        #expect(try call.completion().choices[0].message.content == nil)

        r.messages.append(.init(role: .tool, content: .text("found"), toolCallId: "call_1"))
        let after = try await provider.complete(r, context: context())
        #expect(try after.completion().choices[0].finishReason == "stop")

        var s = ask()
        s.responseFormat = ResponseFormat(type: "json_schema", jsonSchema: .init(name: "x", schema: ["type": "object", "properties": ["tags": ["type": "array", "items": ["enum": ["a", "b"]], "minItems": 2]], "required": ["tags"]]))
        let structured = try await provider.complete(s, context: context())
        #expect(try structured.completion().choices[0].message.content == #"{"tags":["a","a"]}"#)
    }

    @Test func streamsWithToolCallDeltasAndUsage() async throws {
        var r = ask()
        r.stream = true
        r.tools = [Tool(function: .init(name: "lookup", parameters: ["type": "object", "properties": ["q": ["type": "string"]]]))]
        var chunks: [ChatCompletionChunk] = []
        for try await e in try await provider.stream(r, context: context()) { chunks.append(try e.chunk()) }
        let deltas = chunks.compactMap { $0.choices.first?.delta.toolCalls?.first }
        #expect(deltas.first?.function?.name == "lookup")
        #expect(deltas.compactMap { $0.function?.arguments }.joined() == #"{"q":"q"}"#)
        #expect(chunks.last?.usage != nil)
        #expect(chunks.last?.choices.isEmpty == true)
    }

    @Test func injectsFaults() async throws {
        func error(_ fault: String, stream: Bool = false) async -> SluiceError? {
            do {
                var r = ask()
                r.stream = stream
                if stream {
                    for try await _ in try await provider.stream(r, context: context(["x-sim-fault": fault, "x-sim-retry-after": "3"])) {}
                } else {
                    _ = try await provider.complete(r, context: context(["x-sim-fault": fault, "x-sim-retry-after": "3"]))
                }
                return nil
            } catch {
                return error as? SluiceError
            }
        }
        #expect(await error("429")?.httpStatus == 429)
        #expect(await error("429")?.retryAfter == 3)
        #expect(await error("500")?.httpStatus == 502)
        #expect(await error("503")?.upstreamStatus == 503)
        #expect(await error("hang")?.httpStatus == 504)
        #expect(await error("malformed")?.code == .upstreamBadResponse)
        #expect(await error("cut")?.httpStatus == 502)
        #expect(await error("cut", stream: true)?.message.contains("midway") == true)
        #expect(await error("bogus")?.httpStatus == 400)
        #expect(await error("bogus")?.param == "x-sim-fault")
    }

    @Test func embeddingsAreDeterministicAndMeaningful() async throws {
        let request = EmbeddingsRequest(model: "embed", input: .strings(["the cat sat on the mat", "the cat sat on a mat", "quarterly revenue grew"]))
        let a = try await provider.embed(request, context: context())
        let b = try await provider.embed(request, context: context())
        #expect(a == b)
        func vector(_ i: Int) -> [Float] {
            if case .float(let v) = a.data[i].embedding { return v }
            return []
        }
        func cosine(_ x: [Float], _ y: [Float]) -> Float { zip(x, y).reduce(0) { $0 + $1.0 * $1.1 } }
        #expect(vector(0).count == 384)
        #expect(cosine(vector(0), vector(1)) > cosine(vector(0), vector(2)))
    }

    @Test func hostileSchemasStaySmall() async throws {
        var s = ask()
        s.responseFormat = ResponseFormat(type: "json_schema", jsonSchema: .init(name: "x", schema: [
            "type": "object",
            "properties": [
                "n": ["type": "integer", "minimum": 1e300],
                "list": ["type": "array", "items": ["type": "string", "minLength": 1e12], "minItems": 1e15],
            ],
        ]))
        let result = try await provider.complete(s, context: context())
        let content = try #require(try result.completion().choices.first?.message.content)
        #expect(content.count < 2_000_000)
        #expect(content.contains(#""n":1000000000"#))
    }
}
