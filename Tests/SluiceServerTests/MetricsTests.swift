import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
@testable import SluiceObservability
@testable import SluiceServer

/// `/metrics`: the GenAI-convention histograms and Sluice's counters, with bounded labels. The
/// registry is per process, so this test's model has a name no other test uses.
@Suite struct MetricsTests {
    static let yaml = TestApp.yaml.replacingOccurrences(
        of: "  - { name: sim-embed",
        with: "  - { name: metrics-sim, provider: sim, upstream_model: small, price: { input_per_mtok: 1000000.0, output_per_mtok: 0.0 } }\n  - { name: sim-embed")

    func value(_ text: String, _ prefix: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(prefix + " ") { return Double(line.split(separator: " ").last!) }
        return nil
    }

    @Test func requestsShowUpWithBoundedLabels() async throws {
        let app = try await TestApp.build(yaml: Self.yaml)
        try await app.http.test(.router) { client in
            let ok = ByteBuffer(string: #"{"model":"metrics-sim","messages":[{"role":"user","content":"hello there"}]}"#)
            let stream = ByteBuffer(string: #"{"model":"metrics-sim","stream":true,"messages":[{"role":"user","content":"hello there"}]}"#)
            let unknown = ByteBuffer(string: #"{"model":"no-such-model-4f2a","messages":[{"role":"user","content":"hi"}]}"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: ok) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: ok) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: stream) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: unknown) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
                let text = String(buffer: response.body)
                #expect(value(text, #"sluice_requests_total{endpoint="chat.completions",model="metrics-sim",status="200",code=""}"#) == 3)
                #expect(value(text, #"gen_ai_server_request_duration_seconds_count{model="metrics-sim",deployment="metrics-sim",status="200"}"#) == 3)
                #expect(value(text, #"gen_ai_server_time_to_first_token_seconds_count{model="metrics-sim",deployment="metrics-sim"}"#) == 1)
                let input = value(text, #"gen_ai_client_token_usage_sum{model="metrics-sim",team="none",gen_ai_token_type="input"}"#) ?? 0
                #expect(input > 0)
                // $1 per input token: the cost counter is the input tokens' sum.
                #expect(value(text, #"sluice_cost_usd_total{model="metrics-sim",team="none"}"#) == input)
                // A model that is not configured is counted, under `other`: client strings never become labels.
                #expect(text.contains(#"model="other",status="404",code="model_not_found""#))
                #expect(!text.contains("no-such-model-4f2a"))
                #expect(text.contains("# TYPE sluice_requests_in_flight gauge"))
                #expect(text.contains("sluice_audit_log_backlog "))
                #expect(text.contains("sluice_audit_log_dropped_total "))
                #expect(text.contains(#"sluice_circuit_breaker_state{deployment="metrics-sim"} 0"#))
            }
        }
    }

    @Test func flowRunsHaveSeriesOfTheirOwn() async throws {
        let yaml = Self.yaml + """

            flows:
              metrics-flow:
                model: metrics-sim
                messages: [{ role: user, content: "Say {{text}}" }]
                input: { type: object, required: [text], properties: { text: { type: string } } }
            """
        let app = try await TestApp.build(yaml: yaml)
        try await app.http.test(.router) { client in
            for _ in 0..<2 {
                try await client.execute(uri: "/v1/flows/metrics-flow/run", method: .post, body: ByteBuffer(string: #"{"input":{"text":"hi"}}"#)) {
                    #expect($0.status == .ok)
                }
            }
            try await client.execute(
                uri: "/v1/chat/completions", method: .post,
                body: ByteBuffer(string: #"{"model":"flow:metrics-flow","messages":[{"role":"user","content":"hi"}]}"#)
            ) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/flows/metrics-flow/run", method: .post, body: ByteBuffer(string: #"{"input":{}}"#)) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(value(text, #"sluice_flow_runs_total{flow="metrics-flow",flow_version="1",status="200"}"#) == 3)
                #expect(value(text, #"sluice_flow_runs_total{flow="metrics-flow",flow_version="1",status="400"}"#) == 1)
                #expect(value(text, #"sluice_flow_run_duration_seconds_count{flow="metrics-flow",flow_version="1"}"#) == 4)
                // The flow's model name is a known label value, not `other`.
                #expect(value(text, #"sluice_requests_total{endpoint="chat.completions",model="flow:metrics-flow",status="200",code=""}"#) == 1)
            }
        }
    }

    @Test func onlySluicesOwnRefusalsCountAsRateLimitRejections() {
        MetricsBackend.install()
        let metrics = RequestMetrics(knownModels: ["m"])
        func record(_ deployment: String?) -> AuditRecord {
            AuditRecord(
                id: "r", time: 0, endpoint: "chat.completions", modelRequested: "m", deployment: deployment, status: 429, errorCode: "metrics_probe_refusal",
                latencyMs: 1, ttftMs: nil, tokensIn: 0, tokensOut: 0, costUSD: 0, cacheStatus: "off", stream: false, attempts: 0)
        }
        metrics.record(record(nil))  // refused by admission
        metrics.record(record(nil))
        metrics.record(record("m"))  // an upstream's 429, passed on
        var bytes: [UInt8] = []
        MetricsBackend.registry.emit(into: &bytes)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(value(text, #"sluice_rate_limit_rejections_total{code="metrics_probe_refusal"}"#) == 2)
        #expect(value(text, #"sluice_requests_total{endpoint="chat.completions",model="m",status="429",code="metrics_probe_refusal"}"#) == 3)
    }
}
