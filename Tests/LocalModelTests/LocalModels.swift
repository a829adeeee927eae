import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import SluiceCore
@testable import SluiceServer

/// Where `make test` put the local models (after installing them), from the environment.
enum LocalModels {
    static let environment = ProcessInfo.processInfo.environment
    static let miniLMDirectory = environment["SLUICE_MINILM_DIR"]
    static let llamaServer = environment["SLUICE_LLAMA_SERVER"]
    static let gemma = environment["SLUICE_GEMMA_MODEL"]
    /// The `sluice` executable, for tests of the process itself.
    static let sluiceBinary = environment["SLUICE_BIN"]

    /// The team's labelled paraphrase pairs, when they are beside the checkout.
    static var paraphrases: URL? {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/data/paraphrase/dev.jsonl")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    static var haveChat: Bool { llamaServer != nil && gemma != nil }

    /// A config serving Gemma through a supervised llama-server and MiniLM in process.
    static func yaml(auth: Bool = false, port: Int = 0, extraProviders: String = "") -> String {
        var providers = ""
        var models = ""
        if let llamaServer, let gemma {
            providers += "  local: { kind: llama-server, binary: \"\(llamaServer)\", model_path: \"\(gemma)\", context: 2048, threads: 2, slots: 2, log_file: \"\(NSTemporaryDirectory())sluice-test-llama.log\" }\n"
            models += "  - { name: gemma-3-270m, provider: local }\n"
        }
        if let miniLMDirectory {
            providers += "  embed: { kind: minilm, model_path: \"\(miniLMDirectory)\", max_input_tokens: 300 }\n"
            models += "  - { name: all-minilm-l6-v2, provider: embed, type: embedding }\n"
        }
        return """
            server: { host: 127.0.0.1, port: \(port), shutdown_grace_s: 5 }
            store: { sqlite: ":memory:" }
            providers:
            \(providers)\(extraProviders)
            models:
            \(models)
            logging: { level: error }
            auth: { enabled: \(auth) }
            """
    }

    /// The simulated chat model `sim` and MiniLM in process (`all-minilm-l6-v2`), with a
    /// `guardrails:` section (YAML flow mapping), no auth: what the guardrail model tests serve.
    static func simulatedWithMiniLM(guardrails: String) -> String {
        simulatedWithMiniLM(rest: "guardrails: \(guardrails)")
    }

    /// The simulated provider's chat `models` (YAML list items) and MiniLM in process as the
    /// entry `embeddingName`, then `rest` (more top-level sections), no auth.
    static func simulatedWithMiniLM(
        models: String = "  - { name: sim, provider: sim }", embeddingName: String = "all-minilm-l6-v2", rest: String
    ) -> String {
        """
        store: { sqlite: ":memory:" }
        providers:
          sim: { kind: simulated }
          embed: { kind: minilm, model_path: "\(miniLMDirectory!)" }
        models:
        \(models)
          - { name: \(embeddingName), provider: embed, type: embedding }
        \(rest)
        logging: { level: error }
        auth: { enabled: false }
        """
    }

    static func build(yaml: String = LocalModels.yaml(), onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) async throws
        -> SluiceApplication
    {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let config = try SluiceConfig.load(yaml: yaml, environment: [:])
        return try await buildApplication(config: config, options: BuildOptions(logger: logger, onServerRunning: onServerRunning))
    }

    /// Runs the whole service group (so the supervisor watches llama-server) on a free port.
    static func live<T: Sendable>(_ body: @Sendable (String, SluiceApplication) async throws -> T) async throws -> T {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let config = try SluiceConfig.load(yaml: LocalModels.yaml(), environment: [:])
        return try await SluiceApplication.runOnFreePort(config: config, options: BuildOptions(logger: logger)) { base, app, _ in try await body(base, app) }
    }

    /// POSTs JSON and returns the status and whole body.
    static func post(_ url: String, _ body: String, client: HTTPClient = .shared) async throws -> (Int, ByteBuffer) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(request, timeout: .seconds(60))
        return (Int(response.status.code), try await response.body.collect(upTo: 16 << 20))
    }
}

extension ByteBuffer {
    var json: JSONValue? { try? JSONCoding.decode(JSONValue.self, from: self) }
}
