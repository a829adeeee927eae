import Crypto
import Foundation

/// Makes virtual API keys and their stored forms. A key is `sk-sluice-` and 43 URL-safe base64
/// characters (32 random bytes); only its SHA-256 and a display prefix are kept.
enum APIKeyMint {
    static let keyPrefix = "sk-sluice-"

    /// A new key, its hash and its display prefix.
    static func newKey() -> (key: String, hash: String, prefix: String) {
        let key = keyPrefix + base64URL(randomBytes(32))
        return (key, hash(key), display(key))
    }

    /// Hex SHA-256 of a presented key.
    static func hash(_ key: String) -> String {
        hex(SHA256.hash(data: Array(key.utf8)))
    }

    /// Lower-case hex, without `String(format:)` (which cost microseconds per byte on the hot path).
    static func hex<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// What lists show of a key: its first 14 characters.
    static func display(_ key: String) -> String { String(key.prefix(keyPrefix.count + 4)) + "…" }

    /// A new record id (`key_…`, `team_…`): 16 random hex digits.
    static func newID(_ kind: String) -> String {
        kind + "_" + hex(randomBytes(8))
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
