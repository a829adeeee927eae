import Foundation
import NIOCore
import Testing
@testable import SluiceCore

@Suite struct CompletionSummaryReaderTests {
    struct Decoded: Decodable, Equatable {
        struct Choice: Decodable, Equatable {
            var finishReason: String?
            enum CodingKeys: String, CodingKey { case finishReason = "finish_reason" }
        }
        var choices: [Choice]
        var usage: Usage?
    }

    /// What `JSONDecoder` makes of a document, as a summary; nil if it is not a completion.
    func reference(_ json: String) -> CompletionSummaryReader.Summary? {
        guard let d = try? JSONDecoder().decode(Decoded.self, from: Data(json.utf8)) else { return nil }
        return .init(usage: d.usage, finishReason: d.choices.first?.finishReason)
    }

    func read(_ json: String) -> CompletionSummaryReader.Summary? {
        CompletionSummaryReader.read(ByteBuffer(string: json))
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
}
