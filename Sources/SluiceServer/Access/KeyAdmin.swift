import Foundation
import Logging
import SluiceCore
import SluiceObservability
import SluiceStore

/// Key and team administration on a store, shared by the admin API and `sluice keys`.
public struct KeyAdmin: Sendable {
    let store: any AccessStore

    init(store: any AccessStore) { self.store = store }

    /// The store named by a configuration (for the CLI).
    public static func open(_ config: SluiceConfig) async throws -> KeyAdmin {
        KeyAdmin(store: try await Stores.open(config.store, logger: Logger(label: "sluice-keys")).access)
    }

    /// A new key; the returned secret is shown this once and never stored.
    public func createKey(
        name: String, team: String? = nil, role: Role = .app, limits: Limits = .init(), models: [String]? = nil,
        priority: PriorityClass = .normal, expiresAt: Double? = nil, metadata: [String: String] = [:]
    ) async throws -> (record: APIKeyRecord, secret: String) {
        let (secret, hash, prefix) = APIKeyMint.newKey()
        var key = APIKeyRecord(
            id: APIKeyMint.newID("key"), name: name, teamID: nil, role: role, prefix: prefix, hash: hash,
            createdAt: Date().timeIntervalSince1970, expiresAt: expiresAt, models: models, limits: limits, priority: priority,
            metadata: metadata)
        if let team {
            guard let found = try await findTeam(team) else {
                throw SluiceError(.invalidValue, "No team with id or name '\(team)'; create it with POST /admin/teams.", param: "team")
            }
            key.teamID = found.id
        }
        try await store.insertKey(key)
        return (key, secret)
    }

    public func keys() async throws -> [APIKeyRecord] { try await store.keys() }

    public func teams() async throws -> [TeamRecord] { try await store.teams() }

    /// Saves a changed key.
    public func update(_ key: APIKeyRecord) async throws { try await store.updateKey(key) }

    /// Saves a changed team.
    public func update(_ team: TeamRecord) async throws { try await store.updateTeam(team) }

    /// Throws 409 when a team has this name already (the stores' unique index is the final word).
    public func ensureTeamNameFree(_ name: String) async throws {
        if try await store.team(name: name) != nil { throw AccessConflict.teamName(name) }
    }

    /// Revokes a key (refused from the next request on); revoking twice changes nothing.
    public func revoke(_ id: String) async throws -> APIKeyRecord {
        var key = try await existingKey(id)
        if key.revokedAt == nil {
            key.revokedAt = Date().timeIntervalSince1970
            try await store.updateKey(key)
        }
        return key
    }

    /// A new secret for the same key id; the old one stops working.
    public func rotate(_ id: String) async throws -> (record: APIKeyRecord, secret: String) {
        var key = try await existingKey(id)
        guard key.revokedAt == nil else { throw SluiceError(.invalidRequest, "The key \(key.id) is revoked; create a new one.") }
        let (secret, hash, prefix) = APIKeyMint.newKey()
        key.hash = hash
        key.prefix = prefix
        try await store.updateKey(key)
        return (key, secret)
    }

    public func existingKey(_ id: String) async throws -> APIKeyRecord {
        guard let key = try await store.key(id: id) else { throw SluiceError(.notFound, "No API key with id '\(id)'.") }
        return key
    }

    public func createTeam(name: String, limits: Limits = .init(), metadata: [String: String] = [:]) async throws -> TeamRecord {
        try await ensureTeamNameFree(name)
        let team = TeamRecord(id: APIKeyMint.newID("team"), name: name, limits: limits, metadata: metadata, createdAt: Date().timeIntervalSince1970)
        try await store.insertTeam(team)
        return team
    }

    public func findTeam(_ idOrName: String) async throws -> TeamRecord? {
        if let team = try await store.team(id: idOrName) { return team }
        return try await store.team(name: idOrName)
    }
}
