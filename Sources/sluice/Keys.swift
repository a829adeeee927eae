import ArgumentParser
import Foundation
import SluiceCore
import SluiceObservability
import SluiceServer

/// `sluice keys …`: virtual API keys in the store named by `--config`. A running Sluice notices
/// the change within `auth.refresh_ms`.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list, revoke and rotate virtual API keys.", subcommands: [Create.self, List.self, Revoke.self, Rotate.self])

    struct Options: ParsableArguments {
        @Option(name: .shortAndLong, help: "Path of sluice.yaml (its store holds the keys).")
        var config: String?

        func admin() async throws -> KeyAdmin { try await KeyAdmin.open(try loadConfig(config)) }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key and print it (shown this once).")
        @OptionGroup var options: Options
        @Option(help: "A name for the key.") var name: String
        @Option(help: "The team's id or name.") var team: String?
        @Option(help: "admin, app or viewer.") var role: String = "app"
        @Option(help: "Requests per minute.") var rpm: Int?
        @Option(help: "Tokens per minute.") var tpm: Int?
        @Option(help: "Requests in flight at once.") var maxConcurrent: Int?
        @Option(help: "The most tokens one request may ask for.") var maxTokensPerRequest: Int?
        @Option(help: "A budget in USD per UTC day or month, e.g. 10/day or 100/month (repeatable).") var budgetUsd: [String] = []
        @Option(help: "Comma-separated models the key may use (default: all).") var models: String?
        @Option(help: "high, normal or low.") var priority: String = "normal"
        @Option(help: "Expiry as an ISO 8601 date-time, e.g. 2027-01-31T00:00:00Z.") var expiresAt: String?

        func run() async throws {
            guard let role = Role(rawValue: role) else { throw ValidationError("--role must be admin, app or viewer") }
            guard let priority = PriorityClass(rawValue: priority) else { throw ValidationError("--priority must be high, normal or low") }
            var limits = Limits(rpm: rpm, tpm: tpm, maxConcurrent: maxConcurrent, maxTokensPerRequest: maxTokensPerRequest)
            for budget in budgetUsd {
                let parts = budget.split(separator: "/")
                guard parts.count == 2, let amount = Double(parts[0]), amount >= 0 else {
                    throw ValidationError("--budget-usd must look like 10/day or 100/month, got '\(budget)'")
                }
                switch parts[1] {
                case "day": limits.budgetUSDDay = amount
                case "month": limits.budgetUSDMonth = amount
                default: throw ValidationError("--budget-usd period must be day or month, got '\(parts[1])'")
                }
            }
            for (name, value) in [("--rpm", rpm), ("--tpm", tpm), ("--max-concurrent", maxConcurrent), ("--max-tokens-per-request", maxTokensPerRequest)] {
                if let value, value <= 0 { throw ValidationError("\(name) must be positive") }
            }
            var expiry: Double?
            if let expiresAt {
                guard let date = ISO8601DateFormatter().date(from: expiresAt) else {
                    throw ValidationError("--expires-at must be an ISO 8601 date-time such as 2027-01-31T00:00:00Z")
                }
                expiry = date.timeIntervalSince1970
            }
            let modelList = models.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
            let (record, secret) = try await reportingErrors {
                try await options.admin().createKey(
                    name: name, team: team, role: role, limits: limits, models: modelList, priority: priority, expiresAt: expiry)
            }
            print(secret)
            FileHandle.standardError.write(Data("created \(record.id) (\(record.role.rawValue)); the key above is shown this once\n".utf8))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (never their secrets).")
        @OptionGroup var options: Options

        func run() async throws {
            let keys = try await reportingErrors { try await options.admin().keys() }
            let now = Date().timeIntervalSince1970
            print(["ID", "NAME", "ROLE", "TEAM", "PREFIX", "STATUS", "LIMITS"].joined(separator: "\t"))
            for k in keys {
                let status = k.revokedAt != nil ? "revoked" : (k.refusal(at: now) != nil ? "expired" : "active")
                var limits: [String] = []
                if let v = k.limits.rpm { limits.append("rpm=\(v)") }
                if let v = k.limits.tpm { limits.append("tpm=\(v)") }
                if let v = k.limits.maxConcurrent { limits.append("concurrent=\(v)") }
                if let v = k.limits.maxTokensPerRequest { limits.append("max_tokens=\(v)") }
                if let v = k.limits.budgetUSDDay { limits.append("$\(v)/day") }
                if let v = k.limits.budgetUSDMonth { limits.append("$\(v)/month") }
                print([k.id, k.name, k.role.rawValue, k.teamID ?? "-", k.prefix, status, limits.isEmpty ? "-" : limits.joined(separator: ",")]
                    .joined(separator: "\t"))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key: refused from its next request on.")
        @OptionGroup var options: Options
        @Argument(help: "The key's id (key_…).") var id: String

        func run() async throws {
            let key = try await reportingErrors { try await options.admin().revoke(id) }
            print("revoked \(key.id)")
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a key a new secret (printed); the old one stops working.")
        @OptionGroup var options: Options
        @Argument(help: "The key's id (key_…).") var id: String

        func run() async throws {
            let (_, secret) = try await reportingErrors { try await options.admin().rotate(id) }
            print(secret)
        }
    }
}

/// Prints a store or input error as one line and exits 1 (instead of a stack of Swift types).
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as SluiceError {
        FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
        throw ExitCode(1)
    }
}
