import Foundation
/// A problem with the configuration, naming where it is (`providers.up.base_url`).
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Dotted path of the key at fault; empty for the whole file.
    public var path: String
    public var message: String

    public init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Every problem found while validating a configuration.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigError]
    public init(_ errors: [ConfigError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

extension ConfigError {
    /// Whether `text` is an http or https URL with a host (upstreams, webhooks, collectors).
    static func isHTTPURL(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme) else { return false }
        return url.host != nil
    }
}
