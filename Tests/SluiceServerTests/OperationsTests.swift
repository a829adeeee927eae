import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SluiceCore
import Testing
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
            """
        let app = try TestApp.build(yaml: yaml)
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
