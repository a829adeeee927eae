import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SluiceCore
import SluiceTesting
import Synchronization
import Testing
@testable import SluiceObservability
@testable import SluiceServer

/// OpenTelemetry traces, exported over OTLP/HTTP (JSON here) to a collector stand-in: the
/// request's span continues the client's `traceparent`, stages and the upstream attempt are its
/// descendants, and the audit row keeps the trace id.
@Suite struct TracingTests {
    /// OTLP/JSON writes ids as hex (the OTLP spec) or base64 (protobuf's JSON mapping): hex either way here.
    static func hex(_ id: String) -> String {
        if id.count == 32 || id.count == 16, id.allSatisfy(\.isHexDigit) { return id.lowercased() }
        guard let data = Data(base64Encoded: id) else { return id }
        return data.map { String(format: "%02x", $0) }.joined()
    }

    /// Runs `body` with the port of an OTLP/HTTP collector stand-in; answers the spans it received.
    static func withCollector<T: Sendable>(_ body: @Sendable (Int, _ received: @Sendable () -> Bool) async throws -> T) async throws -> (T, [JSONValue]) {
        let batches = Mutex<[JSONValue]>([])
        let router = Router()
        router.post("/v1/traces") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 4 * 1024 * 1024)
            if let json = try? JSONCoding.decode(JSONValue.self, from: body) { batches.withLock { $0.append(json) } }
            return .ok
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let collector = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: Logger(label: "collector"))
        let result = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await collector.runService() }
            var it = ports.makeAsyncIterator()
            let port = try #require(await it.next())
            let result = try await body(port) { !batches.withLock { $0.isEmpty } }
            group.cancelAll()
            return result
        }
        var spans: [JSONValue] = []
        for batch in batches.withLock({ $0 }) {
            for rs in batch["resourceSpans"]?.arrayValue ?? [] {
                for ss in rs["scopeSpans"]?.arrayValue ?? [] { spans += ss["spans"]?.arrayValue ?? [] }
            }
        }
        return (result, spans)
    }

    /// One chat completion, with the given `traceparent` if any.
    static func chat(_ base: String, traceparent: String?) async throws {
        var request = HTTPClientRequest(url: base + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        if let traceparent { request.headers.add(name: "traceparent", value: traceparent) }
        request.body = .bytes(ByteBuffer(string: #"{"model":"sim-small","messages":[{"role":"user","content":"hi"}]}"#))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.status == .ok)
        _ = try await response.body.collect(upTo: 1 << 20)
    }

    @Test func spansContinueTheClientsTraceAndCoverStagesAndAttempts() async throws {
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        let parentSpan = "00f067aa0ba902b7"
        let (rowTrace, spans) = try await Self.withCollector { port, received in
            let yaml = TestApp.yaml + """

                telemetry: { otlp_endpoint: "http://127.0.0.1:\(port)", otlp_protocol: http/json, export_interval_ms: 50 }
                """
            return try await TestApp.live(yaml: yaml) { base, app, _ in
                try await Self.chat(base, traceparent: "00-\(traceID)-\(parentSpan)-01")
                // Spans are exported every 50 ms.
                for _ in 0..<100 where !received() { try await Task.sleep(for: .milliseconds(50)) }
                try await Task.sleep(for: .milliseconds(200))
                await app.auditLog.drain()
                return try await app.store.recent(limit: 1).first?.details.traceID
            }
        }
        do {  // what the collector received
            let byName = Dictionary(spans.compactMap { s in s["name"]?.stringValue.map { ($0, s) } }, uniquingKeysWith: { a, _ in a })
            let root = try #require(byName["chat sim-small"], "\(byName.keys.sorted())")
            #expect(Self.hex(root["traceId"]?.stringValue ?? "") == traceID)
            #expect(Self.hex(root["parentSpanId"]?.stringValue ?? "") == parentSpan)
            for name in ["sluice.stage.flow", "sluice.stage.conversation", "sluice.stage.guardrail", "sluice.stage.route", "sluice.stage.admit", "sluice.stage.cache", "upstream sim-small"] {
                let span = try #require(byName[name], "\(name) in \(byName.keys.sorted())")
                #expect(Self.hex(span["traceId"]?.stringValue ?? "") == traceID, "\(name)")
            }
            // Each stage's parent is the one outside it; the attempt is inside the innermost stage.
            func id(_ name: String) -> String { Self.hex(byName[name]?["spanId"]?.stringValue ?? "") }
            func parent(_ name: String) -> String { Self.hex(byName[name]?["parentSpanId"]?.stringValue ?? "") }
            #expect(parent("sluice.stage.flow") == id("chat sim-small"))
            #expect(parent("sluice.stage.conversation") == id("sluice.stage.flow"))
            #expect(parent("sluice.stage.guardrail") == id("sluice.stage.conversation"))
            #expect(parent("sluice.stage.route") == id("sluice.stage.guardrail"))
            #expect(parent("upstream sim-small") == id("sluice.stage.cache"))
            #expect(rowTrace == traceID)
        }
    }

    @Test func aSampleRatioOfZeroRecordsOnlyTracesTheCallerSampled() async throws {
        let sampledTrace = "5bf92f3577b34da6a3ce929d0e0e4736"
        let (_, spans) = try await Self.withCollector { port, received in
            let yaml = TestApp.yaml + """

                telemetry: { otlp_endpoint: "http://127.0.0.1:\(port)", otlp_protocol: http/json, export_interval_ms: 50, trace_sample_ratio: 0 }
                """
            try await TestApp.live(yaml: yaml) { base, _, _ in
                for traceparent in [nil, "00-\(sampledTrace)-00f067aa0ba902b7-01", nil] {
                    try await Self.chat(base, traceparent: traceparent)
                }
                for _ in 0..<100 where !received() { try await Task.sleep(for: .milliseconds(50)) }
                // Time for any other trace's spans to be exported too.
                try await Task.sleep(for: .milliseconds(300))
            }
        }
        #expect(Set(spans.map { Self.hex($0["traceId"]?.stringValue ?? "") }) == [sampledTrace])
    }

    @Test func aCallersTraceparentDecidesSamplingElseTheRatio() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736"
        #expect(RecordStage.isSampled("00-\(id)-00f067aa0ba902b7-01", ratio: 0))
        #expect(!RecordStage.isSampled("00-\(id)-00f067aa0ba902b7-00", ratio: 1))
        // Malformed: as if there were none.
        for header in ["00-\(id)-00f067aa0ba902b7", "00-abc-00f067aa0ba902b7-01", "00-\(id)-00f067aa0ba902b7-zz", ""] {
            #expect(RecordStage.isSampled(header, ratio: 1), "\(header)")
            #expect(!RecordStage.isSampled(header, ratio: 0), "\(header)")
        }
        #expect(RecordStage.isSampled(nil, ratio: 1) && !RecordStage.isSampled(nil, ratio: 0))
        let sampled = (0..<10_000).count { _ in RecordStage.isSampled(nil, ratio: 0.1) }
        #expect((700...1_300).contains(sampled), "\(sampled) of 10,000 at 0.1")
    }

    /// An exporter that cannot flush (its collector unreachable) is stopped `flushLimit` after
    /// graceful shutdown begins, with a warning, instead of holding the service group until its
    /// whole budget is spent and every service is cancelled. One that stops promptly is not held.
    @Test func theExporterServiceStopsWithinItsFlushLimit() async throws {
        final class Stubborn: Service, Sendable {
            let stopped = Atomic<Bool>(false)
            func run() async throws {
                // Ignores graceful shutdown, as a flush retrying against a dead collector does.
                while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(20)) }
                stopped.store(true, ordering: .relaxed)
            }
        }
        struct Prompt: Service {
            func run() async throws { try? await gracefulShutdown() }
        }
        let log = CapturedLog()
        let logger = log.logger(level: .warning)
        for (inner, expectWarning) in [(Stubborn() as any Service, true), (Prompt(), false)] {
            let service = ServiceOnExecutor(inner: inner, executor: .tracing, flushLimit: .milliseconds(200), logger: logger)
            let group = ServiceGroup(
                configuration: .init(services: [.init(service: service)], gracefulShutdownSignals: [], cancellationSignals: [], logger: Logger(label: "group")))
            let before = log.messages(containing: "flush limit").count
            let ended = try await withThrowingTaskGroup(of: Bool.self) { tasks in
                tasks.addTask {
                    try await group.run()
                    return true
                }
                // No service group budget is set here: without the limit a stubborn exporter would
                // keep the group running for good, so the test gives up after 20 s.
                tasks.addTask {
                    try? await Task.sleep(for: .seconds(20))
                    return false
                }
                try await Task.sleep(for: .milliseconds(50))
                await group.triggerGracefulShutdown()
                let first = try await tasks.next() ?? false
                tasks.cancelAll()
                return first
            }
            #expect(ended, "the service group did not end after graceful shutdown")
            if let stubborn = inner as? Stubborn {
                let stopped = stubborn.stopped.load(ordering: .relaxed)
                #expect(stopped)
            }
            #expect((log.messages(containing: "flush limit").count > before) == expectWarning)
        }
    }
}

