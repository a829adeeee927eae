import Foundation
import NIOCore
import Testing
@testable import SluiceCore

/// `JSONParser` + `JSONValueDecoder` (request bodies) and `ChatCompletionRequest.jsonBytes()`
/// (upstream bodies) must agree with Foundation on every input they accept.
@Suite struct JSONFastPathTests {
    static let bodies: [String] = [
        #"{"model":"m","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16}"#,
        #"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"http://x/y.png","detail":"low"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"42"}],"stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{"a":{"type":"integer","minimum":-3.5}},"required":["a"]},"strict":true}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false,"response_format":{"type":"json_schema","json_schema":{"name":"x","description":"y","schema":{"type":"object"},"strict":true}},"stop":["\n","END"],"max_tokens":5,"max_completion_tokens":6,"temperature":0.7,"top_p":1.0,"seed":-7,"user":"u","n":1,"presence_penalty":-0.5,"frequency_penalty":2,"logit_bias":{"50256":-100,"11":2.5},"logprobs":true,"top_logprobs":3}"#,
        #"  {"messages":[{"content":"tab\there \"quoted\" back\\slash \/ \u00e9\u20ac \ud83d\ude00 ctrl\u0001 nl\n","role":"user","name":"n\u0000x"}],"model":"m","stop":"x","temperature":1e-7,"top_p":1E+0}  "#,
        #"{"model":"m","messages":[{"role":"developer","content":"d"},{"role":"user","content":"é€😀 ok"}],"seed":9007199254740993,"temperature":0,"top_k":40,"min_p":0.05,"chat_template_kwargs":{"enable_thinking":false}}"#,
        #"{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"},"tool_choice":"none","logit_bias":{}}"#,
    ]

    func foundation(_ body: String) throws -> ChatCompletionRequest {
        try JSONDecoder().decode(ChatCompletionRequest.self, from: Data(body.utf8))
    }

    func fast(_ body: String) throws -> ChatCompletionRequest {
        let value = try #require(JSONParser.parse(ByteBuffer(string: body)))
        return try JSONValueDecoder.decode(ChatCompletionRequest.self, from: value)
    }

    @Test(arguments: bodies) func decodesAsFoundationDoes(body: String) throws {
        #expect(try fast(body) == foundation(body))
    }

    @Test(arguments: bodies + [
        #"{"model":"m","messages":[{"role":"user","content":null,"name":null,"extra":1}],"stream":null,"seed":3.0,"odd":null,"stop":[]}"#,
        #"{"model":"m","messages":[],"tool_choice":"auto","tools":[]}"#,
    ]) func readsParsedBodiesAsCodableDoes(body: String) throws {
        let value = try #require(JSONParser.parse(ByteBuffer(string: body)))
        let direct = try #require(ChatCompletionRequest(parsed: value))
        #expect(direct == (try foundation(body)))
    }

    /// Anything `Codable` would refuse, the direct reader leaves to `Codable` (for its error).
    @Test(arguments: [
        #"{"messages":[{"role":"user","content":"x"}]}"#,
        #"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":5}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"text":"x"}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}"#,
        #"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f"}}]}]}"#,
        #"{"model":"m","messages":[],"max_tokens":2.5}"#,
        #"{"model":"m","messages":[],"stream":"yes"}"#,
        #"{"model":"m","messages":[],"stop":[1]}"#,
        #"{"model":"m","messages":[],"tools":[{"type":"function"}]}"#,
        #"{"model":"m","messages":[],"temperature":"hot"}"#,
        #"{"model":"m","messages":[],"seed":1e300}"#,
    ]) func leavesWhatCodableRefusesToCodable(body: String) throws {
        let value = try #require(JSONParser.parse(ByteBuffer(string: body)))
        #expect(ChatCompletionRequest(parsed: value) == nil)
        #expect(throws: (any Error).self) { try foundation(body) }
    }

    @Test(arguments: bodies) func writesTheBytesFoundationWrites(body: String) throws {
        let request = try foundation(body)
        let expected = String(buffer: try JSONCoding.encode(request))
        #expect(String(buffer: try request.jsonBytes()) == expected)
    }

    /// The audit log's request body is the messages array, byte for byte as Foundation writes it.
    @Test(arguments: bodies) func writesMessagesAsFoundationDoes(body: String) throws {
        let request = try foundation(body)
        let expected = String(buffer: try JSONCoding.encode(request.messages))
        #expect(String(buffer: try ChatMessage.jsonArrayBytes(request.messages)) == expected)
    }

    /// The audit log's `details` column is written directly; it must read back through `Codable`
    /// and match Foundation's bytes.
    @Test func writesRequestDetailsAsFoundationDoes() throws {
        let samples = [
            AuditDetails(),
            AuditDetails(
                attempts: [
                    .init(deployment: "a\"b", status: 502, errorCode: "upstream_error", latencyMs: 12.25),
                    .init(deployment: "b", status: 200, errorCode: nil, latencyMs: 3),
                ],
                guardrails: [.init(direction: "input", check: "pii", type: "EMAIL", index: 1, start: 4, end: 19, score: 0.95, action: "redact")],
                guardrailPolicy: "strict", routingScore: 0.125, cacheSimilarity: 0.97, tokensSaved: 42, traceID: "4bf92f3577b34da6a3ce929d0e0e4736"),
        ]
        for details in samples {
            #expect(details.jsonText == String(buffer: try JSONCoding.encode(details)))
            #expect(AuditDetails(jsonText: details.jsonText) == details)
        }
    }

    @Test func writesNumbersAndStringsAsFoundation() throws {
        var request = ChatCompletionRequest(model: "m", messages: [.init(role: .user, text: "\u{1}\u{8}\u{c}\u{1f}\u{7f}\u{2028}/\"\\")])
        for t in [0.7, 1.0, -0.0, 1e20, 1e21, 1e-7, 123456789.123, 5e-324, 0.1 + 0.2, 2.5e15, 1e16] {
            request.temperature = t
            #expect(String(buffer: try request.jsonBytes()) == String(buffer: try JSONCoding.encode(request)))
        }
        request.temperature = .nan
        #expect(throws: (any Error).self) { try request.jsonBytes() }
    }

    @Test func parsesValuesExactly() throws {
        #expect(JSONParser.parse(ByteBuffer(string: #"[0,-0,1.5,-2e3,9223372036854775807,-9223372036854775808,9223372036854775808]"#))
            == .array([.int(0), .int(0), .double(1.5), .double(-2000), .int(.max), .int(.min), .double(9223372036854775808)]))
        #expect(JSONParser.parse(ByteBuffer(string: #""\ud83d\ude00\u00e9\n""#)) == .string("😀é\n"))
        #expect(JSONParser.parse(ByteBuffer(string: #"{"a":{"b":[true,false,null]}}"#)) == ["a": ["b": [true, false, nil]]])
    }

    /// Everything the fast path is not sure of goes to Foundation, which reports it.
    /// Here Foundation's error loses the field (`invalid_json`, no param); the fast path names it.
    @Test func aFractionWhereAnIntegerBelongsNamesTheField() throws {
        let error = SluiceError.fromDecoding(try #require(throws: (any Error).self) {
            try fast(#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":2.5}"#)
        })
        #expect(error.code == .invalidValue)
        #expect(error.param == "max_tokens")
    }

    @Test(arguments: [
        #"{"a":1,}"#, #"{"a":1 "b":2}"#, #"[1,]"#, #"01"#, #"1."#, #"-"#, #".5"#, #"1e"#, #"tru"#, #"nul"#, #""abc"#,
        #"{"a":1}x"#, "\"a\u{1}b\"", #""\x""#, #""\ud800""#, #""\udc00x""#, #""\u12G4""#, #"{"a":1,"a":2}"#, "", " ",
        #"{"a":1e999}"#,
    ]) func refusesWhatItIsNotSureOf(text: String) {
        #expect(JSONParser.parse(ByteBuffer(string: text)) == Optional<JSONValue>.none)
    }

    /// ASCII strings are copied without validation, others validated: both come back exact.
    @Test(arguments: ["", "plain ascii", "caf\u{e9}", "\u{65e5}\u{672c}", "emoji \u{1F600}", "mixed \u{e9} and \\n escape"])
    func stringsComeBackExact(text: String) throws {
        let literal = String(decoding: try JSONEncoder().encode(text), as: UTF8.self)
        #expect(JSONParser.parse(ByteBuffer(string: literal)) == .string(text))
        #expect(JSONParser.parse(ByteBuffer(string: "{\(literal):1}")) == .object([text: .int(1)]))
    }

    @Test func refusesInvalidUTF8AndDeepNesting() {
        var bytes = ByteBuffer(string: "\"a")
        bytes.writeBytes([0xff, 0xfe])
        bytes.writeString("\"")
        #expect(JSONParser.parse(bytes) == Optional<JSONValue>.none)
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(JSONParser.parse(ByteBuffer(string: deep)) == Optional<JSONValue>.none)
        let fine = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(JSONParser.parse(ByteBuffer(string: fine)) != Optional<JSONValue>.none)
    }

    /// Decoding errors carry the coding path Foundation's would, so `param` names the field.
    @Test(arguments: [
        (#"{"messages":[{"role":"user","content":"x"}]}"#, "model", SluiceError.Code.missingParameter),
        (#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"ten"}"#, "max_tokens", .invalidType),
        (#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#, "messages[0].role", .invalidValue),
        (#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"user","content":5}]}"#, "messages[1].content", .invalidType),
        (#"{"model":null,"messages":[]}"#, "model", .invalidType),
        (#"{"model":"m","messages":[{"role":"user","content":[{"text":"x"}]}]}"#, "messages[0].content", .invalidType),
    ]) func namesTheFieldInErrors(body: String, param: String, code: SluiceError.Code) throws {
        let viaFoundation = SluiceError.fromDecoding(try #require(throws: (any Error).self) { try foundation(body) })
        let viaFastPath = SluiceError.fromDecoding(try #require(throws: (any Error).self) { try fast(body) })
        #expect(viaFastPath.param == param)
        #expect(viaFastPath.code == code)
        #expect(viaFoundation.param == viaFastPath.param)
        #expect(viaFoundation.code == viaFastPath.code)
    }
}
