import NIOCore

/// One row of the audit log: what was asked, what served it, how it went, what it cost.
public struct AuditRecord: Sendable, Hashable, Codable {
    public var id: String
    /// Unix time in seconds when the request arrived.
    public var time: Double
    public var endpoint: String
    public var keyID: String
    /// The key's team id, empty when it has none (or there is no key).
    public var teamID: String
    public var modelRequested: String
    public var deployment: String?
    public var status: Int
    public var errorCode: String?
    public var latencyMs: Double
    public var ttftMs: Double?
    public var tokensIn: Int
    public var tokensOut: Int
    public var costUSD: Double
    public var cacheStatus: String
    public var stream: Bool
    /// How many upstream attempts the request took.
    public var attempts: Int
    /// The flow the request ran, and its version.
    public var flow: String?
    public var flowVersion: Int?
    /// The conversation the request continued.
    public var conversationID: String?
    /// The experiment the request took part in, and the variant it was assigned.
    public var experiment: String?
    public var variant: String?
    /// Every attempt, the guardrails' findings, the routing and cache decisions (a JSON column).
    public var details: AuditDetails
    /// The request's messages as JSON, when `audit_log.log_bodies` keeps them (redacted or not).
    public var requestBody: String?
    /// The answer's text, when `audit_log.log_bodies` keeps it.
    public var responseBody: String?
    /// The exchange as captured on the request path, on its way to the writer, which turns it
    /// into `requestBody` and `responseBody` (decoding, encoding and redacting off the request
    /// path); never stored as such.
    public var captured: CapturedExchange?

    /// About how many bytes the row holds while it waits to be written.
    public var approximateBytes: Int {
        512 + (captured?.approximateBytes ?? 0) + (requestBody?.utf8.count ?? 0) + (responseBody?.utf8.count ?? 0)
    }

    enum CodingKeys: String, CodingKey {
        case id, time, endpoint, keyID, teamID, modelRequested, deployment, status, errorCode, latencyMs, ttftMs, tokensIn, tokensOut, costUSD,
            cacheStatus, stream, attempts, details, requestBody, responseBody, flow, flowVersion, conversationID, experiment, variant
    }

    public init(
        id: String, time: Double, endpoint: String, keyID: String = "", modelRequested: String, deployment: String?,
        status: Int, errorCode: String?, latencyMs: Double, ttftMs: Double?, tokensIn: Int, tokensOut: Int,
        costUSD: Double, cacheStatus: String, stream: Bool, attempts: Int, teamID: String = "", details: AuditDetails = .init(),
        requestBody: String? = nil, responseBody: String? = nil, flow: String? = nil, flowVersion: Int? = nil, conversationID: String? = nil,
        experiment: String? = nil, variant: String? = nil
    ) {
        self.experiment = experiment
        self.variant = variant
        self.conversationID = conversationID
        self.flow = flow
        self.flowVersion = flowVersion
        self.details = details
        self.requestBody = requestBody
        self.responseBody = responseBody
        self.id = id
        self.time = time
        self.endpoint = endpoint
        self.keyID = keyID
        self.teamID = teamID
        self.modelRequested = modelRequested
        self.deployment = deployment
        self.status = status
        self.errorCode = errorCode
        self.latencyMs = latencyMs
        self.ttftMs = ttftMs
        self.tokensIn = tokensIn
        self.tokensOut = tokensOut
        self.costUSD = costUSD
        self.cacheStatus = cacheStatus
        self.stream = stream
        self.attempts = attempts
    }
}

/// The parts of an audit-log row that are lists or optional decisions, kept as one JSON document
/// so that a new kind of detail needs no migration.
public struct AuditDetails: Sendable, Hashable, Codable {
    /// Every call to an upstream, in order (the last one answered when the request succeeded).
    public var attempts: [UpstreamAttempt]
    /// What the guardrails found and did (types and positions, never the matched text).
    public var guardrails: [GuardrailEvent]
    public var guardrailPolicy: String?
    /// The complexity classifier's score, when an alias routed by complexity.
    public var routingScore: Double?
    /// The cosine similarity of a semantic cache hit.
    public var cacheSimilarity: Double?
    /// Tokens a cache hit saved (the cached answer's prompt and completion tokens).
    public var tokensSaved: Int?
    /// The OpenTelemetry trace this request was recorded in, when tracing is on.
    public var traceID: String?

    public init(
        attempts: [UpstreamAttempt] = [], guardrails: [GuardrailEvent] = [], guardrailPolicy: String? = nil, routingScore: Double? = nil,
        cacheSimilarity: Double? = nil, tokensSaved: Int? = nil, traceID: String? = nil
    ) {
        self.traceID = traceID
        self.attempts = attempts
        self.guardrails = guardrails
        self.guardrailPolicy = guardrailPolicy
        self.routingScore = routingScore
        self.cacheSimilarity = cacheSimilarity
        self.tokensSaved = tokensSaved
    }

    enum CodingKeys: String, CodingKey {
        case attempts, guardrails
        case guardrailPolicy = "guardrail_policy"
        case routingScore = "routing_score"
        case cacheSimilarity = "cache_similarity"
        case tokensSaved = "tokens_saved"
        case traceID = "trace_id"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        attempts = try c.decodeIfPresent([UpstreamAttempt].self, forKey: .attempts) ?? []
        guardrails = try c.decodeIfPresent([GuardrailEvent].self, forKey: .guardrails) ?? []
        guardrailPolicy = try c.decodeIfPresent(String.self, forKey: .guardrailPolicy)
        routingScore = try c.decodeIfPresent(Double.self, forKey: .routingScore)
        cacheSimilarity = try c.decodeIfPresent(Double.self, forKey: .cacheSimilarity)
        tokensSaved = try c.decodeIfPresent(Int.self, forKey: .tokensSaved)
        traceID = try c.decodeIfPresent(String.self, forKey: .traceID)
    }

    /// The JSON text stored in the `details` column.
    public var jsonText: String {
        // Written directly, not with Foundation's encoder: this runs for every audit-log row.
        var out = ByteBuffer()
        out.reserveCapacity(128 + attempts.count * 80 + guardrails.count * 120)
        var object = ObjectWriter(&out)
        object.key("attempts", &out)
        writeArray(attempts, &out) { attempt, out in
            var a = ObjectWriter(&out)
            a.string("deployment", attempt.deployment, &out)
            a.string("error_code", attempt.errorCode, &out)
            a.finiteDouble("latency_ms", attempt.latencyMs, &out)
            a.int("status", attempt.status, &out)
            a.finish(&out)
        }
        object.finiteDouble("cache_similarity", cacheSimilarity, &out)
        object.string("guardrail_policy", guardrailPolicy, &out)
        object.key("guardrails", &out)
        writeArray(guardrails, &out) { event, out in
            var e = ObjectWriter(&out)
            e.string("action", event.action, &out)
            e.string("check", event.check, &out)
            e.string("direction", event.direction, &out)
            e.int("end", event.end, &out)
            e.int("index", event.index, &out)
            e.finiteDouble("score", event.score, &out)
            e.int("start", event.start, &out)
            e.string("type", event.type, &out)
            e.finish(&out)
        }
        object.finiteDouble("routing_score", routingScore, &out)
        object.int("tokens_saved", tokensSaved, &out)
        object.string("trace_id", traceID, &out)
        object.finish(&out)
        return String(buffer: out)
    }

    /// Details read back from the `details` column; a row written before the column existed has `{}`.
    public init(jsonText: String?) {
        guard let jsonText, let value = try? JSONCoding.decode(AuditDetails.self, from: ByteBuffer(string: jsonText)) else {
            self.init()
            return
        }
        self = value
    }
}

/// Where audit-log rows are kept.
public protocol AuditLogStore: Sendable {
    /// Appends rows in one transaction.
    func append(_ records: [AuditRecord]) async throws
    /// The most recent rows, newest first.
    func recent(limit: Int) async throws -> [AuditRecord]
    /// How many rows there are.
    func count() async throws -> Int
    /// Rows matching a search, newest first (by time, then id), at most `limit`.
    func search(_ search: AuditSearch) async throws -> [AuditRecord]
    /// One row by its request id.
    func record(id: String) async throws -> AuditRecord?
    /// Deletes rows older than `rowsBefore` and clears the bodies of rows older than
    /// `bodiesBefore` (Unix seconds); answers how many rows went and how many bodies.
    func purge(rowsBefore: Double?, bodiesBefore: Double?) async throws -> (rows: Int, bodies: Int)
    /// Whether the store answers (for `/readyz`).
    func ping() async throws
}

/// Accepts finished requests for the audit log without waiting (the writer batches them).
public protocol AuditLogSink: Sendable {
    func submit(_ record: AuditRecord)
}

/// An audit log kept in memory, for tests.
public actor InMemoryAuditLogStore: AuditLogStore, FlowReporter {
    private var rows: [AuditRecord] = []

    public init() {}

    public func append(_ records: [AuditRecord]) async throws { rows.append(contentsOf: records) }
    public func recent(limit: Int) async throws -> [AuditRecord] { Array(rows.suffix(limit).reversed()) }
    public func count() async throws -> Int { rows.count }
    public func ping() async throws {}
    public func record(id: String) async throws -> AuditRecord? { rows.last { $0.id == id } }

    public func purge(rowsBefore: Double?, bodiesBefore: Double?) async throws -> (rows: Int, bodies: Int) {
        let before = rows.count
        if let rowsBefore { rows.removeAll { $0.time < rowsBefore } }
        var bodies = 0
        if let bodiesBefore {
            for i in rows.indices where rows[i].time < bodiesBefore && (rows[i].requestBody != nil || rows[i].responseBody != nil) {
                rows[i].requestBody = nil
                rows[i].responseBody = nil
                bodies += 1
            }
        }
        return (before - rows.count, bodies)
    }

    public func flowStats(_ q: FlowStatsQuery) async throws -> FlowStats {
        let runs = rows.filter { $0.flow == q.flow && $0.time >= q.since && (q.version == nil || $0.flowVersion == q.version) }
        return FlowStats(runs: runs.map { ($0.status, $0.latencyMs, $0.costUSD) }, thresholds: q.latencyThresholds)
    }

    public func search(_ s: AuditSearch) async throws -> [AuditRecord] {
        let matching = rows.filter { r in
            if let from = s.from, r.time < from { return false }
            if let to = s.to, r.time >= to { return false }
            if let k = s.keyID, r.keyID != k { return false }
            if let t = s.teamID, r.teamID != t { return false }
            if let f = s.flow, r.flow != f { return false }
            if let v = s.flowVersion, r.flowVersion != v { return false }
            if let c = s.conversationID, r.conversationID != c { return false }
            if let e = s.experiment, r.experiment != e { return false }
            if let v = s.variant, r.variant != v { return false }
            if let m = s.model, r.modelRequested != m && r.deployment != m { return false }
            switch s.status {
            case .exact(let code)?: if r.status != code { return false }
            case .classOf(let h)?: if r.status / 100 != h { return false }
            case nil: break
            }
            if let c = s.cache, r.cacheStatus != c { return false }
            if let q = s.text?.lowercased(), !q.isEmpty {
                let fields = [r.id, r.modelRequested, r.deployment ?? "", r.endpoint, r.keyID, r.errorCode ?? "", r.requestBody ?? "", r.responseBody ?? ""]
                if !fields.contains(where: { $0.lowercased().contains(q) }) { return false }
            }
            if let c = s.cursor, !(r.time < c.time || (r.time == c.time && r.id < c.id)) { return false }
            return true
        }
        return Array(matching.sorted { ($0.time, $0.id) > ($1.time, $1.id) }.prefix(s.limit))
    }
}

/// A usage report's filter and grouping (`GET /admin/usage`).
public struct UsageQuery: Sendable, Hashable {
    /// How rows are grouped; nil sums everything into one row.
    public enum GroupBy: String, Sendable, CaseIterable { case key, team, model, day }

    /// Unix seconds, inclusive.
    public var from: Double?
    /// Unix seconds, exclusive.
    public var to: Double?
    public var keyID: String?
    public var teamID: String?
    public var model: String?
    public var groupBy: GroupBy?

    public init(from: Double? = nil, to: Double? = nil, keyID: String? = nil, teamID: String? = nil, model: String? = nil, groupBy: GroupBy? = nil) {
        self.from = from
        self.to = to
        self.keyID = keyID
        self.teamID = teamID
        self.model = model
        self.groupBy = groupBy
    }
}

extension UsageQuery {
    /// A filter's value, as a store binds it.
    public enum Value: Sendable, Hashable {
        case number(Double)
        case text(String)
    }

    /// The filters as `column comparison ?` conditions over the audit log, in a fixed order
    /// (both stores build their WHERE clause from this one list).
    public var filters: [(condition: String, value: Value)] {
        var out: [(String, Value)] = []
        if let from { out.append(("time >= ?", .number(from))) }
        if let to { out.append(("time < ?", .number(to))) }
        if let keyID { out.append(("key_id = ?", .text(keyID))) }
        if let teamID { out.append(("team_id = ?", .text(teamID))) }
        if let model { out.append(("model_requested = ?", .text(model))) }
        return out
    }
}

/// One row of a usage report.
public struct UsageRow: Sendable, Hashable {
    /// The group's value (key id, team id, model, or `YYYY-MM-DD`); nil without grouping.
    public var group: String?
    public var requests: Int
    public var tokensIn: Int
    public var tokensOut: Int
    public var costUSD: Double

    public init(group: String?, requests: Int, tokensIn: Int, tokensOut: Int, costUSD: Double) {
        self.group = group
        self.requests = requests
        self.tokensIn = tokensIn
        self.tokensOut = tokensOut
        self.costUSD = costUSD
    }
}

/// Usage summed from the audit log.
public protocol UsageReporter: Sendable {
    func usage(_ query: UsageQuery) async throws -> [UsageRow]
}

/// A request's messages and its answer as they passed through, kept by reference and decoded
/// only by the audit-log writer (a stream's text is gathered as it passes). Equal only to itself.
public final class CapturedExchange: Sendable, Hashable {
    public let messages: [ChatMessage]
    /// A whole answer, undecoded.
    public let result: ChatResult?
    /// A stream's answer: the first choice's text.
    public let streamText: String?

    /// About how many bytes the exchange holds (messages, answer, a stream's text), for the audit-log
    /// writer's byte bound.
    public let approximateBytes: Int

    public init(messages: [ChatMessage], result: ChatResult? = nil, streamText: String? = nil) {
        self.messages = messages
        self.result = result
        self.streamText = streamText
        var bytes = 0
        for m in messages {
            switch m.content {
            case .text(let t)?: bytes += t.utf8.count
            case .parts(let parts)?: for p in parts { bytes += p.raw.approximateBytes }
            case nil: break
            }
            for call in m.toolCalls ?? [] { bytes += call.function.arguments.utf8.count + 64 }
            bytes += 32
        }
        bytes += result.map { $0.encoded?.readableBytes ?? 1024 } ?? 0
        bytes += streamText?.utf8.count ?? 0
        approximateBytes = bytes
    }

    public static func == (a: CapturedExchange, b: CapturedExchange) -> Bool { a === b }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
