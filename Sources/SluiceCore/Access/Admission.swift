import Foundation
import Synchronization

/// What one request asks of the limits: who asks (key and team, each with its limits), how many
/// tokens and how much money it may use at most.
public struct AdmissionRequest: Sendable {
    /// One party whose limits apply (`key:<id>`, `team:<id>`).
    public struct Scope: Sendable, Hashable {
        public var id: String
        public var limits: Limits
        public init(id: String, limits: Limits) {
            self.id = id
            self.limits = limits
        }
    }

    public var scopes: [Scope]
    /// Prompt tokens (estimated) plus the output cap: reserved against tokens per minute.
    public var tokens: Int
    /// The most the request can cost in USD at the served model's price: reserved against budgets.
    public var costUSD: Double

    public init(scopes: [Scope], tokens: Int, costUSD: Double) {
        self.scopes = scopes
        self.tokens = tokens
        self.costUSD = costUSD
    }
}

/// An admitted request's reservations, to settle once its real usage is known.
public struct AdmissionGrant: Sendable {
    public let id: UInt64
    public let scopes: [String]
    public let tokens: Int
    public let costUSD: Double
    /// The budget windows the reservation was made in (UTC day index, month index).
    public let day: Int
    public let month: Int
    /// The `x-ratelimit-*` headers to send with the answer.
    public let headers: [(String, String)]

    public init(id: UInt64, scopes: [String], tokens: Int, costUSD: Double, day: Int, month: Int, headers: [(String, String)]) {
        self.id = id
        self.scopes = scopes
        self.tokens = tokens
        self.costUSD = costUSD
        self.day = day
        self.month = month
        self.headers = headers
    }
}

/// Limits, budgets and concurrency: admit before the call, settle after it.
public protocol UsageLimiter: Sendable {
    /// Reserves the request's share of every limit, or throws a 429 `SluiceError` (with
    /// `Retry-After` and `x-ratelimit-*` headers) and reserves nothing.
    func admit(_ request: AdmissionRequest) async throws -> AdmissionGrant
    /// Replaces the reservation with the real usage and frees the concurrency slot. Call exactly
    /// once per grant: on success, error, timeout and client disconnect alike.
    func settle(_ grant: AdmissionGrant, tokens: Int, costUSD: Double)
}

/// Exact limits for one process, in memory: sliding 60-second windows of requests and tokens,
/// concurrency slots, and USD budgets per UTC day and month seeded from the audit log's spend.
/// Every check and reservation for a request happens under one lock, so concurrent requests can
/// never pass a limit together, and a refused request reserves nothing.
public final class LocalUsageLimiter: UsageLimiter {
    private struct Event {
        var grant: UInt64
        var at: Double
        var tokens: Int
    }

    // A class: a scope's window is changed in place under the lock (a struct copied out of the
    // dictionary and back copied its whole window on every request).
    private final class ScopeState {
        var events: [Event] = []
        /// Index of the oldest live event in `events` (expired ones are dropped in batches).
        var head = 0
        var tokens = 0
        var inFlight = 0
        var day = -1
        var month = -1
        var daySpent = 0.0
        var dayReserved = 0.0
        var monthSpent = 0.0
        var monthReserved = 0.0

        func expire(before cutoff: Double) {
            while head < events.count && events[head].at <= cutoff {
                tokens -= events[head].tokens
                head += 1
            }
            if head > 64 && head * 2 > events.count {
                events.removeFirst(head)
                head = 0
            }
        }

        var requestCount: Int { events.count - head }

        var usage: ScopeUsage {
            ScopeUsage(
                requests: requestCount, tokens: tokens, oldestAt: requestCount > 0 ? events[head].at : nil, inFlight: inFlight,
                dayCommitted: daySpent + dayReserved, monthCommitted: monthSpent + monthReserved)
        }
    }

    private struct State {
        var scopes: [String: ScopeState] = [:]
        var nextGrant: UInt64 = 0

        mutating func state(_ id: String) -> ScopeState {
            if let st = scopes[id] { return st }
            let st = ScopeState()
            scopes[id] = st
            return st
        }
    }

    private let state = Mutex(State())
    private let ledger: (any SpendLedger)?
    private let clock: @Sendable () -> Double

    /// `ledger` seeds each budget window with what the audit log already records; `clock` gives
    /// Unix seconds (tests move it).
    public init(ledger: (any SpendLedger)?, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.ledger = ledger
        self.clock = clock
    }

    public func admit(_ request: AdmissionRequest) async throws -> AdmissionGrant {
        let now = clock()
        let day = LimitRules.dayIndex(now)
        let month = LimitRules.monthIndex(now)
        // Budget windows start from the audit log's spend: read it outside the lock, once per
        // scope and window.
        for scope in request.scopes where scope.limits.budgetUSDDay != nil || scope.limits.budgetUSDMonth != nil {
            let needed = state.withLock { s in
                let current = s.scopes[scope.id]
                return current?.day != day || current?.month != month
            }
            if needed { try await seedBudget(scope.id, now: now, day: day, month: month) }
        }
        return try state.withLock { s in
            // Check every scope first; reserve only if all pass.
            // The first scope with request or token limits answers the `x-ratelimit-*` headers.
            let headerIndex = request.scopes.firstIndex { $0.limits.rpm != nil || $0.limits.tpm != nil }
            for scope in request.scopes {
                let st = s.state(scope.id)
                st.expire(before: now - 60)
                Self.roll(st, day: day, month: month)
                try LimitRules.check(scope, st.usage, request: request, now: now)
            }
            s.nextGrant += 1
            let grant = s.nextGrant
            for scope in request.scopes {
                let st = s.state(scope.id)
                // Only windows that are limited are kept (an unlimited key's would grow with its rate).
                if scope.limits.rpm != nil || scope.limits.tpm != nil {
                    st.events.append(Event(grant: grant, at: now, tokens: request.tokens))
                    st.tokens += request.tokens
                }
                st.inFlight += 1
                st.dayReserved += request.costUSD
                st.monthReserved += request.costUSD
            }
            let headers = headerIndex.map { i in LimitRules.headers(request.scopes[i].limits, s.scopes[request.scopes[i].id]!.usage, now: now) } ?? []
            return AdmissionGrant(
                id: grant, scopes: request.scopes.map(\.id), tokens: request.tokens, costUSD: request.costUSD, day: day, month: month,
                headers: headers)
        }
    }

    public func settle(_ grant: AdmissionGrant, tokens: Int, costUSD: Double) {
        state.withLock { s in
            for id in grant.scopes {
                guard let st = s.scopes[id] else { continue }
                st.inFlight = max(0, st.inFlight - 1)
                // The token reservation becomes the real count, in the minute it was made.
                if let i = st.events[st.head...].lastIndex(where: { $0.grant == grant.id }) {
                    st.tokens += tokens - st.events[i].tokens
                    st.events[i].tokens = tokens
                }
                // A window that rolled over meanwhile has dropped this reservation already.
                if st.day == grant.day {
                    st.dayReserved = max(0, st.dayReserved - grant.costUSD)
                    st.daySpent += costUSD
                }
                if st.month == grant.month {
                    st.monthReserved = max(0, st.monthReserved - grant.costUSD)
                    st.monthSpent += costUSD
                }
            }
        }
    }

    /// Requests in flight for a scope (for tests and metrics).
    public func inFlight(_ scope: String) -> Int { state.withLock { $0.scopes[scope]?.inFlight ?? 0 } }

    /// Requests and tokens in a scope's current 60-second window (kept for limited scopes only).
    public func window(_ scope: String) -> (requests: Int, tokens: Int) {
        let now = clock()
        return state.withLock { s in
            guard let st = s.scopes[scope] else { return (0, 0) }
            st.expire(before: now - 60)
            return (st.requestCount, st.tokens)
        }
    }

    /// USD spent and reserved today for a scope.
    public func daySpend(_ scope: String) -> (spent: Double, reserved: Double) {
        state.withLock { s in s.scopes[scope].map { ($0.daySpent, $0.dayReserved) } ?? (0, 0) }
    }

    private func seedBudget(_ scope: String, now: Double, day: Int, month: Int) async throws {
        var daySpent = 0.0
        var monthSpent = 0.0
        if let ledger {
            let (keyID, teamID) = LimitRules.parties(scope)
            daySpent = try await ledger.spend(keyID: keyID, teamID: teamID, since: Double(day) * 86_400)
            monthSpent = try await ledger.spend(keyID: keyID, teamID: teamID, since: LimitRules.monthStart(now))
        }
        state.withLock { s in
            let st = s.state(scope)
            // Another request may have seeded it meanwhile; the first one wins.
            if st.day != day {
                st.day = day
                st.daySpent = daySpent
                st.dayReserved = 0
            }
            if st.month != month {
                st.month = month
                st.monthSpent = monthSpent
                st.monthReserved = 0
            }
        }
    }

    private static func roll(_ st: ScopeState, day: Int, month: Int) {
        // Scopes without budgets are never seeded: start their windows here.
        if st.day != day {
            st.day = day
            st.daySpent = 0
            st.dayReserved = 0
        }
        if st.month != month {
            st.month = month
            st.monthSpent = 0
            st.monthReserved = 0
        }
    }
}

/// What a scope has used in the current windows, as a limiter reads it.
public struct ScopeUsage: Sendable {
    public var requests: Int
    public var tokens: Int
    /// When the oldest request still in the 60 s window came.
    public var oldestAt: Double?
    public var inFlight: Int
    /// Spent plus reserved, USD, this UTC day and month.
    public var dayCommitted: Double
    public var monthCommitted: Double

    public init(requests: Int, tokens: Int, oldestAt: Double?, inFlight: Int, dayCommitted: Double, monthCommitted: Double) {
        self.requests = requests
        self.tokens = tokens
        self.oldestAt = oldestAt
        self.inFlight = inFlight
        self.dayCommitted = dayCommitted
        self.monthCommitted = monthCommitted
    }
}

/// The rules every `UsageLimiter` applies, whatever keeps its counts: what passes, what is
/// refused with which error and `Retry-After`, and the `x-ratelimit-*` headers.
public enum LimitRules {
    /// Throws the refusal if one more request of `request`'s size does not fit `scope`'s limits.
    public static func check(_ scope: AdmissionRequest.Scope, _ u: ScopeUsage, request: AdmissionRequest, now: Double) throws {
        let l = scope.limits
        let untilOldestLeaves = secondsUntil((u.oldestAt ?? now) + 60, now)
        if let rpm = l.rpm, u.requests + 1 > rpm {
            throw refusal(
                .rateLimited, "Rate limit reached for requests: \(rpm) per minute (\(label(scope.id))). Retry in \(untilOldestLeaves) s.",
                retry: untilOldestLeaves, l, u, now)
        }
        if let tpm = l.tpm {
            if request.tokens > tpm {
                throw SluiceError(
                    .invalidValue,
                    "This request may use up to \(request.tokens) tokens, more than the \(tpm) tokens per minute allowed (\(label(scope.id))); lower max_tokens.",
                    param: "max_tokens")
            }
            if u.tokens + request.tokens > tpm {
                throw refusal(
                    .rateLimited, "Rate limit reached for tokens: \(tpm) per minute (\(label(scope.id))). Retry in \(untilOldestLeaves) s.",
                    retry: untilOldestLeaves, l, u, now)
            }
        }
        if let max = l.maxConcurrent, u.inFlight + 1 > max {
            throw refusal(.rateLimited, "Too many concurrent requests: at most \(max) at once (\(label(scope.id))).", retry: 1, l, u, now)
        }
        if let budget = l.budgetUSDDay, u.dayCommitted + request.costUSD > budget {
            let retry = secondsUntil(Double(dayIndex(now) + 1) * 86_400, now)
            throw refusal(
                .insufficientQuota, "The daily budget of $\(budget) is spent (\(label(scope.id))); it renews at 00:00 UTC.", retry: retry, l, u, now)
        }
        if let budget = l.budgetUSDMonth, u.monthCommitted + request.costUSD > budget {
            let retry = secondsUntil(nextMonthStart(now), now)
            throw refusal(
                .insufficientQuota, "The monthly budget of $\(budget) is spent (\(label(scope.id))); it renews on the 1st at 00:00 UTC.",
                retry: retry, l, u, now)
        }
    }

    private static func refusal(_ code: SluiceError.Code, _ message: String, retry: Int, _ l: Limits, _ u: ScopeUsage, _ now: Double) -> SluiceError {
        var error = SluiceError(code, message, retryAfter: retry)
        error.headers = Dictionary(headers(l, u, now: now), uniquingKeysWith: { a, _ in a })
        return error
    }

    /// OpenAI's `x-ratelimit-*` headers for one scope's limits and usage.
    public static func headers(_ l: Limits, _ u: ScopeUsage, now: Double) -> [(String, String)] {
        var out: [(String, String)] = []
        out.reserveCapacity(6)
        let reset = u.oldestAt.map { max(0, $0 + 60 - now) } ?? 0
        if let rpm = l.rpm {
            out.append(("x-ratelimit-limit-requests", String(rpm)))
            out.append(("x-ratelimit-remaining-requests", String(max(0, rpm - u.requests))))
            out.append(("x-ratelimit-reset-requests", duration(reset)))
        }
        if let tpm = l.tpm {
            out.append(("x-ratelimit-limit-tokens", String(tpm)))
            out.append(("x-ratelimit-remaining-tokens", String(max(0, tpm - u.tokens))))
            out.append(("x-ratelimit-reset-tokens", duration(reset)))
        }
        return out
    }

    /// OpenAI's reset format: `1s`, `6m0s`, `250ms`.
    public static func duration(_ seconds: Double) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        let whole = Int(seconds.rounded(.up))
        return whole >= 60 ? "\(whole / 60)m\(whole % 60)s" : "\(whole)s"
    }

    static func secondsUntil(_ t: Double, _ now: Double) -> Int { max(1, Int((t - now).rounded(.up))) }

    /// The key or team id a scope stands for.
    public static func parties(_ scope: String) -> (keyID: String?, teamID: String?) {
        if scope.hasPrefix("key:") { return (String(scope.dropFirst(4)), nil) }
        if scope.hasPrefix("team:") { return (nil, String(scope.dropFirst(5))) }
        return (nil, nil)
    }

    static func label(_ scope: String) -> String {
        if scope.hasPrefix("key:") { return "key \(scope.dropFirst(4))" }
        if scope.hasPrefix("team:") { return "team \(scope.dropFirst(5))" }
        return scope
    }

    // UTC calendar arithmetic without Foundation's Calendar (which costs microseconds per call):
    // Howard Hinnant's days <-> civil date algorithms.

    private static func civil(_ days: Int) -> (year: Int, month: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month)
    }

    private static func days(year: Int, month: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public static func dayIndex(_ now: Double) -> Int { Int((now / 86_400).rounded(.down)) }

    public static func monthIndex(_ now: Double) -> Int {
        let c = civil(dayIndex(now))
        return c.year * 12 + c.month
    }

    public static func monthStart(_ now: Double) -> Double {
        let c = civil(dayIndex(now))
        return Double(days(year: c.year, month: c.month)) * 86_400
    }

    public static func nextMonthStart(_ now: Double) -> Double {
        let c = civil(dayIndex(now))
        let next = c.month == 12 ? (c.year + 1, 1) : (c.year, c.month + 1)
        return Double(days(year: next.0, month: next.1)) * 86_400
    }
}
