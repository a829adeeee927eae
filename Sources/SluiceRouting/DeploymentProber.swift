import Logging
import ServiceLifecycle
import SluiceCore

/// Probes the health of every deployment whose breaker is open, every `probe_interval_ms`: a
/// failed probe keeps the breaker open for another cool-down, so that real requests are not
/// spent finding out; a passed one lets the cool-down run out and the half-open probes decide.
public struct DeploymentProber: Service {
    let board: DeploymentBoard
    let catalog: ModelCatalog
    let interval: Duration
    let logger: Logger

    public init(board: DeploymentBoard, catalog: ModelCatalog, interval: Duration, logger: Logger) {
        self.board = board
        self.catalog = catalog
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } } catch { return }
            await probeOpenBreakers()
        }
    }

    /// One round of probes (tests call it directly).
    func probeOpenBreakers() async {
        for (name, status) in board.statuses where status.breakerState == .open {
            // Embedding providers have no health check: their breakers half-open on the cool-down alone.
            guard let provider = catalog.chat[name]?.chatProvider else { continue }
            let health = await provider.checkHealth()
            if case .unhealthy(let reason) = health {
                status.probeFailed()
                logger.warning("deployment still unhealthy; breaker stays open", metadata: ["deployment": "\(name)", "reason": "\(reason)"])
            } else {
                logger.info("deployment answers its health probe; breaker will half-open after its cool-down", metadata: ["deployment": "\(name)"])
            }
        }
    }
}
