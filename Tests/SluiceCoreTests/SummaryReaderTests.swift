import Foundation
import NIOCore
import Testing
@testable import SluiceCore

@Suite struct SummaryReaderTests {
    struct Decoded: Decodable, Equatable {
        struct Choice: Decodable, Equatable {
            var finishReason: String?
            enum CodingKeys: String, CodingKey { case finishReason = "finish_reason" }
        }
        var choices: [Choice]
        var usage: Usage?
    }

    /// What `JSONDecoder` makes of a document, as a summary; nil if it is not a completion.
    func reference(_ json: String) -> SummaryReader.Summary? {
        guard let d = try? JSONDecoder().decode(Decoded.self, from: Data(json.utf8)) else { return nil }
        return .init(usage: d.usage, finishReason: d.choices.first?.finishReason)
    }

    func read(_ json: String) -> SummaryReader.Summary? {
        SummaryReader.completion(ByteBuffer(string: json))
    }

    @Test func readsTypicalAnswers() {
        let openAI = #"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt","choices":[{"index":0,"message":{"role":"assistant","content":"the \"usage\": {} is {here}"},"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0}},"system_fingerprint":"fp"}"#
        #expect(read(openAI) == .init(usage: Usage(promptTokens: 19, completionTokens: 10), finishReason: "length"))
        #expect(read(openAI) == reference(openAI))

        let spaced = "{ \"usage\" : null ,\n \"choices\" : [ { \"finish_reason\" : null } , {\"finish_reason\":\"stop\"} ] }"
        #expect(read(spaced) == .init(usage: nil, finishReason: nil))
        #expect(read(spaced) == reference(spaced))

        let noUsage = #"{"choices":[]}"#
        #expect(read(noUsage) == .init(usage: nil, finishReason: nil))
    }

    @Test func declinesWhatItCannotReadWithCertainty() {
        // Each of these goes to JSONDecoder instead.
        #expect(read(#"{"choices":[],"usage":{"prompt_tokens":1.0}}"#) == nil)
        #expect(read(#"{"choices":[],"usage":{"prompt_tokens":1e3}}"#) == nil)
        #expect(read(#"{"choices":[],"usage":{"prompt_tokens":-1}}"#) == nil)
        #expect(read(#"{"choices":[{"finish_reason":"st\u006fp"}]}"#) == nil)
        #expect(read(#"{"us\u0061ge":{},"choices":[]}"#) == nil)
        #expect(read(#"{"usage":{}}"#) == nil)  // no choices: not a completion
        #expect(read(#"{"choices":[]} trailing"#) == nil)
        #expect(read(#"{"choices":[],"x":[1,2}"#) == nil)  // invalid JSON in a skipped value
        #expect(read(#"["choices"]"#) == nil)
        #expect(read("") == nil)
        #expect(read(#"{"choices":[],"usage":{"prompt_tokens":12"#) == nil)  // cut off inside a number
    }

    @Test func agreesWithJSONDecoderOnGeneratedDocuments() throws {
        var rng = SystemRandomNumberGenerator()
        let reasons: [String?] = [nil, "stop", "length", "tool_calls"]
        let noise: [String] = [
            #""id":"x""#, #""created":1700000000"#, #""object":"chat.completion""#, #""nested":{"usage":{"prompt_tokens":999},"choices":[{"finish_reason":"bogus"}]}"#,
            #""text":"a } ] \" \\ { [ , : usage""#, #""list":[1,-2.5e3,true,false,null,{"a":[{}]}]"#, #""emoji":"héllo 👋""#,
        ]
        for _ in 0..<2_000 {
            var members: [String] = []
            let reason = reasons.randomElement(using: &rng)!
            var choice: [String] = [#""index":0"#, #""message":{"role":"assistant","content":"hi"}"#]
            choice.append(#""finish_reason":"# + (reason.map { "\"\($0)\"" } ?? "null"))
            choice.shuffle(using: &rng)
            let extraChoices = Int.random(in: 0...2, using: &rng)
            members.append(#""choices":["# + (["{" + choice.joined(separator: ",") + "}"] + Array(repeating: #"{"finish_reason":"other"}"#, count: extraChoices)).joined(separator: ",") + "]")
            switch Int.random(in: 0...3, using: &rng) {
            case 0: break
            case 1: members.append(#""usage":null"#)
            default:
                let p = Int.random(in: 0...100_000, using: &rng)
                let c = Int.random(in: 0...100_000, using: &rng)
                var fields = [#""prompt_tokens":\#(p)"#, #""completion_tokens":\#(c)"#, #""total_tokens":\#(p + c + Int.random(in: 0...3, using: &rng))"#]
                fields.append(#""completion_tokens_details":{"reasoning_tokens":5}"#)
                fields.shuffle(using: &rng)
                members.append(#""usage":{"# + fields.joined(separator: ",") + "}")
            }
            members += noise.shuffled(using: &rng).prefix(Int.random(in: 0...noise.count, using: &rng))
            members.shuffle(using: &rng)
            let sep = Bool.random(using: &rng) ? "," : " ,\n  "
            let json = "{" + members.joined(separator: sep) + "}"
            let expected = try #require(reference(json), "reference failed on \(json)")
            #expect(read(json) == expected, "\(json)")
        }
    }

    func chunkReference(_ json: String) throws -> ChunkSummary {
        ChunkSummary(try JSONDecoder().decode(ChatCompletionChunk.self, from: Data(json.utf8)))
    }

    @Test func readsStreamChunks() throws {
        let content = #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}"#
        let summary = try #require(SummaryReader.chunk(ByteBuffer(string: content)))
        #expect(summary == (try chunkReference(content)))
        #expect(summary.outputBytes == 5)
        #expect(summary.choiceCount == 1)

        let usage = #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#
        #expect(SummaryReader.chunk(ByteBuffer(string: usage)) == (try chunkReference(usage)))

        let tool = #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\""}}]},"finish_reason":null}]}"#
        let toolSummary = try #require(SummaryReader.chunk(ByteBuffer(string: tool)))
        // Written lengths: escapes count as written, so this bounds the decoded size from above.
        #expect(toolSummary.outputBytes == "lookup".utf8.count + #"{\"q\""#.utf8.count)
        #expect(toolSummary.outputBytes >= (try chunkReference(tool)).outputBytes)

        // An error object mid-stream is not a chunk: left to the decoder (which rejects it).
        #expect(SummaryReader.chunk(ByteBuffer(string: #"{"error":{"message":"overloaded"}}"#)) == nil)
        #expect(throws: (any Error).self) { try ChatStreamEvent(encoded: ByteBuffer(string: #"{"error":{"message":"x"}}"#)) }
    }

    @Test func chunkSummariesAgreeWithDecodedChunks() throws {
        var rng = SystemRandomNumberGenerator()
        let words = ["Hello", " world", "", " 👋", " héllo", " {}[],:"]
        for _ in 0..<2_000 {
            var delta: [String] = []
            if Bool.random(using: &rng) { delta.append(#""role":"assistant""#) }
            switch Int.random(in: 0...3, using: &rng) {
            case 0: break
            case 1: delta.append(#""content":null"#)
            case 2: delta.append(#""content":"\#(words.randomElement(using: &rng)!)""#)
            default:
                let name = Bool.random(using: &rng) ? #""name":"fn","# : ""
                delta.append(#""tool_calls":[{"index":0,"function":{\#(name)"arguments":"abc"}}]"#)
            }
            delta.shuffle(using: &rng)
            let finish = ["null", #""stop""#, #""length""#].randomElement(using: &rng)!
            let choiceCount = Int.random(in: 0...2, using: &rng)
            let choices = (0..<choiceCount).map { i in #"{"index":\#(i),"delta":{\#(delta.joined(separator: ","))},"finish_reason":\#(finish),"logprobs":null}"# }
            var members = [#""id":"c""#, #""object":"chat.completion.chunk""#, #""created":1"#, #""model":"m""#, #""choices":[\#(choices.joined(separator: ","))]"#]
            if Int.random(in: 0...3, using: &rng) == 0 { members.append(#""usage":{"prompt_tokens":4,"completion_tokens":7,"total_tokens":11}"#) }
            if Bool.random(using: &rng) { members.append(#""usage":null"#) }
            members.shuffle(using: &rng)
            // Duplicate "usage" keys are not valid input; keep the first.
            var seen = Set<String>()
            members = members.filter { seen.insert(String($0.prefix(8))).inserted }
            let json = "{" + members.joined(separator: ",") + "}"
            let expected = try chunkReference(json)
            #expect(SummaryReader.chunk(ByteBuffer(string: json)) == expected, "\(json)")
        }
    }

    /// The audit log's answer text comes from the bytes; it must be what decoding the completion gives.
    @Test(arguments: [
        #"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! \"quoted\" \u00e9\n\ud83d\ude00 tab\t"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#,
        #"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"t2","type":"function","function":{"arguments":"{}","name":"now"}}]},"finish_reason":"tool_calls"}]}"#,
        #"{ "id":"c", "object":"chat.completion", "created":1, "choices" : [ {"message":{"content":"a","role":"assistant"},"index":0,"finish_reason":"stop"} , {"index":1,"finish_reason":"stop","message":{"role":"assistant","content":"b","refusal":null}} ] , "model":"m" }"#,
        #"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"x","tool_calls":null},"finish_reason":"stop"}]}"#,
    ]) func readsAnswerTextAsDecodingDoes(json: String) throws {
        let read = try #require(SummaryReader.answer(ByteBuffer(string: json)))
        let completion = try JSONDecoder().decode(ChatCompletion.self, from: Data(json.utf8))
        let decoded = completion.choices.map { choice in
            AnswerText(content: choice.message.content, toolCalls: (choice.message.toolCalls ?? []).map { .init(name: $0.function.name, arguments: $0.function.arguments) })
        }
        #expect(read == decoded)
        #expect(read.allSatisfy { $0.content != nil || !$0.toolCalls.isEmpty })
        // Through `ChatResult`, the same from the bytes and from a decoded value.
        #expect(try ChatResult(encoded: ByteBuffer(string: json)).answerText() == decoded)
        #expect(try ChatResult(completion: completion).answerText() == decoded)
    }

    @Test func answerTextDeclinesWhatIsNotACompletion() {
        #expect(SummaryReader.answer(ByteBuffer(string: #"{"choices":[{"message":{"content":"bad \x escape"}}]}"#)) == nil)
        #expect(SummaryReader.answer(ByteBuffer(string: #"{"choices":[{"message":{"content":7}}]}"#)) == nil)
        #expect(SummaryReader.answer(ByteBuffer(string: #"{"choices":[{"message":{"content":"a"}}]"#)) == nil)
        #expect(SummaryReader.answer(ByteBuffer(string: #"{"id":"x"}"#)) == nil)
    }

    @Test func readsTheFirstDeltaContent() throws {
        let chunk = #"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi \"there\"\n"},"finish_reason":null},{"index":1,"delta":{"content":"other"}}]}"#
        #expect(SummaryReader.firstDeltaContent(ByteBuffer(string: chunk)) == .some("Hi \"there\"\n"))
        #expect(try ChatStreamEvent(encoded: ByteBuffer(string: chunk)).firstDeltaContent() == "Hi \"there\"\n")
        let empty = #"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#
        #expect(SummaryReader.firstDeltaContent(ByteBuffer(string: empty)) == .some(nil))
        #expect(SummaryReader.firstDeltaContent(ByteBuffer(string: #"{"choices":[{"delta":{"content":1}}]}"#)) == nil)
    }
}
