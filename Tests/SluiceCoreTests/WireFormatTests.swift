import Foundation
import NIOCore
import Testing
@testable import SluiceCore

@Suite struct WireFormatTests {
    func decode(_ json: String) throws -> ChatCompletionRequest {
        try JSONCoding.decode(ChatCompletionRequest.self, from: ByteBuffer(string: json))
    }

    func decodeError(_ json: String) -> SluiceError {
        do {
            _ = try decode(json)
            return SluiceError(.internalError, "decoded")
        } catch {
            return SluiceError.fromDecoding(error)
        }
    }

    @Test func decodesEveryFieldAndKeepsUnknownOnes() throws {
        let r = try decode("""
            {"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"http://x/y.png"}}]},
             {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
             {"role":"tool","tool_call_id":"c1","content":"42"}],
             "stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
             "tool_choice":"auto","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}},
             "stop":["\\n"],"max_tokens":5,"max_completion_tokens":6,"temperature":0.5,"top_p":0.9,"seed":7,"user":"u","top_k":40}
            """)
        #expect(r.messages.count == 4)
        #expect(r.messages[1].text == "a")
        #expect(r.messages[2].toolCalls?.first?.function.name == "f")
        #expect(r.includeUsageInStream)
        #expect(r.outputTokenLimit == 6)
        #expect(r.stop?.values == ["\n"])
        #expect(r.extra["top_k"] == .int(40))
        // Round trip keeps the unknown field and the image part untouched.
        let again = try JSONCoding.decode(ChatCompletionRequest.self, from: JSONCoding.encode(r))
        #expect(again == r)
    }

    @Test func missingAndWrongTypedFieldsNameTheParam() {
        let missing = decodeError(#"{"messages":[]}"#)
        #expect(missing.code == .missingParameter)
        #expect(missing.param == "model")
        #expect(missing.httpStatus == 400)

        let wrong = decodeError(#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#)
        #expect(wrong.code == .invalidType)
        #expect(wrong.param == "temperature")

        let nested = decodeError(#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"user"}]}"#)
        #expect(nested.param == nil || nested.param?.hasPrefix("messages[1]") == true)

        let role = decodeError(#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#)
        #expect(role.param == "messages[0].role")
    }

    @Test func errorBodyHasOpenAIShape() throws {
        let e = SluiceError(.modelNotFound, "nope", param: "model")
        let json = String(buffer: try JSONCoding.encode(e.body))
        #expect(json == #"{"error":{"code":"model_not_found","message":"nope","param":"model","type":"invalid_request_error"}}"#)
        #expect(e.httpStatus == 404)
        let noParam = String(buffer: try JSONCoding.encode(SluiceError(.invalidJSON, "bad").body))
        #expect(noParam.contains(#""param":null"#))
    }

    @Test func syntaxCheckFindsThePosition() {
        #expect(JSONSyntaxCheck.firstProblem(in: Array(#"{"a": 1}"#.utf8)) == nil)
        #expect(JSONSyntaxCheck.firstProblem(in: Array(#"[1, 2.5e3, "x\u00e9", true, null, {}]"#.utf8)) == nil)
        let p = JSONSyntaxCheck.firstProblem(in: Array("{\"a\": 1,\n \"b\" 2}".utf8))
        #expect(p?.line == 2)
        #expect(p?.column == 6)
        #expect(p?.message.hasPrefix("expected ':'") == true)
        #expect(JSONSyntaxCheck.firstProblem(in: Array(#"{"a": "unterminated"#.utf8))?.message.hasPrefix("unterminated string") == true)
        #expect(JSONSyntaxCheck.firstProblem(in: Array("{} x".utf8))?.message.hasPrefix("unexpected content") == true)
        #expect(JSONSyntaxCheck.firstProblem(in: Array("".utf8)) != nil)
    }

    @Test func tokenEstimateGrowsWithText() {
        #expect(TokenEstimator.tokens(in: "") == 0)
        #expect(TokenEstimator.tokens(in: "hello world, this is forty characters.") >= 9)
        #expect(TokenEstimator.tokens(in: "日本語のテキスト") >= 8)
        let r = ChatCompletionRequest(model: "m", messages: [.init(role: .user, text: String(repeating: "word ", count: 100))])
        #expect((110...140).contains(TokenEstimator.promptTokens(of: r)))
    }

    @Test func priceComputesCost() {
        let price = Price(inputPerMTok: 0.15, outputPerMTok: 0.60)
        #expect(abs(price.cost(of: Usage(promptTokens: 1_000_000, completionTokens: 500_000)) - 0.45) < 1e-12)
    }

    /// A part's text replaced, the rest of the part as sent (Anthropic's `cache_control`, say).
    @Test func replacingAPartsTextKeepsItsOtherMembers() throws {
        let request = try decode(#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"mail ann@example.com","cache_control":{"type":"ephemeral"}}]}]}"#)
        guard case .parts(let parts)? = request.messages[0].content else {
            Issue.record("not parts")
            return
        }
        let replaced = parts[0].replacingText("mail [EMAIL_1]")
        #expect(replaced.text == "mail [EMAIL_1]")
        #expect(replaced.raw == ["type": "text", "text": "mail [EMAIL_1]", "cache_control": ["type": "ephemeral"]])
    }
}
