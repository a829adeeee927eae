import Logging
import SluiceCore
import SluiceStore
import Testing

/// Searching the audit log, the same over every store: in memory, SQLite, and PostgreSQL when
/// the test cluster is there.
@Suite struct AuditSearchTests {
    func stores() async throws -> [(String, any AuditLogStore)] {
        var out: [(String, any AuditLogStore)] = [
            ("memory", InMemoryAuditLogStore()), ("sqlite", SQLiteAuditLogStore(database: try SQLiteDatabase(path: ":memory:"))),
        ]
        if let url = try await PostgresTestDatabase.fresh() {
            out.append(("postgres", PostgresAuditLogStore(database: try await PostgresDatabase(url: url, logger: Logger(label: "test")))))
        }
        return out
    }

    func row(_ id: String, time: Double, model: String = "gpt-4o", deployment: String? = "gpt-4o-azure", status: Int = 200, key: String = "k1",
             team: String = "", cache: String = "miss", error: String? = nil, flow: String? = nil, flowVersion: Int? = nil) -> AuditRecord {
        AuditRecord(
            id: id, time: time, endpoint: "chat.completions", keyID: key, modelRequested: model, deployment: deployment, status: status, errorCode: error,
            latencyMs: 12, ttftMs: nil, tokensIn: 3, tokensOut: 4, costUSD: 0.01, cacheStatus: cache, stream: false, attempts: 1, teamID: team,
            flow: flow, flowVersion: flowVersion, conversationID: flow == nil ? nil : "conv_\(id.suffix(1))")
    }

    @Test func filtersAndCursorPagesAgreeAcrossStores() async throws {
        // 25 rows; two share a time, so the cursor has to break ties by id.
        var rows: [AuditRecord] = []
        for i in 0..<25 {
            let model = i % 2 == 0 ? "gpt-4o" : "claude"
            let limited = i % 5 == 0
            let status = limited ? 429 : 200
            let error: String? = limited ? "rate_limit_exceeded" : nil
            let key = i < 10 ? "k1" : "k2"
            let team = i % 3 == 0 ? "t1" : ""
            let cache = i % 4 == 0 ? "hit" : "miss"
            let id = "req_" + String(format: "%02d", i)
            let flow: String? = i % 6 == 0 ? "triage" : nil
            rows.append(
                row(id, time: 1000 + Double(i), model: model, status: status, key: key, team: team, cache: cache, error: error, flow: flow,
                    flowVersion: flow == nil ? nil : (i < 12 ? 1 : 2)))
        }
        rows.append(row("req_tie", time: 1010))
        for (name, store) in try await stores() {
            try await store.append(rows)
            // Newest first, page by page, nothing lost or repeated.
            var seen: [String] = []
            var search = AuditSearch(limit: 7)
            while true {
                let page = try await store.search(search)
                seen += page.map(\.id)
                guard page.count == 7, let last = page.last else { break }
                search.cursor = AuditSearch.Cursor(time: last.time, id: last.id)
            }
            let expected: [String] = rows.sorted { (a: AuditRecord, b: AuditRecord) in (a.time, a.id) > (b.time, b.id) }.map { $0.id }
            #expect(seen == expected, "\(name)")

            let count: (AuditSearch) async throws -> Int = { try await store.search($0).count }
            #expect(try await count(AuditSearch(from: 1005, to: 1010, limit: 100)) == 5, "\(name)")
            #expect(try await count(AuditSearch(keyID: "k1", limit: 100)) == 11, "\(name)")
            #expect(try await count(AuditSearch(teamID: "t1", limit: 100)) == 9, "\(name)")
            #expect(try await count(AuditSearch(model: "claude", limit: 100)) == 12, "\(name)")
            #expect(try await count(AuditSearch(model: "gpt-4o-azure", limit: 100)) == 26, "\(name): the deployment matches too")
            #expect(try await count(AuditSearch(status: .exact(429), limit: 100)) == 5, "\(name)")
            #expect(try await count(AuditSearch(status: .classOf(2), limit: 100)) == 21, "\(name)")
            #expect(try await count(AuditSearch(cache: "hit", limit: 100)) == 7, "\(name)")
            #expect(try await count(AuditSearch(text: "RATE_LIMIT", limit: 100)) == 5, "\(name): case-insensitive")
            #expect(try await count(AuditSearch(text: "req_1", limit: 100)) == 10, "\(name)")
            // LIKE's wildcards in the text are literal.
            #expect(try await count(AuditSearch(text: "%", limit: 100)) == 0, "\(name)")
            #expect(try await count(AuditSearch(keyID: "k2", status: .exact(429), cache: "hit", limit: 100)) == 1, "\(name)")
            #expect(try await count(AuditSearch(flow: "triage", limit: 100)) == 5, "\(name)")
            #expect(try await count(AuditSearch(flow: "triage", flowVersion: 2, limit: 100)) == 3, "\(name)")
            #expect(try await store.record(id: "req_06")?.flow == "triage", "\(name)")
            #expect(try await store.record(id: "req_12")?.flowVersion == 2, "\(name)")
            #expect(try await store.record(id: "req_07")?.flow == nil, "\(name)")
            #expect(try await store.record(id: "req_06")?.conversationID == "conv_6", "\(name)")
            var byConversation = AuditSearch(limit: 100)
            byConversation.conversationID = "conv_6"
            #expect(try await store.search(byConversation).map(\.id) == ["req_06"], "\(name)")
            #expect(try await store.record(id: "req_07")?.time == 1007, "\(name)")
            #expect(try await store.record(id: "nope") == nil, "\(name)")
        }
    }

    @Test func flowStatisticsAgreeAcrossStores() async throws {
        // 20 runs of v1 (latencies 10...200 ms, every fifth a 502) and 5 of v2, plus one other flow and one old run.
        var rows: [AuditRecord] = []
        for i in 1...20 {
            var r = row("f1-\(i)", time: 5000 + Double(i), status: i % 5 == 0 ? 502 : 200, flow: "triage", flowVersion: 1)
            r.latencyMs = Double(i * 10)
            r.costUSD = 0.001
            rows.append(r)
        }
        for i in 1...5 {
            var r = row("f2-\(i)", time: 5100 + Double(i), flow: "triage", flowVersion: 2)
            r.latencyMs = 1000
            rows.append(r)
        }
        rows.append(row("other", time: 5200, flow: "summarize", flowVersion: 1))
        rows.append(row("old", time: 10, flow: "triage", flowVersion: 1))
        for (name, store) in try await stores() {
            guard let reporter = store as? any FlowReporter else {
                Issue.record("\(name) cannot report flows")
                continue
            }
            try await store.append(rows)
            let v1 = try await reporter.flowStats(FlowStatsQuery(flow: "triage", version: 1, since: 1000, latencyThresholds: [150, 500]))
            #expect(v1.requests == 20 && v1.successes == 16, "\(name)")
            #expect(abs(v1.costUSD - 0.02) < 1e-12, "\(name)")
            #expect(v1.p50Ms == 100 && v1.p95Ms == 190 && v1.p99Ms == 200, "\(name): \(v1)")
            #expect(v1.slowerThan == [150: 5, 500: 0], "\(name)")
            let all = try await reporter.flowStats(FlowStatsQuery(flow: "triage", since: 1000))
            #expect(all.requests == 25 && all.p99Ms == 1000, "\(name)")
            let none = try await reporter.flowStats(FlowStatsQuery(flow: "nope", since: 0, latencyThresholds: [1]))
            #expect(none.requests == 0 && none.p50Ms == nil && none.slowerThan[1] ?? 0 == 0, "\(name)")
        }
    }

    @Test func purgeDeletesOldRowsAndClearsOldBodies() async throws {
        for (name, store) in try await stores() {
            var rows: [AuditRecord] = []
            for (i, t) in [100.0, 200, 300, 400].enumerated() {
                var r = row("p\(i)", time: t)
                r.requestBody = #"[{"role":"user","content":"hi"}]"#
                r.responseBody = "hello"
                rows.append(r)
            }
            try await store.append(rows)
            let done = try await store.purge(rowsBefore: 150, bodiesBefore: 350)
            #expect(done.rows == 1 && done.bodies == 2, "\(name): \(done)")
            #expect(try await store.record(id: "p0") == nil, "\(name)")
            #expect(try await store.record(id: "p1")?.requestBody == nil, "\(name)")
            #expect(try await store.record(id: "p2")?.responseBody == nil, "\(name)")
            let kept = try await store.record(id: "p3")
            #expect(kept?.requestBody == #"[{"role":"user","content":"hi"}]"# && kept?.responseBody == "hello", "\(name)")
            // Nothing left to do: a second purge changes nothing.
            let again = try await store.purge(rowsBefore: 150, bodiesBefore: 350)
            #expect(again.rows == 0 && again.bodies == 0, "\(name)")
        }
    }

    @Test func cursorsRoundTripAndRefuseGarbage() {
        let c = AuditSearch.Cursor(time: 1_732_000_000.123456, id: "req_a:b")
        #expect(AuditSearch.Cursor(encoded: c.encoded) == c)
        #expect(AuditSearch.Cursor(encoded: "not a cursor") == nil)
        #expect(AuditSearch.Cursor(encoded: "") == nil)
    }
}
