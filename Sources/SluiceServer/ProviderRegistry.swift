import Foundation
import AsyncHTTPClient
import Logging
import ServiceLifecycle
import SluiceCore
import SluiceObservability
import SluiceEmbeddings
import SluiceProviders

/// The configured providers, built once. Owns their HTTP clients and the local model servers;
/// shuts them down when the service group stops (after the HTTP server, so in-flight calls
/// finish first).
public final class ProviderRegistry: Service {
    public let chat: [String: any ChatProvider]
    public let embedding: [String: any EmbeddingProvider]
    /// The llama-server processes Sluice runs, by provider name.
    public let localServers: [String: LlamaServerSupervisor]
    let clients: [HTTPClient]
    /// Closes each HTTP provider's idle kept-alive connections (those of its lean pool).
    let idleClosers: [@Sendable () -> Void]
    let logger: Logger

    init(config: SluiceConfig, probe: SimulationProbe?, logger: Logger) throws {
        var chat: [String: any ChatProvider] = [:]
        var embedding: [String: any EmbeddingProvider] = [:]
        var clients: [HTTPClient] = []
        var idleClosers: [@Sendable () -> Void] = []
        var localServers: [String: LlamaServerSupervisor] = [:]
        // What can fail (loading a model file) comes first: once an HTTP client exists, it must be shut down before it is released.
        let environment = ProcessInfo.processInfo.environment
        for (name, provider) in config.providers {
            switch provider {
            case .minilm(let c): embedding[name] = try MiniLMProvider(name: name, config: c)
            case .azureOpenAI(let c): _ = try OpenAICompatibleProvider.azureCredential(name: name, config: c, environment: environment)
            case .gemini(let c): _ = try GeminiProvider.key(name: name, config: c)
            case .bedrock(let c): _ = try BedrockProvider.access(name: name, config: c, environment: environment)
            default: break
            }
        }
        // Credentials were checked above, so these cannot fail once their client exists.
        func withClient<P>(_ c: HTTPProviderConfig, _ make: (HTTPClient) throws -> P) rethrows -> P {
            let client = OpenAICompatibleProvider.makeHTTPClient(for: c)
            clients.append(client)
            return try make(client)
        }
        for (name, provider) in config.providers {
            switch provider {
            case .simulated(let c):
                let p = SimulatedProvider(name: name, config: c, timeouts: c.timeouts, probe: probe)
                chat[name] = p
                embedding[name] = p
            case .openAICompatible(let c):
                let client = OpenAICompatibleProvider.makeHTTPClient(for: c)
                clients.append(client)
                let p = OpenAICompatibleProvider(name: name, config: c, client: client)
                idleClosers.append(p.closeIdleConnections)
                chat[name] = p
                embedding[name] = p
            case .azureOpenAI(let c):
                let p = try withClient(c) { try OpenAICompatibleProvider.azure(name: name, config: c, client: $0, environment: environment) }
                idleClosers.append(p.closeIdleConnections)
                chat[name] = p
                embedding[name] = p
            case .gemini(let c):
                let p = try withClient(c) { try GeminiProvider(name: name, config: c, client: $0) }
                idleClosers.append(p.closeIdleConnections)
                chat[name] = p
                embedding[name] = p
            case .bedrock(let c):
                let p = try withClient(c) { try BedrockProvider(name: name, config: c, client: $0, environment: environment) }
                idleClosers.append(p.closeIdleConnections)
                chat[name] = p
            case .anthropic(let c):
                let client = OpenAICompatibleProvider.makeHTTPClient(for: c)
                clients.append(client)
                let p = AnthropicProvider(name: name, config: c, client: client)
                idleClosers.append(p.closeIdleConnections)
                chat[name] = p
            case .minilm:
                break
            case .llamaServer(let c):
                let supervisor = LlamaServerSupervisor(name: name, config: c, logger: logger)
                localServers[name] = supervisor
                chat[name] = LlamaServerProvider(name: name, config: c, supervisor: supervisor)
            }
        }
        self.chat = chat
        self.embedding = embedding
        self.clients = clients
        self.idleClosers = idleClosers
        self.localServers = localServers
        self.logger = logger
    }

    /// Starts the local model servers, all at once, and returns when every one is healthy.
    func start() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for server in localServers.values { group.addTask { try await server.start() } }
            try await group.waitForAll()
        }
    }

    /// Watches the local model servers until shutdown, then stops them and closes the clients.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for server in localServers.values { group.addTask { await server.supervise() } }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await shutdown()
    }

    /// Stops the local model servers and closes every HTTP client.
    public func shutdown() async {
        for server in localServers.values { await server.stop() }
        for close in idleClosers { close() }
        for client in clients {
            do {
                try await client.shutdown()
            } catch {
                logger.debug("HTTP client shutdown failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Probes every chat provider at once, each for at most `limit`.
    func health(limit: Duration = .seconds(3)) async -> [String: ProviderHealth] {
        await withTaskGroup(of: (String, ProviderHealth).self) { group in
            for (name, provider) in chat {
                group.addTask {
                    let result = try? await withTimeLimit(limit, timeoutError: { SluiceError(.upstreamTimeout, "health probe timed out") }) {
                        await provider.checkHealth()
                    }
                    return (name, result ?? .unhealthy("no answer within \(limit)"))
                }
            }
            var out: [String: ProviderHealth] = [:]
            for await (name, health) in group { out[name] = health }
            return out
        }
    }
}
