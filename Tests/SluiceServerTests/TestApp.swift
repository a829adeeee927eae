import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ServiceLifecycle
import SluiceCore
import SluiceProviders
@testable import SluiceObservability
@testable import SluiceServer

/// Builds Sluice the way production does, on the simulated provider and an in-memory database.
enum TestApp {
    static let yaml = """
        server: { host: 127.0.0.1, port: 0, max_body_bytes: 4096, shutdown_grace_s: 5 }
        store: { sqlite: ":memory:" }
        providers:
          sim: { kind: simulated, reply: "Hello from the simulator", timeouts: { first_token_ms: 300 } }
        models:
          - { name: sim-small, provider: sim, upstream_model: small, price: { input_per_mtok: 1.0, output_per_mtok: 2.0 }, context_window: 8192 }
          - { name: sim-embed, provider: sim, type: embedding, price: { input_per_mtok: 0.5 } }
        logging: { level: error }
        auth: { enabled: false }
        """

    static func build(
        yaml: String = TestApp.yaml, probe: SimulationProbe? = nil, adminKey: String? = nil, logger: Logger? = nil,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) async throws -> SluiceApplication {
        var quiet = Logger(label: "test")
        quiet.logLevel = .error
        let logger = logger ?? quiet
        let config = try SluiceConfig.load(yaml: yaml, environment: [:])
        return try await buildApplication(
            config: config, options: BuildOptions(logger: logger, simulationProbe: probe, adminKey: adminKey, onServerRunning: onServerRunning))
    }

    /// Runs the whole service group on a free port, hands the base URL to `body`, then shuts down
    /// gracefully.
    static func live<T: Sendable>(
        yaml: String = TestApp.yaml, probe: SimulationProbe? = nil, adminKey: String? = nil, logger: Logger? = nil,
        _ body: @Sendable (String, SluiceApplication, ServiceGroup) async throws -> T
    ) async throws -> T {
        var quiet = Logger(label: "test")
        quiet.logLevel = .error
        let config = try SluiceConfig.load(yaml: yaml, environment: [:])
        return try await SluiceApplication.runOnFreePort(
            config: config, options: BuildOptions(logger: logger ?? quiet, simulationProbe: probe, adminKey: adminKey), body)
    }
}

extension ByteBuffer {
    var json: JSONValue? { try? JSONCoding.decode(JSONValue.self, from: self) }
}

/// Chat request bodies.
func chatBody(_ extra: String = "", content: String = "Hi") -> ByteBuffer {
    ByteBuffer(string: #"{"model":"sim-small","messages":[{"role":"user","content":"\#(content)"}]\#(extra.isEmpty ? "" : "," + extra)}"#)
}
