import Foundation
import Logging
import ServiceLifecycle
import SluiceCore
import SluiceObservability
import SluiceStore
import Synchronization

/// Every key and team, held in memory and kept current with the store, so that a request's key
/// is resolved without touching the database. Changes made through this replica reload it at
/// once; changes made by another replica are noticed by polling the store's generation every
/// `auth.refresh_ms` (a revoked key is refused everywhere within about that long).
final class KeyDirectory: Service, Sendable {
    private struct Snapshot {
        var generation = -1
        /// Each key's principal (with its team), built once per reload.
        var byHash: [String: Principal] = [:]
        var byID: [String: Principal] = [:]
    }

    let store: any AccessStore
    private let refresh: Duration
    private let logger: Logger
    private let snapshot = Mutex(Snapshot())

    init(store: any AccessStore, refresh: Duration, logger: Logger) {
        self.store = store
        self.refresh = refresh
        self.logger = logger
    }

    /// Reads every key and team from the store.
    func reload() async throws {
        let generation = try await store.generation()
        let keys = try await store.keys()
        let teams = try await store.teams()
        snapshot.withLock { s in
            guard generation >= s.generation else { return }
            s.generation = generation
            let teamsByID = Dictionary(teams.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            s.byHash = Dictionary(
                keys.map { ($0.hash, Principal(key: $0, team: $0.teamID.flatMap { teamsByID[$0] })) }, uniquingKeysWith: { a, _ in a })
            s.byID = Dictionary(s.byHash.values.map { ($0.key.id, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// The caller a presented key stands for, or the error to answer with.
    func authenticate(_ presented: String?, now: Double = Date().timeIntervalSince1970) -> Result<Principal, SluiceError> {
        guard let presented, !presented.isEmpty else {
            return .failure(
                SluiceError(.invalidAPIKey, "No API key was given. Send it as 'Authorization: Bearer sk-sluice-…' or in an 'x-api-key' header."))
        }
        let hash = APIKeyMint.hash(presented)
        guard let principal = snapshot.withLock({ $0.byHash[hash] }) else {
            return .failure(SluiceError(.invalidAPIKey, "Incorrect API key provided."))
        }
        if let refusal = principal.key.refusal(at: now) { return .failure(SluiceError(.permissionDenied, refusal)) }
        return .success(principal)
    }

    /// A key's caller by the key's id (work done later on its behalf: a batch's lines), or why
    /// it may no longer act (revoked, expired, gone).
    func principal(keyID: String, now: Double = Date().timeIntervalSince1970) -> Result<Principal, SluiceError> {
        guard let principal = snapshot.withLock({ $0.byID[keyID] }) else {
            return .failure(SluiceError(.invalidAPIKey, "The key that made this request no longer exists."))
        }
        if let refusal = principal.key.refusal(at: now) { return .failure(SluiceError(.permissionDenied, refusal)) }
        return .success(principal)
    }

    func run() async throws {
        try await reload()
        // Poll until shutdown; a failed poll keeps the last snapshot and tries again.
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await gracefulShutdownSleep(for: refresh)
            } catch {
                return
            }
            do {
                let current = try await store.generation()
                if current != snapshot.withLock({ $0.generation }) { try await reload() }
            } catch {
                logger.warning("could not refresh keys", metadata: ["error": "\(error)"])
            }
        }
    }
}
