import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
@testable import SluiceObservability
@testable import SluiceServer

@Suite struct StreamingTests {
    /// The body with the wall-clock `created` field made constant, so it can be compared byte for byte.
    func normalized(_ body: ByteBuffer) -> String {
        String(buffer: body).replacingOccurrences(of: #""created":[0-9]+"#, with: #""created":0"#, options: .regularExpression)
    }

    @Test func framesEventsExactlyAsOpenAIDoes() async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: [HTTPField.Name("x-request-id")!: "r1"],
                body: chatBody(#""stream":true"#)
            ) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/event-stream")
                #expect(response.headers[.cacheControl] == "no-cache")
                let chunk = { (delta: String, finish: String) in
                    #"data: {"choices":[{"delta":\#(delta),"finish_reason":\#(finish),"index":0}],"created":0,"id":"chatcmpl-sim-r1","model":"small","object":"chat.completion.chunk"}"# + "\n\n"
                }
                let expected =
                    chunk(#"{"content":"","role":"assistant"}"#, "null")
                    + chunk(#"{"content":"Hello "}"#, "null")
                    + chunk(#"{"content":"from "}"#, "null")
                    + chunk(#"{"content":"the "}"#, "null")
                    + chunk(#"{"content":"simulator"}"#, "null")
                    + chunk("{}", #""stop""#)
                    + "data: [DONE]\n\n"
                #expect(normalized(response.body) == expected)
            }
        }
        await app.auditLog.drain()
        let row = try #require(try await app.store.recent(limit: 1).first)
        #expect(row.stream)
        #expect(row.status == 200)
        #expect(row.tokensOut == 4)
        #expect(row.ttftMs != nil)
    }

    @Test func sendsTheUsageChunkOnlyWhenAsked() async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            try await client.execute(
                uri: "/v1/chat/completions", method: .post, body: chatBody(#""stream":true,"stream_options":{"include_usage":true}"#)
            ) { response in
                let events = String(buffer: response.body).components(separatedBy: "\n\n").filter { !$0.isEmpty }
                #expect(events.last == "data: [DONE]")
                let usage = events[events.count - 2]
                #expect(usage.contains(#""choices":[]"#))
                #expect(usage.contains(#""usage":{"completion_tokens":4"#))
                // Exactly one event carries usage.
                #expect(events.filter { $0.contains("\"usage\"") }.count == 1)
            }
        }
    }

    @Test func streamsToolCallDeltas() async throws {
        let app = try await TestApp.build()
        let tools = #""stream":true,"tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}}}]"#
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: chatBody(tools)) { response in
                let datas = String(buffer: response.body).components(separatedBy: "\n\n").filter { $0.hasPrefix("data: {") }
                let chunks = try datas.map { try JSONCoding.decode(ChatCompletionChunk.self, from: ByteBuffer(string: String($0.dropFirst(6)))) }
                let calls = chunks.compactMap { $0.choices.first?.delta.toolCalls?.first }
                #expect(calls.first?.id?.hasPrefix("call_") == true)
                #expect(calls.first?.type == "function")
                #expect(calls.first?.function?.name == "lookup")
                #expect(calls.compactMap { $0.function?.arguments }.joined() == #"{"q":"q"}"#)
                #expect(calls.allSatisfy { $0.index == 0 })
                #expect(chunks.compactMap { $0.choices.first?.finishReason }.last == "tool_calls")
                #expect(String(buffer: response.body).hasSuffix("data: [DONE]\n\n"))
            }
        }
    }

    @Test func aStreamThatFailsMidwayEndsWithAnErrorEvent() async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: [HTTPField.Name("x-sim-fault")!: "cut"], body: chatBody(#""stream":true"#)
            ) { response in
                #expect(response.status == .ok)
                let events = String(buffer: response.body).components(separatedBy: "\n\n").filter { !$0.isEmpty }
                #expect(events.count >= 2)
                let last = try #require(events.last)
                #expect(last.hasPrefix(#"data: {"error":{"#))
                #expect(last.contains(#""code":"upstream_error""#))
                #expect(!String(buffer: response.body).contains("[DONE]"))
            }
        }
        await app.auditLog.drain()
        let row = try #require(try await app.store.recent(limit: 1).first)
        #expect(row.status == 502)
        #expect(row.errorCode == "upstream_error")
    }

    @Test func aStreamThatFailsBeforeItStartsGetsAnHTTPError() async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            try await client.execute(
                uri: "/v1/chat/completions", method: .post,
                headers: [HTTPField.Name("x-sim-fault")!: "429", HTTPField.Name("x-sim-retry-after")!: "4"], body: chatBody(#""stream":true"#)
            ) { response in
                #expect(response.status == .tooManyRequests)
                #expect(response.headers[HTTPField.Name("retry-after")!] == "4")
                #expect(response.body.json?["error"]?["type"] == "rate_limit_error")
            }
        }
    }

    @Test func theRequestTimeoutBoundsCompletionsAndStreams() async throws {
        let yaml = TestApp.yaml.replacingOccurrences(of: "shutdown_grace_s: 5", with: "shutdown_grace_s: 5, request_timeout_s: 0.3")
        let app = try await TestApp.build(yaml: yaml)
        try await app.http.test(.router) { client in
            // A whole completion that would take 2 s.
            let started = ContinuousClock.now
            try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: [HTTPField.Name("x-sim-ttft-ms")!: "2000"], body: chatBody()
            ) { response in
                #expect(response.status == .gatewayTimeout)
                #expect(response.body.json?["error"]?["message"]?.stringValue?.contains("request_timeout_s") == true)
            }
            #expect(ContinuousClock.now - started < .seconds(1.5))
            // A stream of 20 tokens at 10 per second: cut off with an error event.
            try await client.execute(
                uri: "/v1/chat/completions", method: .post,
                headers: [HTTPField.Name("x-sim-tps")!: "10", HTTPField.Name("x-sim-tokens")!: "20"], body: chatBody(#""stream":true"#)
            ) { response in
                #expect(response.status == .ok)
                let text = String(buffer: response.body)
                #expect(text.contains(#""code":"upstream_timeout""#))
                #expect(!text.contains("[DONE]"))
            }
            // A stream whose first token would take 2 s: the deadline reaches the pipeline,
            // which runs in a child task for streams, before anything was sent.
            let streamStarted = ContinuousClock.now
            try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: [HTTPField.Name("x-sim-ttft-ms")!: "2000"], body: chatBody(#""stream":true"#)
            ) { response in
                #expect(response.status == .gatewayTimeout, "\(String(buffer: response.body))")
                #expect(response.body.json?["error"]?["message"]?.stringValue?.contains("request_timeout_s") == true)
            }
            #expect(ContinuousClock.now - streamStarted < .seconds(1.5))
        }
    }
}
