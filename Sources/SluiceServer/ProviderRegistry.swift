import AsyncHTTPClient
import Logging
import ServiceLifecycle
import SluiceCore
import SluiceEmbeddings
import SluiceProviders

/// The configured providers, built once. Owns their HTTP clients and shuts them down when the
/// service group stops (after the HTTP server, so in-flight calls finish first).
public final class ProviderRegistry: Service {
    public let chat: [String: any ChatProvider]
    public let embedding: [String: any EmbeddingProvider]
    let clients: [HTTPClient]
    let pooled: [OpenAICompatibleProvider]
    let logger: Logger

    init(config: SluiceConfig, probe: SimulationProbe?, logger: Logger) throws {
        var chat: [String: any ChatProvider] = [:]
        var embedding: [String: any EmbeddingProvider] = [:]
        var clients: [HTTPClient] = []
        var pooled: [OpenAICompatibleProvider] = []
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
                pooled.append(p)
                chat[name] = p
                embedding[name] = p
            case .anthropic(let c):
                let client = OpenAICompatibleProvider.makeHTTPClient(for: c)
                clients.append(client)
                chat[name] = AnthropicProvider(name: name, config: c, client: client)
            case .minilm(let c):
                embedding[name] = try MiniLMProvider(name: name, config: c)
            }
        }
        self.chat = chat
        self.embedding = embedding
        self.clients = clients
        self.pooled = pooled
        self.logger = logger
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Closes every HTTP client.
    public func shutdown() async {
        for provider in pooled { provider.closeIdleConnections() }
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
