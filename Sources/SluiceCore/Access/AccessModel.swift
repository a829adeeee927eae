/// What a caller may do: everything, inference only, or read-only administration.
public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
    /// Everything, `/admin/*` included.
    case admin
    /// The inference endpoints (`/v1/*`) only.
    case app
    /// Read-only administration: usage, the audit log, the dashboard.
    case viewer
}

/// The class a key's requests wait in when a deployment is at its concurrency cap.
public enum PriorityClass: String, Sendable, Hashable, Codable, CaseIterable {
    case high, normal, low
}

/// Limits and budgets of a key or a team; nil means unlimited.
public struct Limits: Sendable, Hashable, Codable {
    /// Requests per minute (sliding 60 s window).
    public var rpm: Int?
    /// Tokens per minute (sliding 60 s window; an estimate is reserved before the call).
    public var tpm: Int?
    /// Requests in flight at once.
    public var maxConcurrent: Int?
    /// The most tokens (prompt estimate plus output cap) one request may ask for.
    public var maxTokensPerRequest: Int?
    /// USD per UTC day.
    public var budgetUSDDay: Double?
    /// USD per UTC month.
    public var budgetUSDMonth: Double?

    public init(
        rpm: Int? = nil, tpm: Int? = nil, maxConcurrent: Int? = nil, maxTokensPerRequest: Int? = nil, budgetUSDDay: Double? = nil,
        budgetUSDMonth: Double? = nil
    ) {
        self.rpm = rpm
        self.tpm = tpm
        self.maxConcurrent = maxConcurrent
        self.maxTokensPerRequest = maxTokensPerRequest
        self.budgetUSDDay = budgetUSDDay
        self.budgetUSDMonth = budgetUSDMonth
    }

    enum CodingKeys: String, CodingKey {
        case rpm, tpm
        case maxConcurrent = "max_concurrent"
        case maxTokensPerRequest = "max_tokens_per_request"
        case budgetUSDDay = "budget_usd_day"
        case budgetUSDMonth = "budget_usd_month"
    }

    /// Whether nothing is limited.
    public var isUnlimited: Bool { self == Limits() }
}

/// A virtual API key as stored: never the key itself, only its SHA-256 and a display prefix.
public struct APIKeyRecord: Sendable, Hashable {
    public var id: String
    public var name: String
    /// The owning team's id, if any.
    public var teamID: String?
    public var role: Role
    /// The first characters of the key (`sk-sluice-AbCd`), to recognise it in lists.
    public var prefix: String
    /// Hex SHA-256 of the full key.
    public var hash: String
    /// Unix seconds.
    public var createdAt: Double
    public var expiresAt: Double?
    public var revokedAt: Double?
    /// Model names the key may use; nil means every model.
    public var models: [String]?
    public var limits: Limits
    public var priority: PriorityClass
    public var metadata: [String: String]

    public init(
        id: String, name: String, teamID: String?, role: Role, prefix: String, hash: String, createdAt: Double, expiresAt: Double? = nil,
        revokedAt: Double? = nil, models: [String]? = nil, limits: Limits = .init(), priority: PriorityClass = .normal,
        metadata: [String: String] = [:]
    ) {
        self.id = id
        self.name = name
        self.teamID = teamID
        self.role = role
        self.prefix = prefix
        self.hash = hash
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.models = models
        self.limits = limits
        self.priority = priority
        self.metadata = metadata
    }

    /// Why the key may not be used at `now` (Unix seconds), or nil when it may.
    public func refusal(at now: Double) -> String? {
        if revokedAt != nil { return "This API key has been revoked." }
        if let expiresAt, expiresAt <= now { return "This API key has expired." }
        return nil
    }

    /// Whether the key may use `model`.
    public func allows(model: String) -> Bool { models.map { $0.contains(model) } ?? true }
}

/// A team: limits and budgets shared by its keys, on top of each key's own.
public struct TeamRecord: Sendable, Hashable {
    public var id: String
    public var name: String
    public var limits: Limits
    public var metadata: [String: String]
    public var createdAt: Double

    public init(id: String, name: String, limits: Limits = .init(), metadata: [String: String] = [:], createdAt: Double) {
        self.id = id
        self.name = name
        self.limits = limits
        self.metadata = metadata
        self.createdAt = createdAt
    }
}

/// Keys and teams, in SQLite or PostgreSQL.
public protocol AccessStore: Sendable {
    func insertKey(_ key: APIKeyRecord) async throws
    func updateKey(_ key: APIKeyRecord) async throws
    func key(id: String) async throws -> APIKeyRecord?
    func key(hash: String) async throws -> APIKeyRecord?
    func keys() async throws -> [APIKeyRecord]
    func insertTeam(_ team: TeamRecord) async throws
    func updateTeam(_ team: TeamRecord) async throws
    func team(id: String) async throws -> TeamRecord?
    func team(name: String) async throws -> TeamRecord?
    func teams() async throws -> [TeamRecord]
    /// A number that grows with every change to keys or teams, so that replicas notice changes
    /// made elsewhere and drop their caches.
    func generation() async throws -> Int
}

/// Spend already recorded, for budgets: the audit log's cost per key and team in a window.
public protocol SpendLedger: Sendable {
    /// The recorded cost in USD of `keyID`'s requests (or `teamID`'s) since `since` (Unix seconds).
    func spend(keyID: String?, teamID: String?, since: Double) async throws -> Double
}

/// The caller of a request, once its key is known: the key and its team. A class, so that the
/// contexts that carry it copy one reference, not every field of a key.
public final class Principal: Sendable {
    public let key: APIKeyRecord
    public let team: TeamRecord?
    /// The scopes whose limits apply to this caller's requests: the key's, then the team's.
    public let scopes: [AdmissionRequest.Scope]

    public init(key: APIKeyRecord, team: TeamRecord?) {
        self.key = key
        self.team = team
        var scopes = [AdmissionRequest.Scope(id: "key:" + key.id, limits: key.limits)]
        if let team { scopes.append(.init(id: "team:" + team.id, limits: team.limits)) }
        self.scopes = scopes
    }
}

/// A write that would break a uniqueness rule of keys or teams (409 to the client).
public enum AccessConflict {
    /// Another team has this name.
    public static func teamName(_ name: String) -> SluiceError {
        SluiceError(.invalidValue, "A team named '\(name)' exists already.", param: "name", status: 409)
    }
}
