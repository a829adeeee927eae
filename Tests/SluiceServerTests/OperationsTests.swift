import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SluiceCore
import Testing
@testable import SluiceObservability
@testable import SluiceServer

@Suite struct OperationsTests {
    @Test func notReadyWithoutAHealthyProvider() async throws {
        // Port 9 on loopback: nothing listens, so the only provider is down.
        let yaml = """
            store: { sqlite: ":memory:" }
            providers:
              down: { kind: openai-compatible, base_url: "http://127.0.0.1:9/v1", timeouts: { connect_ms: 300 } }
            models:
              - { name: m, provider: down }
            logging: { level: error }
            auth: { enabled: false }
            """
        let app = try await TestApp.build(yaml: yaml)
        try await app.http.test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = try #require(response.body.json)
                #expect(body["status"] == "not_ready")
                #expect(body["store"] == "ok")
                #expect(body["providers"]?["down"]?.stringValue?.hasPrefix("unhealthy") == true)
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
            // The same upstream failure on a request is a 502, not a 500.
            try await client.execute(
                uri: "/v1/chat/completions", method: .post,
                body: ByteBuffer(string: #"{"model":"m","messages":[{"role":"user","content":"x"}]}"#)
            ) { response in
                #expect(response.status == .badGateway)
                #expect(response.body.json?["error"]?["type"] == "upstream_error")
            }
        }
        // Router tests do not run the services, so close the provider's HTTP client here.
        await app.providers.shutdown()
    }

    @Test func logLinesInBothFormats() throws {
        var text = LineLogHandler(label: "sluice", format: .text)
        text[metadataKey: "request_id"] = "r1"
        let line = text.line(level: .info, message: "request", metadata: ["status": "200", "model": "m"], timestamp: "T")
        #expect(line == "T info sluice: request model=m request_id=r1 status=200\n")

        var json = LineLogHandler(label: "sluice", format: .json)
        json[metadataKey: "request_id"] = "r1"
        let object = json.line(level: .warning, message: "slow \"upstream\"", metadata: ["latency_ms": "12.5"], timestamp: "T")
        #expect(object.hasSuffix("\n"))
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(object.utf8))
        #expect(decoded == ["label": "sluice", "level": "warning", "msg": "slow \"upstream\"", "ts": "T", "request_id": "r1", "latency_ms": "12.5"])
    }

    /// A client string (here a model name) cannot end a log line, forge fields or reach a
    /// terminal raw, in either format.
    @Test func clientValuesCannotForgeLogLines() throws {
        let hostile = "gpt\nT error sluice: forged status=200\u{1B}[31m\u{0}\u{2028}\"q\"=x\\"
        let text = LineLogHandler(label: "sluice", format: .text)
        let line = text.line(level: .info, message: "request", metadata: ["model": .string(hostile), "plain": "ü-ok", "empty": ""], timestamp: "T")
        #expect(line.filter { $0 == "\n" }.count == 1 && line.hasSuffix("\n"))
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || $0.value == 0x2028 })
        #expect(line == #"T info sluice: request empty="" model="gpt\nT error sluice: forged status=200\u{1b}[31m\u{0}\u{2028}\"q\"=x\\" plain=ü-ok"# + "\n")
        let json = LineLogHandler(label: "sluice", format: .json)
        let object = json.line(level: .info, message: "request", metadata: ["model": .string(hostile)], timestamp: "T")
        #expect(object.filter { $0 == "\n" }.count == 1)
        #expect(!object.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || $0.value == 0x2028 })
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(object.utf8))
        #expect(decoded["model"] == hostile)
    }

    @Test func sortedFieldLinesMatchMetadataLines() throws {
        // The request line's path (fields already sorted) writes what the metadata path writes,
        // with the logger's own metadata merged in at its place and the event's fields winning.
        for format in [LineLogHandler.Format.text, .json] {
            var handler = LineLogHandler(label: "sluice", format: format)
            handler[metadataKey: "request_id"] = "r1"
            handler[metadataKey: "hb.request.id"] = "h1"
            handler[metadataKey: "model"] = "from-logger"
            handler[metadataKey: "zone"] = "z"
            let fields: [(key: String, value: String)] = [("cache", "miss"), ("model", "m"), ("status", "200"), ("tokens_in", "3")]
            var metadata: Logger.Metadata = [:]
            for (key, value) in fields { metadata[key] = .string(value) }
            let fast = handler.line(level: .info, message: "request", sortedFields: fields, timestamp: "T")
            #expect(fast == handler.line(level: .info, message: "request", metadata: metadata, timestamp: "T"))
            if format == .text {
                #expect(fast == "T info sluice: request cache=miss model=m request_id=r1 status=200 tokens_in=3 zone=z\n")
            }
        }
    }

    @Test func configValidationCommandShape() throws {
        // `sluice validate` and `serve` load files through this path; a missing file names itself.
        do {
            _ = try SluiceConfig.load(path: "/nonexistent/sluice.yaml")
            Issue.record("loaded a missing file")
        } catch let error as ConfigError {
            #expect(error.description.contains("/nonexistent/sluice.yaml"))
        }
    }
}

@Suite struct RequestIDAndLogOutputTests {
    @Test func requestIDsAreUniqueAndWellFormed() {
        let ids = (0..<20_000).map { _ in RequestIDMiddleware.makeID() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(100) {
            #expect(id.hasPrefix("req_") && id.utf8.count == 32)
            #expect(RequestIDMiddleware.isAcceptable(id))
            #expect(id.dropFirst(4).allSatisfy { $0.isHexDigit && !$0.isUppercase })
        }
        // In time order (by their millisecond prefix), so the audit log's index grows at its end.
        let prefixes = ids.map { $0.prefix(16) }
        #expect(prefixes == prefixes.sorted())
        let millis = UInt64(ids[0].dropFirst(4).prefix(12), radix: 16) ?? 0
        #expect(abs(Double(millis) / 1000 - Date().timeIntervalSince1970) < 60)
    }

    @Test func costsHaveEightDecimals() {
        #expect(OpenAIRoutes.usd(0) == "0.00000000")
        #expect(OpenAIRoutes.usd(0.0000123) == "0.00001230")
        #expect(OpenAIRoutes.usd(12.5) == "12.50000000")
        #expect(OpenAIRoutes.usd(0.123456789) == "0.12345679")
    }

    /// Lines reach the file descriptor whole and in order: from the flusher thread on its own,
    /// and at once for urgent lines and on `flush()`.
    @Test func bufferedLinesArriveInOrder() async throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let output = LogOutput(fd: fds[1])
        for i in 0..<500 { output.write("line \(i)\n", now: false) }
        // The flusher writes without being asked.
        var received = ""
        let deadline = ContinuousClock.now + .seconds(5)
        var buffer = [UInt8](repeating: 0, count: 65536)
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        while !received.hasSuffix("line 499\n") && ContinuousClock.now < deadline {
            let n = read(fds[0], &buffer, buffer.count)
            if n > 0 { received += String(decoding: buffer[0..<n], as: UTF8.self) } else { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(received == (0..<500).map { "line \($0)\n" }.joined())
        output.write("warn\n", now: true)
        let n = read(fds[0], &buffer, buffer.count)
        #expect(n > 0 && String(decoding: buffer[0..<max(0, n)], as: UTF8.self) == "warn\n")
        close(fds[1])
    }

    /// The flusher thread shows as `sluice-log` in `top -H` and perf; it used to carry the name of
    /// the event loop that started it.
    @Test func logFlusherThreadIsNamed() async throws {
        #if os(Linux)
        func named() -> Set<String> {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            return Set(tasks.filter { (try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8)) == "sluice-log\n" })
        }
        let before = named()
        // The output keeps the descriptor for as long as its flusher lives: the process's.
        let output = LogOutput(fd: open("/dev/null", O_WRONLY))
        output.write("one line\n", now: false)
        var started = named().subtracting(before)
        for _ in 0..<100 where started.isEmpty {
            try await Task.sleep(for: .milliseconds(10))
            started = named().subtracting(before)
        }
        // Other tests may start flushers of their own meanwhile; this one's is among these.
        #expect(!started.isEmpty)
        #endif
    }
}
