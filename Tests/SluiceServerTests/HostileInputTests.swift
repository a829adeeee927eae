import Foundation
import NIOCore
import SluiceCore
import SluiceProviders
import Testing
@testable import SluiceServer
@testable import SluiceStore

#if canImport(Glibc)
import Glibc
#endif

/// Raw HTTP over a blocking socket on its own thread (the server runs in this process: blocking
/// the cooperative pool would starve it).
enum RawHTTP {
    /// Sends `parts` (pausing `pause` between them; a send error ends sending, as when the server
    /// answered and closed first), then reads until the server closes or `readFor` passes.
    static func exchange(port: Int, _ parts: [[UInt8]], pause: Double = 0, closeAfterSending: Bool = false, readFor: Double = 10) async -> String {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: blockingExchange(port: port, parts, pause: pause, closeAfterSending: closeAfterSending, readFor: readFor))
            }
        }
    }

    private static func blockingExchange(port: Int, _ parts: [[UInt8]], pause: Double, closeAfterSending: Bool, readFor: Double) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "<socket failed>" }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return "<connect failed>" }
        var timeout = timeval(tv_sec: Int(readFor), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        sending: for part in parts {
            var offset = 0
            while offset < part.count {
                let n = part[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break sending }
                offset += n
            }
            if pause > 0 { usleep(useconds_t(pause * 1_000_000)) }
        }
        if closeAfterSending { return "" }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received += buffer[..<n]
            if let text = String(bytes: received, encoding: .utf8), Self.complete(text) { break }
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Whether a response with a Content-Length has arrived whole.
    static func complete(_ text: String) -> Bool {
        guard let split = text.range(of: "\r\n\r\n") else { return false }
        let head = text[..<split.lowerBound].lowercased()
        guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
            let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        else { return false }
        return text[split.upperBound...].utf8.count >= length
    }

    static func status(_ response: String) -> Int? {
        let parts = response.split(separator: " ", maxSplits: 2)
        return parts.count > 1 ? Int(parts[1]) : nil
    }

    static let head = Array("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".utf8)
}

/// Hostile and broken input: every body-read failure is its own 4xx (never a 500), slow clients
/// are cut off, large bodies cannot grow the audit queue without bound, and every request the
/// OpenAI spec allows is accepted.
@Suite(.serialized) struct HostileInputTests {
    static let yaml = TestApp.yaml.replacingOccurrences(
        of: "max_body_bytes: 4096, shutdown_grace_s: 5", with: "max_body_bytes: 4096, shutdown_grace_s: 5, header_timeout_s: 1, body_timeout_s: 1")

    func port(_ base: String) -> Int { Int(base.split(separator: ":").last!)! }

    @Test func brokenBodiesGetTheirOwnClientErrors() async throws {
        try await TestApp.live(yaml: Self.yaml) { base, app, _ in
            let port = port(base)
            let chunk = Array(repeating: UInt8(ascii: "a"), count: 3000)
            let tooLarge = await RawHTTP.exchange(
                port: port,
                [RawHTTP.head + Array("Transfer-Encoding: chunked\r\n\r\n".utf8), Array("bb8\r\n".utf8) + chunk + Array("\r\n".utf8),
                 Array("bb8\r\n".utf8) + chunk + Array("\r\n0\r\n\r\n".utf8)])
            #expect(RawHTTP.status(tooLarge) == 413, "\(tooLarge)")
            #expect(tooLarge.contains("request_too_large"))

            let nonHex = await RawHTTP.exchange(port: port, [RawHTTP.head + Array("Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".utf8)])
            #expect(RawHTTP.status(nonHex) == 400, "\(nonHex)")
            #expect(nonHex.contains("HTTP framing is invalid"))

            let short = await RawHTTP.exchange(
                port: port, [RawHTTP.head + Array("Transfer-Encoding: chunked\r\n\r\n5\r\nab\r\n0\r\n\r\nPOST / HTTP/1.1\r\n\r\n".utf8)])
            #expect(RawHTTP.status(short) == 400, "\(short)")

            // A client that leaves mid-body: 499 in the audit log, not a 500.
            _ = await RawHTTP.exchange(
                port: port, [RawHTTP.head + Array("x-request-id: left-mid-body\r\nContent-Length: 500\r\n\r\n{\"model\":".utf8)], closeAfterSending: true)
            var row: AuditRecord?
            for _ in 0..<100 where row == nil {
                try await Task.sleep(for: .milliseconds(20))
                await app.auditLog.drain()
                row = try await app.store.recent(limit: 10).first { $0.id == "left-mid-body" }
            }
            #expect(row?.status == 499)
            #expect(row?.errorCode == "client_disconnected")
            let statuses = try await app.store.recent(limit: 50).map(\.status)
            #expect(!statuses.contains { $0 >= 500 }, "\(statuses)")
        }
    }

    @Test func anOversizedBodyIsAnsweredToAClientThatWritesItAllFirst() async throws {
        try await TestApp.live(yaml: Self.yaml) { base, _, _ in
            // As Python's urllib does: Connection: close, the whole body, then read.
            let body = [UInt8](repeating: UInt8(ascii: "a"), count: 2 << 20)
            let response = await RawHTTP.exchange(
                port: port(base), [RawHTTP.head + Array("Connection: close\r\nContent-Length: \(body.count)\r\n\r\n".utf8), body], readFor: 5)
            #expect(RawHTTP.status(response) == 413, "\(response.prefix(200))")
        }
    }

    @Test func slowClientsAreCutOff() async throws {
        try await TestApp.live(yaml: Self.yaml) { base, _, _ in
            // One header byte every 200 ms: the head deadline (1 s) ends it, not the idle timer.
            let start = ContinuousClock.now
            let head = await RawHTTP.exchange(
                port: port(base), [RawHTTP.head] + Array("X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".utf8).map { [$0] }, pause: 0.2)
            #expect(RawHTTP.status(head) == 408, "\(head)")
            #expect(head.contains("request_timeout"))
            #expect(ContinuousClock.now - start < .seconds(8))

            let body = await RawHTTP.exchange(port: port(base), [RawHTTP.head + Array("Content-Length: 100\r\n\r\n{".utf8)] + Array(repeating: [0x20], count: 20), pause: 0.2)
            #expect(RawHTTP.status(body) == 408, "\(body)")
            #expect(body.contains("server.body_timeout_s"))
        }
    }

    /// On a kept-alive connection the head deadline is the next request's own: the timer left
    /// armed by the first request neither cuts the second short nor lets it run on.
    @Test func theNextRequestOnAConnectionGetsItsOwnHeadDeadline() async throws {
        try await TestApp.live(yaml: Self.yaml) { base, _, _ in
            let get = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            let trickle = [RawHTTP.head] + Array("X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".utf8).map { [$0] }
            let start = ContinuousClock.now
            // The second request starts 0.3 s after the first, one byte every 0.3 s; its deadline (1 s)
            // falls 1.3 s in, after the first request's would have (1 s).
            let answer = await RawHTTP.exchange(port: port(base), [get] + trickle, pause: 0.3)
            let elapsed = ContinuousClock.now - start
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(200))")
            #expect(answer.contains("HTTP/1.1 408") && answer.contains("request_timeout"), "\(answer)")
            #expect(elapsed >= .milliseconds(1250), "cut short after \(elapsed)")
            #expect(elapsed < .seconds(8))
        }
    }

    /// A large body that keeps arriving at a healthy rate may take longer than body_timeout_s.
    @Test func aSteadyLargeBodyOutlastsTheBodyDeadline() async throws {
        let yaml = Self.yaml.replacingOccurrences(of: "max_body_bytes: 4096", with: "max_body_bytes: 1048576")
        try await TestApp.live(yaml: yaml) { base, _, _ in
            let json = Array(#"{"model":"sim-small","messages":[{"role":"user","content":""#.utf8) + Array(repeating: UInt8(ascii: "a"), count: 400_000)
                + Array(#""}]}"#.utf8)
            // 8 parts 200 ms apart: 1.6 s in all (the deadline is 1 s), about 250 KB/s.
            let size = (json.count + 7) / 8
            let parts = stride(from: 0, to: json.count, by: size).map { Array(json[$0..<min($0 + size, json.count)]) }
            let response = await RawHTTP.exchange(
                port: port(base), [RawHTTP.head + Array("Content-Length: \(json.count)\r\n\r\n".utf8)] + parts, pause: 0.2)
            // Read whole and judged by the pipeline (100,000 tokens do not fit sim-small's window), not cut off with a 408.
            #expect(RawHTTP.status(response) == 400 && response.contains("context_length_exceeded"), "\(response.prefix(300))")
        }
    }

    @Test func connectionsBeyondTheCapWaitForOneToClose() async throws {
        let yaml = Self.yaml.replacingOccurrences(of: "header_timeout_s: 1, body_timeout_s: 1", with: "header_timeout_s: 1, body_timeout_s: 1, max_connections: 2")
        try await TestApp.live(yaml: yaml) { base, _, _ in
            let port = port(base)
            // Two connections that send nothing hold both places (the head deadline starts at a first byte).
            let idle = (0..<2).map { _ in Task { await RawHTTP.exchange(port: port, [], readFor: 2) } }
            try await Task.sleep(for: .milliseconds(300))
            let get = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            let waiting = await RawHTTP.exchange(port: port, [get], readFor: 1)
            #expect(waiting.isEmpty, "served beyond the cap: \(waiting)")
            for task in idle { _ = await task.value }  // they close after 2 s
            let served = await RawHTTP.exchange(port: port, [get], readFor: 5)
            #expect(RawHTTP.status(served) == 200, "\(served)")
        }
    }

    @Test func invalidUTF8IsCalledInvalidUTF8() async throws {
        try await TestApp.live(yaml: Self.yaml) { base, _, _ in
            let json = Array(#"{"model":"sim-small","messages":[{"role":"user","content":"hi "#.utf8) + [0xFF, 0xFE] + Array(#""}]}"#.utf8)
            let response = await RawHTTP.exchange(port: port(base), [RawHTTP.head + Array("Content-Length: \(json.count)\r\n\r\n".utf8) + json])
            #expect(RawHTTP.status(response) == 400)
            #expect(response.contains("not valid UTF-8 (at byte 62)"), "\(response)")
        }
    }

    /// Requests OpenAI's current spec allows, once refused with 400.
    @Test(arguments: [
        #"{"model":"sim-small","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"custom","custom":{"name":"grep","input":"foo"}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}]}"#,
        #"{"model":"sim-small","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"custom","custom":{"name":"grep","description":"Searches","format":{"type":"text"}}}]}"#,
        #"{"model":"sim-small","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}},{"type":"custom","custom":{"name":"grep"}}],"tool_choice":{"type":"custom","custom":{"name":"grep"}}}"#,
        #"{"model":"sim-small","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"required","tools":[{"type":"function","function":{"name":"f"}}]}}}"#,
        #"{"model":"sim-small","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"function_call":{"name":"f","arguments":"{}"}},{"role":"function","name":"f","content":null}]}"#,
    ])
    func everyRequestTheSpecAllowsIsAccepted(body: String) async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
            }
        }
        await app.providers.shutdown()
    }

    /// Found by `make fuzz`: `dimensions: 1e9` had the simulated provider build a billion floats.
    @Test func embeddingDimensionsAreBounded() async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            let body = ByteBuffer(string: #"{"model":"sim-embed","input":"hi","dimensions":1000000000}"#)
            try await client.execute(uri: "/v1/embeddings", method: .post, body: body) { response in
                #expect(response.status == .badRequest)
                #expect(response.body.json?["error"]?["param"] == "dimensions")
            }
        }
        await app.providers.shutdown()
    }

    /// Found by `make fuzz`: OpenAI's schema requires `logprobs` and `message.refusal`, null when absent.
    @Test func completionsCarryTheFieldsTheSchemaRequires() async throws {
        let app = try await TestApp.build()
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: chatBody()) { response in
                let choice = response.body.json?["choices"]?[0]
                #expect(choice?.objectValue?["logprobs"] == .null)
                #expect(choice?["message"]?.objectValue?["refusal"] == .null)
            }
        }
        await app.providers.shutdown()
    }

    @Test func customToolsReachAnOpenAIUpstreamAsSent() throws {
        let body = #"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"custom","custom":{"input":"foo","name":"grep"}}]},{"role":"function","name":"f","content":null}],"tools":[{"custom":{"name":"grep"},"type":"custom"}]}"#
        let request = try JSONCoding.decode(ChatCompletionRequest.self, from: ByteBuffer(string: body))
        let encoded = try JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(request))
        #expect(encoded["tools"]?[0] == ["custom": ["name": "grep"], "type": "custom"])
        #expect(encoded["messages"]?[1]?["tool_calls"]?[0] == ["custom": ["input": "foo", "name": "grep"], "id": "c1", "type": "custom"])
        // A provider that knows only functions refuses custom tools by name, and says why.
        #expect(throws: SluiceError.self) { try AnthropicTranslator.messagesRequest(from: request, defaultMaxTokens: 10) }
    }

    @Test func theAuditQueueIsBoundedInBytes() async throws {
        var config = AuditLogConfig(queueCapacity: 1000, batchSize: 1000, flushIntervalMs: 0)
        config.queueMaxBytes = 1 << 20
        let store = SQLiteAuditLogStore(database: try SQLiteDatabase(path: ":memory:"))
        let writer = AuditLogWriter(store: store, config: config, logger: .init(label: "test"))
        let big = String(repeating: "x", count: 300_000)
        for i in 0..<10 {
            var record = AuditRecord(
                id: "r\(i)", time: 0, endpoint: "chat.completions", modelRequested: "m", deployment: nil, status: 200, errorCode: nil,
                latencyMs: 1, ttftMs: nil, tokensIn: 1, tokensOut: 1, costUSD: 0, cacheStatus: "miss", stream: false, attempts: 1)
            record.captured = CapturedExchange(messages: [ChatMessage(role: .user, text: big)])
            writer.submit(record)
        }
        // 1 MiB holds three rows of 300 KB; the other seven are queued without their bodies.
        #expect(writer.bodiesDropped == 7)
        #expect(writer.backlog == 10)
        #expect(writer.queuedBytes <= 1 << 20)
        await writer.drain()
        #expect(writer.queuedBytes == 0)
        #expect(writer.written == 10)
    }
}
