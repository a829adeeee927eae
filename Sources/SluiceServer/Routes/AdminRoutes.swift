import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import SluiceCore
import SluiceObservability

/// `/admin/keys` and `/admin/teams`: create, list, read, change, revoke and rotate virtual keys,
/// and the teams whose limits apply on top of their keys'. JSON in and out; `AuthMiddleware` has
/// already checked that the caller is an admin.
struct AdminRoutes: Sendable {
    let directory: KeyDirectory
    let body: RequestBodyReader
    /// The deployments with a concurrency cap, for `GET /admin/queues`.
    let queues: [String: DeploymentQueue]

    var admin: KeyAdmin { KeyAdmin(store: directory.store) }

    func register(on router: Router<SluiceRequestContext>) {
        router.post("/admin/keys") { request, _ in try await createKey(request) }
        router.get("/admin/keys") { _, _ in try await listKeys() }
        router.get("/admin/keys/{id}") { _, context in try await json(try await existingKey(context).json) }
        router.patch("/admin/keys/{id}") { request, context in try await updateKey(request, context) }
        router.delete("/admin/keys/{id}") { _, context in try await revokeKey(context) }
        router.post("/admin/keys/{id}/rotate") { _, context in try await rotateKey(context) }
        router.post("/admin/teams") { request, _ in try await createTeam(request) }
        router.get("/admin/teams") { _, _ in try await json(.object(["object": "list", "data": .array(try await admin.teams().map { $0.json })])) }
        router.get("/admin/teams/{id}") { _, context in try await json(try await existingTeam(context).json) }
        router.patch("/admin/teams/{id}") { request, context in try await updateTeam(request, context) }
        router.get("/admin/queues") { _, _ in try queueStates() }
    }

    /// The paths and methods served here (for 405 answers).
    static let routes: [String: [HTTPRequest.Method]] = [
        "/admin/keys": [.get, .post], "/admin/teams": [.get, .post], "/admin/queues": [.get],
    ]

    // MARK: keys

    func createKey(_ request: Request) async throws -> Response {
        var fields = try await AdminFields(body.decode(JSONValue.self, from: request))
        let name = try fields.requiredString("name")
        // Read every field (and refuse unknown ones) before anything is created.
        var draft = APIKeyRecord(id: "", name: name, teamID: nil, role: .app, prefix: "", hash: "", createdAt: 0)
        try await apply(&fields, to: &draft)
        try fields.finish()
        let (key, secret) = try await admin.createKey(
            name: name, team: draft.teamID, role: draft.role, limits: draft.limits, models: draft.models, priority: draft.priority,
            expiresAt: draft.expiresAt, metadata: draft.metadata)
        try await directory.reload()
        var out = key.json
        out["key"] = .string(secret)
        return try json(.object(out), status: .created)
    }

    func listKeys() async throws -> Response {
        try json(.object(["object": "list", "data": .array(try await admin.keys().map { .object($0.json) })]))
    }

    func updateKey(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        var key = try await existingKey(context)
        var fields = try await AdminFields(body.decode(JSONValue.self, from: request))
        if let name = try fields.string("name") { key.name = name }
        try await apply(&fields, to: &key)
        try fields.finish()
        try await admin.update(key)
        try await directory.reload()
        return try json(.object(key.json))
    }

    func revokeKey(_ context: SluiceRequestContext) async throws -> Response {
        let key = try await admin.revoke(context.parameters.get("id") ?? "")
        try await directory.reload()
        return try json(.object(key.json))
    }

    /// A new secret for the same key id (limits and usage stay); the old secret stops working.
    func rotateKey(_ context: SluiceRequestContext) async throws -> Response {
        let (key, secret) = try await admin.rotate(context.parameters.get("id") ?? "")
        try await directory.reload()
        var out = key.json
        out["key"] = .string(secret)
        return try json(.object(out))
    }

    private func existingKey(_ context: SluiceRequestContext) async throws -> APIKeyRecord {
        try await admin.existingKey(context.parameters.get("id") ?? "")
    }

    /// The fields a key shares between creation and change.
    private func apply(_ fields: inout AdminFields, to key: inout APIKeyRecord) async throws {
        if let role = try fields.string("role") {
            guard let r = Role(rawValue: role) else {
                throw SluiceError(.invalidValue, "role must be one of admin, app, viewer.", param: "role")
            }
            key.role = r
        }
        if fields.has("team") {
            if let team = try fields.string("team") {
                guard let found = try await findTeam(team) else {
                    throw SluiceError(.invalidValue, "No team with id or name '\(team)'; create it with POST /admin/teams.", param: "team")
                }
                key.teamID = found.id
            } else {
                key.teamID = nil
            }
        }
        if let priority = try fields.string("priority") {
            guard let p = PriorityClass(rawValue: priority) else {
                throw SluiceError(.invalidValue, "priority must be one of high, normal, low.", param: "priority")
            }
            key.priority = p
        }
        if fields.has("models") { key.models = try fields.stringList("models") }
        if fields.has("expires_at") { key.expiresAt = try fields.time("expires_at") }
        if let metadata = try fields.metadata("metadata") { key.metadata = metadata }
        try fields.limits(into: &key.limits)
    }

    /// Each capped deployment's slots and waiting requests per priority class.
    func queueStates() throws -> Response {
        let data: [JSONValue] = queues.keys.sorted().map { name in
            let q = queues[name]!
            return .object([
                "deployment": .string(name), "max_concurrent": .int(q.capacity), "in_flight": .int(q.inFlight),
                "waiting": .object(Dictionary(uniqueKeysWithValues: PriorityClass.allCases.map { ($0.rawValue, JSONValue.int(q.depth($0))) })),
            ])
        }
        return try json(.object(["object": "list", "data": .array(data)]))
    }

    // MARK: teams

    func createTeam(_ request: Request) async throws -> Response {
        var fields = try await AdminFields(body.decode(JSONValue.self, from: request))
        let name = try fields.requiredString("name")
        let metadata = try fields.metadata("metadata") ?? [:]
        var limits = Limits()
        try fields.limits(into: &limits)
        try fields.finish()
        let team = try await admin.createTeam(name: name, limits: limits, metadata: metadata)
        try await directory.reload()
        return try json(team.json, status: .created)
    }

    func updateTeam(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        var team = try await existingTeam(context)
        var fields = try await AdminFields(body.decode(JSONValue.self, from: request))
        if let name = try fields.string("name"), name != team.name {
            try await admin.ensureTeamNameFree(name)
            team.name = name
        }
        if let metadata = try fields.metadata("metadata") { team.metadata = metadata }
        try fields.limits(into: &team.limits)
        try fields.finish()
        try await admin.update(team)
        try await directory.reload()
        return try json(team.json)
    }

    private func existingTeam(_ context: SluiceRequestContext) async throws -> TeamRecord {
        let id = context.parameters.get("id") ?? ""
        guard let team = try await findTeam(id) else { throw SluiceError(.notFound, "No team with id or name '\(id)'.") }
        return team
    }

    private func findTeam(_ idOrName: String) async throws -> TeamRecord? { try await admin.findTeam(idOrName) }

    private func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(value)))
    }

    private func json(_ object: [String: JSONValue]) throws -> Response { try json(.object(object)) }
}

/// Reads an admin request's JSON object field by field, with errors naming the field; fields
/// left unread at the end are unknown and refused.
struct AdminFields {
    private var members: [String: JSONValue]

    init(_ value: JSONValue) throws {
        guard case .object(let members) = value else { throw SluiceError(.invalidType, "The request body must be a JSON object.") }
        self.members = members
    }

    func has(_ name: String) -> Bool { members[name] != nil }

    mutating func string(_ name: String) throws -> String? {
        guard let v = members.removeValue(forKey: name) else { return nil }
        switch v {
        case .null: return nil
        case .string(let s) where !s.isEmpty: return s
        case .string: throw SluiceError(.invalidValue, "\(name) must not be empty.", param: name)
        default: throw SluiceError(.invalidType, "\(name) must be a string.", param: name)
        }
    }

    mutating func requiredString(_ name: String) throws -> String {
        guard let s = try string(name) else { throw SluiceError(.missingParameter, "\(name) is required.", param: name) }
        return s
    }

    mutating func stringList(_ name: String) throws -> [String]? {
        guard let v = members.removeValue(forKey: name) else { return nil }
        if case .null = v { return nil }
        guard case .array(let items) = v else { throw SluiceError(.invalidType, "\(name) must be an array of strings.", param: name) }
        return try items.map {
            guard case .string(let s) = $0 else { throw SluiceError(.invalidType, "\(name) must be an array of strings.", param: name) }
            return s
        }
    }

    mutating func metadata(_ name: String) throws -> [String: String]? {
        guard let v = members.removeValue(forKey: name) else { return nil }
        if case .null = v { return [:] }
        guard case .object(let o) = v else { throw SluiceError(.invalidType, "\(name) must be an object of strings.", param: name) }
        return try o.mapValues {
            guard case .string(let s) = $0 else { throw SluiceError(.invalidType, "\(name) values must be strings.", param: name) }
            return s
        }
    }

    /// Unix seconds, or an ISO 8601 date-time; null clears.
    mutating func time(_ name: String) throws -> Double? {
        guard let v = members.removeValue(forKey: name) else { return nil }
        switch v {
        case .null: return nil
        case .int, .double:
            // Up to the year 9999: anything larger is a mistake (and would not fit the JSON shown back).
            guard let t = v.doubleValue, t >= 0, t <= 253_402_300_799 else {
                throw SluiceError(.invalidValue, "\(name) must be Unix seconds between 0 and 253402300799.", param: name)
            }
            return t
        case .string(let s):
            if let date = ISO8601DateFormatter().date(from: s), date.timeIntervalSince1970 >= 0 { return date.timeIntervalSince1970 }
            throw SluiceError(.invalidValue, "\(name) must be Unix seconds or an ISO 8601 date-time such as 2027-01-31T00:00:00Z.", param: name)
        default: throw SluiceError(.invalidType, "\(name) must be Unix seconds or an ISO 8601 string.", param: name)
        }
    }

    /// A limit: a positive number, or null to remove it. Absent leaves it as it is.
    private mutating func limit<T>(_ name: String, _ current: T?, _ convert: (JSONValue) -> T?, positive: (T) -> Bool) throws -> T? {
        guard let v = members.removeValue(forKey: name) else { return current }
        if case .null = v { return nil }
        guard let value = convert(v), positive(value) else {
            throw SluiceError(.invalidValue, "\(name) must be a positive number, or null for no limit.", param: name)
        }
        return value
    }

    mutating func limits(into limits: inout Limits) throws {
        let int: (JSONValue) -> Int? = { v in
            if case .int(let i) = v { return i }
            return nil
        }
        limits.rpm = try limit("rpm", limits.rpm, int) { $0 > 0 }
        limits.tpm = try limit("tpm", limits.tpm, int) { $0 > 0 }
        limits.maxConcurrent = try limit("max_concurrent", limits.maxConcurrent, int) { $0 > 0 }
        limits.maxTokensPerRequest = try limit("max_tokens_per_request", limits.maxTokensPerRequest, int) { $0 > 0 }
        limits.budgetUSDDay = try limit("budget_usd_day", limits.budgetUSDDay, \.doubleValue) { $0 >= 0 && $0.isFinite }
        limits.budgetUSDMonth = try limit("budget_usd_month", limits.budgetUSDMonth, \.doubleValue) { $0 >= 0 && $0.isFinite }
    }

    /// Refuses whatever was not read.
    func finish() throws {
        if let unknown = members.keys.sorted().first {
            throw SluiceError(.invalidValue, "Unknown field '\(unknown)'.", param: unknown)
        }
    }
}

extension APIKeyRecord {
    /// The key as the admin API shows it (never the secret, never the hash).
    var json: [String: JSONValue] {
        var out: [String: JSONValue] = [
            "object": "api_key", "id": .string(id), "name": .string(name), "role": .string(role.rawValue), "prefix": .string(prefix),
            "created_at": .int(Int(createdAt)), "priority": .string(priority.rawValue),
            "metadata": .object(metadata.mapValues(JSONValue.string)),
            "team": teamID.map(JSONValue.string) ?? .null,
            "expires_at": expiresAt.map { .int(Int($0)) } ?? .null,
            "revoked_at": revokedAt.map { .int(Int($0)) } ?? .null,
            "models": models.map { .array($0.map(JSONValue.string)) } ?? .null,
        ]
        for (k, v) in limits.json { out[k] = v }
        return out
    }
}

extension TeamRecord {
    var json: JSONValue {
        var out: [String: JSONValue] = [
            "object": "team", "id": .string(id), "name": .string(name), "created_at": .int(Int(createdAt)),
            "metadata": .object(metadata.mapValues(JSONValue.string)),
        ]
        for (k, v) in limits.json { out[k] = v }
        return .object(out)
    }
}

extension Limits {
    var json: [String: JSONValue] {
        [
            "rpm": rpm.map(JSONValue.int) ?? .null, "tpm": tpm.map(JSONValue.int) ?? .null,
            "max_concurrent": maxConcurrent.map(JSONValue.int) ?? .null,
            "max_tokens_per_request": maxTokensPerRequest.map(JSONValue.int) ?? .null,
            "budget_usd_day": budgetUSDDay.map(JSONValue.double) ?? .null,
            "budget_usd_month": budgetUSDMonth.map(JSONValue.double) ?? .null,
        ]
    }
}
