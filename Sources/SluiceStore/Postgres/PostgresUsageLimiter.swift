import Foundation
import Logging
import PostgresNIO
import SluiceCore

/// Limits exact across replicas: each admission is one PostgreSQL transaction that locks the
/// caller's scopes (advisory locks, in a fixed order), reads the last minute's requests and
/// tokens, the slots held and the budget windows, applies `LimitRules`, and reserves. Slots are
/// leases that lapse after `slotLease` so a replica that dies holding them cannot leak them.
/// About a millisecond per request on a local database: the price of exact shared limits.
public final class PostgresUsageLimiter: UsageLimiter {
    let db: PostgresDatabase
    let slotLease: Double
    private var client: PostgresClient { db.client }
    private var logger: Logger { db.logger }
    /// Settlements written off the request path (a service of the application: bounded, and
    /// drained at graceful shutdown before the pool closes).
    public let settlements: BackgroundWork<Settlement>

    /// A reservation to settle with what the request really used.
    public struct Settlement: Sendable {
        var grant: AdmissionGrant
        var tokens: Int
        var costUSD: Double
    }

    public init(database: PostgresDatabase, slotLease: Duration = .seconds(3600), pendingSettlements: Int = 100_000) {
        self.db = database
        self.slotLease = Double(slotLease.components.seconds)
        self.settlements = BackgroundWork(name: "limit settlements", capacity: pendingSettlements, concurrency: 4, logger: database.logger) { settlement in
            do {
                try await Self.settle(settlement, in: database)
            } catch {
                // A failure only leaves a slot held until its lease lapses.
                database.logger.warning("could not settle a limit reservation", metadata: ["error": "\(error)"])
            }
        }
    }

    public func admit(_ request: AdmissionRequest) async throws -> AdmissionGrant {
        let logger = self.logger
        let lease = slotLease
        // A refusal thrown inside rolls the transaction back; it reaches the caller as it was thrown.
        return try await Self.unwrapped { try await self.client.withTransaction(logger: logger) { conn in
            let now = try await Self.now(conn, logger)
            let day = LimitRules.dayIndex(now)
            let month = LimitRules.monthIndex(now)
            for scope in request.scopes.map(\.id).sorted() {
                try await conn.query("SELECT pg_advisory_xact_lock(hashtextextended(\(scope), 7243))", logger: logger)
            }
            var usages: [ScopeUsage] = []
            for scope in request.scopes {
                let usage = try await Self.usage(
                    conn, logger, scope: scope, now: now, dayStart: Double(day) * 86_400, monthStart: LimitRules.monthStart(now))
                try LimitRules.check(scope, usage, request: request, now: now)
                usages.append(usage)
            }
            var grant: UInt64 = 0
            for try await id in try await conn.query("SELECT nextval('limit_grants')", logger: logger).decode(Int.self) { grant = UInt64(id) }
            let grantID = Int(grant)
            let tokens = request.tokens
            let cost = request.costUSD
            for scope in request.scopes {
                if scope.limits.rpm != nil || scope.limits.tpm != nil {
                    try await conn.query(
                        "INSERT INTO limit_events (scope, grant_id, at, tokens) VALUES (\(scope.id), \(grantID), \(now), \(tokens))", logger: logger)
                }
                if scope.limits.maxConcurrent != nil {
                    try await conn.query(
                        "INSERT INTO limit_slots (scope, grant_id, expires_at) VALUES (\(scope.id), \(grantID), \(now + lease))", logger: logger)
                }
                if scope.limits.budgetUSDDay != nil || scope.limits.budgetUSDMonth != nil {
                    try await conn.query("UPDATE limit_budgets SET reserved = reserved + \(cost) WHERE scope = \(scope.id)", logger: logger)
                }
            }
            var headers: [(String, String)] = []
            if let i = request.scopes.firstIndex(where: { $0.limits.rpm != nil || $0.limits.tpm != nil }) {
                var u = usages[i]
                u.requests += 1
                u.tokens += tokens
                if u.oldestAt == nil { u.oldestAt = now }
                headers = LimitRules.headers(request.scopes[i].limits, u, now: now)
            }
            return AdmissionGrant(
                id: grant, scopes: request.scopes.map(\.id), tokens: tokens, costUSD: cost, day: day, month: month, headers: headers)
        } }
    }

    private static func unwrapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError { throw inner }
            throw error
        }
    }

    public func settle(_ grant: AdmissionGrant, tokens: Int, costUSD: Double) {
        settlements.submit(Settlement(grant: grant, tokens: tokens, costUSD: costUSD))
    }

    /// `settle`, awaited (tests).
    public func settleNow(_ grant: AdmissionGrant, tokens: Int, costUSD: Double) async throws {
        try await Self.settle(Settlement(grant: grant, tokens: tokens, costUSD: costUSD), in: db)
    }

    static func settle(_ settlement: Settlement, in db: PostgresDatabase) async throws {
        let (grant, tokens, costUSD) = (settlement.grant, settlement.tokens, settlement.costUSD)
        let logger = db.logger
        let grantID = Int(grant.id)
        let dayStart = Double(grant.day) * 86_400
        let monthStart = LimitRules.monthStart(dayStart)
        try await db.client.withTransaction(logger: logger) { conn in
            for scope in grant.scopes.sorted() {
                try await conn.query("SELECT pg_advisory_xact_lock(hashtextextended(\(scope), 7243))", logger: logger)
                try await conn.query("DELETE FROM limit_slots WHERE scope = \(scope) AND grant_id = \(grantID)", logger: logger)
                try await conn.query("UPDATE limit_events SET tokens = \(tokens) WHERE scope = \(scope) AND grant_id = \(grantID)", logger: logger)
                // Only windows the reservation was made in (a rolled-over window dropped it).
                try await conn.query(
                    """
                    UPDATE limit_budgets SET reserved = GREATEST(0, reserved - \(grant.costUSD)), spent = spent + \(costUSD)
                    WHERE scope = \(scope) AND ((period = 'day' AND window_start = \(dayStart)) OR (period = 'month' AND window_start = \(monthStart)))
                    """, logger: logger)
            }
        }
    }

    /// Requests holding a concurrency slot for a scope.
    public func inFlight(_ scope: String) async throws -> Int {
        for try await n in try await client.query("SELECT COUNT(*) FROM limit_slots WHERE scope = \(scope)", logger: logger).decode(Int.self) {
            return n
        }
        return 0
    }

    private static func now(_ conn: PostgresConnection, _ logger: Logger) async throws -> Double {
        // The database's clock: replicas agree on windows even if theirs drift.
        for try await t in try await conn.query("SELECT EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION", logger: logger).decode(Double.self) {
            return t
        }
        return Date().timeIntervalSince1970
    }

    /// What the scope has used, reading only what its limits need.
    private static func usage(
        _ conn: PostgresConnection, _ logger: Logger, scope s: AdmissionRequest.Scope, now: Double, dayStart: Double, monthStart: Double
    ) async throws -> ScopeUsage {
        let scope = s.id
        var u = ScopeUsage(requests: 0, tokens: 0, oldestAt: nil, inFlight: 0, dayCommitted: 0, monthCommitted: 0)
        if s.limits.rpm != nil || s.limits.tpm != nil {
            try await conn.query("DELETE FROM limit_events WHERE scope = \(scope) AND at <= \(now - 60)", logger: logger)
            for try await (n, t, oldest) in try await conn.query(
                "SELECT COUNT(*), COALESCE(SUM(tokens), 0)::BIGINT, MIN(at) FROM limit_events WHERE scope = \(scope)", logger: logger
            ).decode((Int, Int, Double?).self) {
                u.requests = n
                u.tokens = t
                u.oldestAt = oldest
            }
        }
        if s.limits.maxConcurrent != nil {
            try await conn.query("DELETE FROM limit_slots WHERE scope = \(scope) AND expires_at <= \(now)", logger: logger)
            for try await n in try await conn.query("SELECT COUNT(*) FROM limit_slots WHERE scope = \(scope)", logger: logger).decode(Int.self) {
                u.inFlight = n
            }
        }
        if s.limits.budgetUSDDay != nil || s.limits.budgetUSDMonth != nil {
            u.dayCommitted = try await budget(conn, logger, scope: scope, period: "day", windowStart: dayStart)
            u.monthCommitted = try await budget(conn, logger, scope: scope, period: "month", windowStart: monthStart)
        }
        return u
    }

    /// Spent plus reserved in a budget window; a new window starts from the audit log's spend.
    private static func budget(_ conn: PostgresConnection, _ logger: Logger, scope: String, period: String, windowStart: Double) async throws -> Double {
        for try await (start, spent, reserved) in try await conn.query(
            "SELECT window_start, spent, reserved FROM limit_budgets WHERE scope = \(scope) AND period = \(period)", logger: logger
        ).decode((Double, Double, Double).self) where start == windowStart {
            return spent + reserved
        }
        let (keyID, teamID) = LimitRules.parties(scope)
        var spent = 0.0
        let column = keyID != nil ? "key_id" : "team_id"
        if let party = keyID ?? teamID {
            let query = PostgresQuery(
                unsafeSQL: "SELECT COALESCE(SUM(cost_usd), 0)::DOUBLE PRECISION FROM requests WHERE \(column) = $1 AND time >= $2",
                binds: {
                    var b = PostgresBindings()
                    b.append(party)
                    b.append(windowStart)
                    return b
                }())
            for try await v in try await conn.query(query, logger: logger).decode(Double.self) { spent = v }
        }
        try await conn.query(
            """
            INSERT INTO limit_budgets (scope, period, window_start, spent, reserved) VALUES (\(scope), \(period), \(windowStart), \(spent), 0)
            ON CONFLICT (scope, period) DO UPDATE SET window_start = EXCLUDED.window_start, spent = EXCLUDED.spent, reserved = 0
            """, logger: logger)
        return spent
    }
}
