import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SluiceCore
import SluiceTesting
import Testing
@testable import SluiceProviders

@Suite struct OpenAICompatibleProviderTests {
    let completionJSON = #"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"up-model","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6},"system_fingerprint":"fp"}"#

    func context(_ headers: [String: String] = [:]) -> InferenceContext {
        InferenceContext(requestID: "req-1", endpoint: "chat.completions", logger: Logger(label: "test"), headers: headers, receivedAtUnix: 0)
    }

    func request(stream: Bool = false) -> ChatCompletionRequest {
        ChatCompletionRequest(model: "up-model", messages: [.init(role: .user, text: "hi")], stream: stream)
    }

    func withProvider<T: Sendable>(
        _ baseURL: String, timeouts: Timeouts = .init(), _ body: @Sendable (OpenAICompatibleProvider) async throws -> T
    ) async throws -> T {
        var config = HTTPProviderConfig(baseURL: baseURL + "/v1", apiKey: "sk-upstream", headers: ["x-extra": "yes"], timeouts: timeouts)
        config.maxConnections = 4
        return try await withHTTPClient(OpenAICompatibleProvider.makeHTTPClient(for: config)) { client in
            try await body(OpenAICompatibleProvider(name: "up", config: config, client: client))
        }
    }

    func thrown(_ body: () async throws -> Void) async -> SluiceError? {
        do {
            try await body()
            return nil
        } catch let error as SluiceError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test func forwardsTheUpstreamBytesAndSendsCredentials() async throws {
        let captured = Captured()
        let json = completionJSON
        try await FakeUpstream.with({ router in
            router.post("/v1/chat/completions") { request, _ -> Response in
                captured.add(request, body: try await request.body.collect(upTo: 1 << 20))
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json)))
            }
        }) { base in
            try await withProvider(base) { provider in
                let result = try await provider.complete(request(), context: context())
                #expect(result.encoded.map { String(buffer: $0) } == json)
                #expect(try result.completion().usage == Usage(promptTokens: 5, completionTokens: 1))
                #expect(try result.completion().choices.first?.message.content == "hello")
            }
        }
        #expect(captured.last?.headers["authorization"] == "Bearer sk-upstream")
        #expect(captured.last?.headers["x-extra"] == "yes")
        #expect(captured.last?.body.contains(#""model":"up-model""#) == true)
        #expect(captured.last?.body.contains("stream") == false)
    }

    /// A 400, 413 or 422 is a context-length error only when the upstream's message says so; any
    /// other rejection must not trigger the context-length fallback.
    @Test(arguments: [400, 413, 422]) func onlyAContextLengthMessageIsAContextLengthError(status: Int) {
        let tooLong = UpstreamError.fromResponse(
            status: status, body: ByteBuffer(string: #"{"error":{"message":"This model's maximum context length is 8192 tokens"}}"#), retryAfter: nil, provider: "p")
        #expect(tooLong.code == .contextLengthExceeded)
        let other = UpstreamError.fromResponse(
            status: status, body: ByteBuffer(string: #"{"error":{"message":"Unknown parameter: 'foo'"}}"#), retryAfter: nil, provider: "p")
        #expect(other.code == .upstreamRejected)
        #expect(other.httpStatus == 400)
        #expect(other.message.contains("Unknown parameter"))
    }

    @Test func mapsUpstreamErrorsToTheRightStatus() async throws {
        try await FakeUpstream.with({ router in
            router.post("/429/v1/chat/completions") { _, _ in
                Response(status: .tooManyRequests, headers: [HTTPField.Name("retry-after")!: "7"], body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"message":"slow down"}}"#)))
            }
            router.post("/500/v1/chat/completions") { _, _ in Response(status: .internalServerError) }
            router.post("/503/v1/chat/completions") { _, _ in Response(status: .serviceUnavailable, headers: [HTTPField.Name("retry-after")!: "2"]) }
            router.post("/400/v1/chat/completions") { _, _ in
                Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"message":"context length exceeded"}}"#)))
            }
            router.post("/401/v1/chat/completions") { _, _ in Response(status: .unauthorized) }
            router.post("/malformed/v1/chat/completions") { _, _ in
                Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"id": "x", "choices": [ {"#)))
            }
        }) { base in
            let rate = await thrown { try await withProvider(base + "/429") { _ = try await $0.complete(request(), context: context()) } }
            #expect(rate?.httpStatus == 429)
            #expect(rate?.retryAfter == 7)
            #expect(rate?.message.contains("slow down") == true)

            let e500 = await thrown { try await withProvider(base + "/500") { _ = try await $0.complete(request(), context: context()) } }
            #expect(e500?.httpStatus == 502)
            #expect(e500?.upstreamStatus == 500)

            let e503 = await thrown { try await withProvider(base + "/503") { _ = try await $0.complete(request(), context: context()) } }
            #expect(e503?.httpStatus == 502)
            #expect(e503?.upstreamStatus == 503)
            #expect(e503?.retryAfter == 2)

            let e400 = await thrown { try await withProvider(base + "/400") { _ = try await $0.complete(request(), context: context()) } }
            #expect(e400?.httpStatus == 400)
            #expect(e400?.message.contains("context length exceeded") == true)

            let e401 = await thrown { try await withProvider(base + "/401") { _ = try await $0.complete(request(), context: context()) } }
            #expect(e401?.httpStatus == 502)

            let bad = await thrown { try await withProvider(base + "/malformed") { _ = try await $0.complete(request(), context: context()) } }
            #expect(bad?.code == .upstreamBadResponse)
            #expect(bad?.httpStatus == 502)

            // The same errors before a stream's first byte.
            let streamRate = await thrown { try await withProvider(base + "/429") { _ = try await $0.stream(request(stream: true), context: context()) } }
            #expect(streamRate?.httpStatus == 429)
        }
    }

    @Test func timesOutWaitingForTheFirstByte() async throws {
        try await FakeUpstream.with({ router in
            router.post("/v1/chat/completions") { _, _ -> Response in
                try await Task.sleep(for: .seconds(10))
                return Response(status: .ok)
            }
        }) { base in
            let started = ContinuousClock.now
            let error = await thrown {
                try await withProvider(base, timeouts: Timeouts(firstTokenMs: 200)) { _ = try await $0.complete(request(), context: context()) }
            }
            #expect(error?.httpStatus == 504)
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }

    @Test func unreachableUpstreamIs502() async throws {
        // Port 9 (discard) on loopback: nothing listens there.
        let error = await thrown {
            try await withProvider("http://127.0.0.1:9", timeouts: Timeouts(connectMs: 1000)) { _ = try await $0.complete(request(), context: context()) }
        }
        #expect(error?.httpStatus == 502)
    }

    @Test func streamsEventByEventAndAsksForUsage() async throws {
        let captured = Captured()
        let events = [
            #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
            #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}"#,
            #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
        ]
        let wire = events.map { "data: \($0)\r\n\r\n" }.joined() + "data: [DONE]\r\n\r\n"
        try await FakeUpstream.with({ router in
            router.post("/v1/chat/completions") { request, _ -> Response in
                captured.add(request, body: try await request.body.collect(upTo: 1 << 20))
                // Odd-sized pieces, so events straddle writes.
                let bytes = Array(wire.utf8)
                return Response(
                    status: .ok, headers: [.contentType: "text/event-stream"],
                    body: .init { writer in
                        var i = 0
                        while i < bytes.count {
                            let n = min(37, bytes.count - i)
                            try await writer.write(ByteBuffer(bytes: bytes[i..<i + n]))
                            i += n
                        }
                        try await writer.finish(nil)
                    })
            }
            router.post("/cut/v1/chat/completions") { _, _ -> Response in
                Response(status: .ok, headers: [.contentType: "text/event-stream"], body: .init(byteBuffer: ByteBuffer(string: "data: \(events[0])\n\n")))
            }
        }) { base in
            try await withProvider(base) { provider in
                var received: [String] = []
                for try await event in try await provider.stream(request(stream: true), context: context()) {
                    received.append(event.encoded.map { String(buffer: $0) } ?? "")
                }
                #expect(received == events)
            }
            let cut = await thrown {
                try await withProvider(base + "/cut") { provider in
                    for try await _ in try await provider.stream(request(stream: true), context: context()) {}
                }
            }
            #expect(cut?.httpStatus == 502)
            #expect(cut?.message.contains("without [DONE]") == true)
        }
        #expect(captured.last?.body.contains(#""stream_options":{"include_usage":true}"#) == true)
        #expect(captured.last?.body.contains(#""stream":true"#) == true)
    }
}
