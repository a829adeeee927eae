import Crypto
import Foundation
import SluiceRuntime

/// Makes virtual API keys and their stored forms. A key is `sk-sluice-` and 43 URL-safe base64
/// characters (32 random bytes); only its SHA-256 and a display prefix are kept.
enum APIKeyMint {
    static let keyPrefix = "sk-sluice-"

    /// A new key, its hash and its display prefix.
    static func newKey() -> (key: String, hash: String, prefix: String) {
        let key = keyPrefix + base64URL(randomBytes(32))
        return (key, hash(key), display(key))
    }

    /// Hex SHA-256 of a presented key. Every authenticated request hashes its key: its bytes
    /// are hashed where they lie, so the hex string is the only allocation.
    static func hash(_ key: String) -> String {
        var key = key
        let digest = key.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) }
        return digest.withUnsafeBytes { Hex.lowercase($0) }
    }

    /// What lists show of a key: its first 14 characters.
    static func display(_ key: String) -> String { String(key.prefix(keyPrefix.count + 4)) + "…" }

    /// A new record id (`key_…`, `team_…`): 16 random hex digits.
    static func newID(_ kind: String) -> String {
        kind + "_" + Hex.lowercase(randomBytes(8))
    }

    private static func randomBytes(_ n: Int) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    private static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
