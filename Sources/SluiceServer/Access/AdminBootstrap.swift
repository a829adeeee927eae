import Foundation
import Logging
import SluiceCore
import SluiceObservability

/// Makes sure an admin can get in: the key in `SLUICE_ADMIN_KEY` when set, otherwise — when the
/// store has no usable admin key — a generated one, printed once and written to a 0600 file
/// beside the database.
struct AdminBootstrap {
    let store: any AccessStore
    let logger: Logger

    static let environmentKeyID = "key_admin_env"

    /// `admin.key` in the database's folder (none for an in-memory database).
    static func keyFile(besideDatabase path: String) -> String? {
        guard path != ":memory:" else { return nil }
        let folder = (path as NSString).deletingLastPathComponent
        return ((folder.isEmpty ? "." : folder) as NSString).appendingPathComponent("admin.key")
    }

    func ensureAdminKey(fromEnvironment key: String?, keyFile: String?) async throws {
        let now = Date().timeIntervalSince1970
        if let key, !key.isEmpty {
            let hash = APIKeyMint.hash(key)
            if var existing = try await store.key(id: Self.environmentKeyID) {
                // A changed SLUICE_ADMIN_KEY replaces the old one (a revoked one stays revoked).
                if existing.hash != hash {
                    existing.hash = hash
                    existing.prefix = APIKeyMint.display(key)
                    try await store.updateKey(existing)
                }
            } else {
                try await store.insertKey(
                    APIKeyRecord(
                        id: Self.environmentKeyID, name: "admin (SLUICE_ADMIN_KEY)", teamID: nil, role: .admin,
                        prefix: APIKeyMint.display(key), hash: hash, createdAt: now))
            }
            return
        }
        let usable = try await store.keys().contains { $0.role == .admin && $0.refusal(at: now) == nil }
        guard !usable else { return }
        let (secret, hash, prefix) = APIKeyMint.newKey()
        try await store.insertKey(
            APIKeyRecord(id: APIKeyMint.newID("key"), name: "admin (generated)", teamID: nil, role: .admin, prefix: prefix, hash: hash, createdAt: now))
        var whereSaved = ""
        if let keyFile {
            let created = FileManager.default.createFile(
                atPath: keyFile, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600])
            whereSaved = created ? " It is also in \(keyFile) (mode 0600)." : " (Could not write \(keyFile).)"
        }
        // Printed, not logged: the one place a full key is ever shown by the server.
        FileHandle.standardError.write(Data("Sluice admin key, shown once: \(secret)\(whereSaved)\n".utf8))
        logger.notice("generated an admin key", metadata: ["file": .string(keyFile ?? "")])
    }
}
