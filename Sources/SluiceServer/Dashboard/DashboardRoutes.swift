import Foundation
import HTTPTypes
import HummingbirdCore
import Hummingbird
import Mustache
import NIOCore
import SluiceBatch
import SluiceCore
import SluiceEvaluation
import SluiceFlows
import SluiceObservability
import SluiceRouting

/// `GET /dashboard…`: server-rendered pages for admins and viewers: overview, models and
/// deployments, flows (each with its versions, objectives and recent runs), keys and teams, the
/// audit log with a detail view, guardrail events and alerts.
/// A sign-in form puts the key in an HttpOnly, SameSite=Strict cookie; pages load nothing from
/// elsewhere (a Content-Security-Policy says so) and draw charts as inline SVG.
struct DashboardRoutes: Sendable {
    let directory: KeyDirectory
    let log: any AuditLogStore
    let access: any AccessStore
    let ledger: any SpendLedger
    let board: DeploymentBoard
    let alerts: AlertEvaluator
    let flows: FlowCatalog
    let flowStats: any FlowReporter
    /// Experiments and server-run evaluations (the Quality page).
    var experiments: Experiments?
    var evals: EvalJobs?
    var quality: (any QualityStore)?
    /// Batches (the Batches page) and the limit they run under.
    var batches: (any BatchStore)?
    var batchConcurrency = 0
    let library: MustacheLibrary

    static let cookieName = "sluice_session"
    /// Rows read for the overview and the guardrail page at most.
    static let maxRows = 50_000

    init(
        directory: KeyDirectory, log: any AuditLogStore, access: any AccessStore, ledger: any SpendLedger, board: DeploymentBoard, alerts: AlertEvaluator,
        flows: FlowCatalog, flowStats: any FlowReporter
    ) throws {
        self.flows = flows
        self.flowStats = flowStats
        self.directory = directory
        self.log = log
        self.access = access
        self.ledger = ledger
        self.board = board
        self.alerts = alerts
        var library = MustacheLibrary()
        for (name, text) in DashboardTemplates.all { try library.register(text, named: name) }
        self.library = library
    }

    static let routes: [String: [HTTPRequest.Method]] = [
        "/dashboard": [.get], "/dashboard/login": [.get, .post], "/dashboard/logout": [.post], "/dashboard/models": [.get],
        "/dashboard/keys": [.get], "/dashboard/requests": [.get], "/dashboard/guardrails": [.get], "/dashboard/alerts": [.get],
        "/dashboard/flows": [.get], "/dashboard/quality": [.get],
        "/dashboard/batches": [.get],
    ]

    func register(on router: Router<SluiceRequestContext>) {
        router.get("/dashboard/login") { _, _ in page("login", title: "Sign in", principal: nil, [:]) }
        router.post("/dashboard/login") { request, _ in try await signIn(request) }
        router.post("/dashboard/logout") { _, _ in signOut() }
        router.get("/dashboard") { request, _ in try await guarded(request) { try await overview(request, $0) } }
        router.get("/dashboard/models") { request, _ in try await guarded(request) { try await models($0) } }
        router.get("/dashboard/keys") { request, _ in try await guarded(request) { try await keys($0) } }
        router.get("/dashboard/requests") { request, _ in try await guarded(request) { try await auditLog(request, $0) } }
        router.get("/dashboard/requests/{id}") { request, context in
            try await guarded(request) { try await requestDetail(context.parameters.get("id") ?? "", $0) }
        }
        router.get("/dashboard/guardrails") { request, _ in try await guarded(request) { try await guardrailEvents($0) } }
        router.get("/dashboard/flows") { request, _ in try await guarded(request) { try await flowList($0) } }
        router.get("/dashboard/flows/{name}") { request, context in
            try await guarded(request) { try await flowDetail(context.parameters.get("name") ?? "", $0) }
        }
        router.get("/dashboard/alerts") { request, _ in try await guarded(request) { alertList($0) } }
        router.get("/dashboard/quality") { request, _ in try await guarded(request) { try await qualityPage($0) } }
        router.get("/dashboard/batches") { request, _ in try await guarded(request) { try await batchList($0) } }
        router.get("/dashboard/evals/{id}") { request, context in
            try await guarded(request) { _ in
                guard let evals else { throw SluiceError(.notFound, "Evaluations are not set up.") }
                let (_, report) = try await evals.report(context.parameters.get("id") ?? "")
                var headers = HTTPFields()
                headers[.contentType] = "text/html; charset=utf-8"
                headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: report.html)))
            }
        }
    }

    /// Experiments (each variant's runs and feedback, the decision), feedback per flow version,
    /// and server-run evaluations with their progress and reports.
    func qualityPage(_ p: Principal) async throws -> Response {
        var experimentRows: [[String: Any]] = []
        if let experiments {
            for name in experiments.configs.keys.sorted() {
                let (a, state) = try await experiments.analyze(name)
                let variants = a.variants.map { v -> String in
                    let f = v.metrics["feedback"]
                    let feedback = f?.mean.map { String(format: "%.2f", $0) } ?? "—"
                    return "\(v.name): \(v.requests) runs, feedback \(feedback) (n \(f?.n ?? 0))"
                }
                experimentRows.append([
                    "name": name, "subject": a.config.flow.map { "flow \($0)" } ?? "alias \(a.config.alias ?? "")", "status": state.status.rawValue,
                    "primary": a.config.primary, "variants": variants.joined(separator: "; "), "decision": a.decision.text, "reason": a.reason,
                    "decisionClass": { if case .winner = a.decision { return "good" } else { return "muted" } }(),
                ])
            }
        }
        var feedbackRows: [[String: String]] = []
        if let quality {
            let groups = try await quality.groupMetrics(QualityFilter(from: Date().timeIntervalSince1970 - 7 * 86_400), by: .flow)
            for (flow, g) in groups.sorted(by: { $0.key < $1.key }) {
                let judges = g.judges.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2f", $0.value.mean ?? 0)) (n \($0.value.count))" }
                feedbackRows.append([
                    "flow": flow, "runs": "\(g.requests)", "feedback": g.feedback.mean.map { String(format: "%.2f", $0) } ?? "—", "n": "\(g.feedback.count)",
                    "judges": judges.isEmpty ? "—" : judges.joined(separator: ", "),
                ])
            }
        }
        var evalRows: [[String: String]] = []
        if let quality {
            for run in try await quality.evalRuns(limit: 20) {
                let flow = Array(run.spec.utf8).withUnsafeBytes { JSONParser.parse($0) }?["flow"]?.stringValue ?? "—"
                var recommendation = "—"
                if let report = run.report, let json = Array(report.utf8).withUnsafeBytes({ JSONParser.parse($0) }) {
                    recommendation = json["recommendation"]?["reason"]?.stringValue ?? "—"
                }
                evalRows.append([
                    "id": run.id, "flow": flow, "status": run.status.rawValue, "progress": "\(run.done) / \(run.total)", "errors": "\(run.errors)",
                    "created": Self.utc(run.createdAt), "recommendation": recommendation,
                    "statusClass": run.status == .completed ? "good" : run.status == .failed ? "bad" : "muted",
                ])
            }
        }
        return page("quality", title: "Quality", principal: p, ["experiments": experimentRows, "feedback": feedbackRows, "evals": evalRows])
    }

    /// The newest batches of every owner: status, lines answered, progress, rate and ETA.
    func batchList(_ p: Principal) async throws -> Response {
        var rows: [[String: String]] = []
        var queued = 0
        let now = Date().timeIntervalSince1970
        for b in try await batches?.batches(owner: nil, page: ListPage(limit: 100)).prefix(100) ?? [] {
            let progress = BatchProgress(b, now: now)
            if b.status == .inProgress { queued += max(0, b.total - progress.done) }
            let files = [b.outputFileID.map { "output \($0)" }, b.errorFileID.map { "errors \($0)" }].compactMap { $0 }
            rows.append([
                "id": b.id, "owner": b.owner, "endpoint": b.endpoint, "created": Self.utc(b.createdAt), "status": b.status.rawValue,
                "statusClass": b.status == .completed ? "good" : [.failed, .expired, .cancelled].contains(b.status) ? "bad" : "muted",
                "done": "\(progress.done)", "total": "\(b.total)", "failed": "\(b.failed)", "percent": String(format: "%.0f", progress.fraction * 100),
                "rate": progress.rate.map { String(format: "%.1f lines/s", $0) } ?? "—", "eta": progress.eta.map(BatchProgress.duration) ?? "—",
                "files": files.isEmpty ? "—" : files.joined(separator: ", "),
                "errors": b.errors.isEmpty ? "" : "\(b.errors.count) input error\(b.errors.count == 1 ? "" : "s"): \(b.errors[0].message)",
            ])
        }
        return page("batches", title: "Batches", principal: p, ["batches": rows, "queued": "\(queued)", "concurrency": "\(batchConcurrency)"])
    }

    // MARK: Session

    /// The signed-in principal from the session cookie, if its key is valid and may read the dashboard.
    func principal(_ request: Request) -> Principal? {
        guard let key = Self.cookie(Self.cookieName, in: request.headers[.cookie]),
            case .success(let p) = directory.authenticate(key), p.key.role == .admin || p.key.role == .viewer
        else { return nil }
        return p
    }

    func guarded(_ request: Request, _ render: (Principal) async throws -> Response) async throws -> Response {
        guard let p = principal(request) else {
            return Response(status: .seeOther, headers: [.location: "/dashboard/login"])
        }
        return try await render(p)
    }

    func signIn(_ request: Request) async throws -> Response {
        let body = try await RequestBodyReader.collect(
            request, upTo: 16 * 1024, tooLarge: SluiceError(.requestTooLarge, "The sign-in form is larger than 16 KB."))
        let form = Self.form(String(buffer: body))
        let key = form["key"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        switch directory.authenticate(key) {
        case .success(let p) where p.key.role == .admin || p.key.role == .viewer:
            var headers = HTTPFields()
            headers[.location] = "/dashboard"
            headers[.setCookie] = "\(Self.cookieName)=\(key); Path=/dashboard; HttpOnly; SameSite=Strict"
            return Response(status: .seeOther, headers: headers)
        case .success(let p):
            return page("login", title: "Sign in", principal: nil, ["error": "This key's role '\(p.key.role.rawValue)' may not use the dashboard; use an admin or viewer key."], status: .forbidden)
        case .failure(let error):
            return page("login", title: "Sign in", principal: nil, ["error": error.message], status: .unauthorized)
        }
    }

    func signOut() -> Response {
        var headers = HTTPFields()
        headers[.location] = "/dashboard/login"
        headers[.setCookie] = "\(Self.cookieName)=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0"
        return Response(status: .seeOther, headers: headers)
    }

    // MARK: Pages

    func overview(_ request: Request, _ p: Principal) async throws -> Response {
        let range = request.uri.queryParameters.get("range") ?? "1h"
        let windows: [(String, String, Double)] = [("1h", "hour", 3600), ("24h", "day", 86_400)]
        guard let chosen = windows.first(where: { $0.0 == range }) else {
            throw SluiceError(.invalidValue, "range must be 1h or 24h.", param: "range")
        }
        let now = Date().timeIntervalSince1970
        let rows = try await log.search(AuditSearch(from: now - chosen.2, limit: Self.maxRows))
        let s = TrafficSummary(rows: rows, now: now, window: chosen.2, truncated: rows.count == Self.maxRows)
        let cards: [[String: String]] = [
            ["label": "Requests", "value": "\(s.requests)"], ["label": "Requests/s", "value": String(format: "%.2f", s.requestsPerSecond)],
            ["label": "Latency p50", "value": Self.ms(s.p50Ms)], ["label": "Latency p95", "value": Self.ms(s.p95Ms)],
            ["label": "Latency p99", "value": Self.ms(s.p99Ms)], ["label": "TTFT p50 / p95", "value": "\(Self.ms(s.ttftP50Ms)) / \(Self.ms(s.ttftP95Ms))"],
            ["label": "Error rate", "value": Self.percent(s.errorRate)], ["label": "Cost", "value": Self.usd(s.costUSD)],
            ["label": "Cache hit rate", "value": s.cacheLookups == 0 ? "—" : Self.percent(s.cacheHitRate)],
            ["label": "Tokens in / out", "value": "\(s.tokensIn) / \(s.tokensOut)"],
        ]
        return page(
            "overview", title: "Overview", principal: p,
            [
                "rangeLabel": chosen.1, "ranges": windows.map { ["value": $0.0, "label": "last \($0.1)"] }, "cards": cards, "truncated": s.truncated,
                "rows": "\(rows.count)",
                "requestsChart": SVGChart.bars(s.buckets.map { Double($0.requests) }, label: "Requests per interval"),
                "latencyChart": SVGChart.line(s.buckets.map(\.p95Ms), label: "p95 latency per interval"),
                "errorsChart": SVGChart.bars(s.buckets.map { Double($0.errors) }, label: "Errors per interval", colour: "#dc2626"),
            ])
    }

    func models(_ p: Principal) async throws -> Response {
        let now = Date().timeIntervalSince1970
        let rows = try await log.search(AuditSearch(from: now - 3600, limit: Self.maxRows))
        let s = TrafficSummary(rows: rows, now: now, window: 3600)
        let models: [[String: String]] = s.models.map { m in
            [
                "model": m.model, "requests": "\(m.requests)", "errorRate": Self.percent(m.requests == 0 ? 0 : Double(m.errors) / Double(m.requests)),
                "p50": Self.ms(m.p50Ms), "p95": Self.ms(m.p95Ms), "tokensIn": "\(m.tokensIn)", "tokensOut": "\(m.tokensOut)", "cost": Self.usd(m.costUSD),
            ]
        }
        let deployments: [[String: String]] = board.statuses.keys.sorted().map { name in
            let snap = board.statuses[name]!.snapshot()
            let breaker: String =
                switch snap.breaker {
                case .closed: "closed"
                case .open: "open"
                case .halfOpen: "half-open"
                }
            return [
                "name": name, "breaker": breaker, "breakerClass": snap.breaker == .closed ? "good" : "bad", "inFlight": "\(snap.inFlight)",
                "latency": Self.ms(snap.latencyMs), "ttft": Self.ms(snap.ttftMs),
            ]
        }
        return page("models", title: "Models", principal: p, ["models": models, "deployments": deployments])
    }

    func keys(_ p: Principal) async throws -> Response {
        let now = Date().timeIntervalSince1970
        let day = AlertEvaluator.periodStart(.day, now: now)
        let month = AlertEvaluator.periodStart(.month, now: now)
        let teams = try await access.teams()
        let names = Dictionary(teams.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        var teamRows: [[String: String]] = []
        for t in teams.sorted(by: { $0.name < $1.name }) {
            teamRows.append([
                "name": t.name, "rpm": t.limits.rpm.map(String.init) ?? "—", "tpm": t.limits.tpm.map(String.init) ?? "—",
                "day": Self.spendBar(try await ledger.spend(keyID: nil, teamID: t.id, since: day), t.limits.budgetUSDDay),
                "month": Self.spendBar(try await ledger.spend(keyID: nil, teamID: t.id, since: month), t.limits.budgetUSDMonth),
            ])
        }
        var keyRows: [[String: String]] = []
        for k in try await access.keys().sorted(by: { $0.createdAt > $1.createdAt }).prefix(200) {
            let refusal = k.refusal(at: now)
            keyRows.append([
                "name": k.name, "id": k.id, "team": k.teamID.flatMap { names[$0] } ?? "—", "role": k.role.rawValue,
                "state": refusal == nil ? "active" : (k.revokedAt != nil ? "revoked" : "expired"), "stateClass": refusal == nil ? "good" : "bad",
                "rpm": k.limits.rpm.map(String.init) ?? "—", "tpm": k.limits.tpm.map(String.init) ?? "—",
                "day": Self.spendBar(try await ledger.spend(keyID: k.id, teamID: nil, since: day), k.limits.budgetUSDDay),
                "month": Self.spendBar(try await ledger.spend(keyID: k.id, teamID: nil, since: month), k.limits.budgetUSDMonth),
            ])
        }
        return page("keys", title: "Keys and teams", principal: p, ["teams": teamRows, "keys": keyRows])
    }

    func auditLog(_ request: Request, _ p: Principal) async throws -> Response {
        let q = request.uri.queryParameters
        var values: [String: Any] = [:]
        for name in ["model", "key", "status", "q"] { values[name] = q.get(name) ?? "" }
        // Empty form fields mean no filter.
        var params = FlatDictionary<Substring, Substring>()
        for (k, v) in q where !v.isEmpty && k != "cursor" { params[k] = v }
        do {
            var search = try AuditLogRoutes.search(params, extra: [])
            if let raw = q.get("cursor") {
                guard let cursor = AuditSearch.Cursor(encoded: raw) else {
                    throw SluiceError(.invalidValue, "cursor is not one this page made; follow the Older link as it came.", param: "cursor")
                }
                search.cursor = cursor
            }
            search.limit = 51
            var rows = try await log.search(search)
            if rows.count > 50, let last = rows.dropLast().last {
                rows.removeLast()
                var link = params.map { "\($0.key)=\(Self.queryEscape(String($0.value)))" }
                link.append("cursor=\(AuditSearch.Cursor(time: last.time, id: last.id).encoded)")
                values["next"] = "/dashboard/requests?" + link.joined(separator: "&")
            }
            values["rows"] = rows.map { r -> [String: String] in
                [
                    "time": Self.utc(r.time), "id": r.id, "model": r.modelRequested, "deployment": r.deployment ?? "—", "status": "\(r.status)",
                    "statusClass": r.status >= 400 ? "bad" : "", "latency": String(format: "%.0f", r.latencyMs), "tokens": "\(r.tokensIn + r.tokensOut)",
                    "cost": Self.usd(r.costUSD), "cache": r.cacheStatus,
                ]
            }
        } catch let error as SluiceError {
            values["error"] = error.message
            values["rows"] = [[String: String]]()
        }
        return page("requests", title: "Audit log", principal: p, values)
    }

    func requestDetail(_ id: String, _ p: Principal) async throws -> Response {
        guard let r = try await log.record(id: id) else {
            return page("requests", title: "Audit log", principal: p, ["error": "No request with id '\(id)' in the audit log.", "rows": [[String: String]]()], status: .notFound)
        }
        let fields: [[String: String]] = [
            ["name": "time (UTC)", "value": Self.utc(r.time)], ["name": "endpoint", "value": r.endpoint], ["name": "key", "value": r.keyID.isEmpty ? "—" : r.keyID],
            ["name": "team", "value": r.teamID.isEmpty ? "—" : r.teamID], ["name": "model", "value": r.modelRequested],
            ["name": "deployment", "value": r.deployment ?? "—"], ["name": "status", "value": "\(r.status)\(r.errorCode.map { " (\($0))" } ?? "")"],
            ["name": "latency", "value": Self.ms(r.latencyMs)], ["name": "time to first token", "value": Self.ms(r.ttftMs)],
            ["name": "tokens in / out", "value": "\(r.tokensIn) / \(r.tokensOut)"], ["name": "cost", "value": Self.usd(r.costUSD)],
            ["name": "cache", "value": r.cacheStatus], ["name": "stream", "value": r.stream ? "yes" : "no"],
            ["name": "guardrail policy", "value": r.details.guardrailPolicy ?? "—"],
            ["name": "routing score", "value": r.details.routingScore.map { String(format: "%.2f", $0) } ?? "—"],
        ]
        return page(
            "request", title: "Request \(id)", principal: p,
            [
                "id": id, "fields": fields,
                "attempts": r.details.attempts.map { ["deployment": $0.deployment, "status": "\($0.status)", "error": $0.errorCode ?? "", "ms": String(format: "%.0f", $0.latencyMs)] },
                "events": r.details.guardrails.map {
                    [
                        "direction": $0.direction, "check": $0.check, "type": $0.type, "index": "\($0.index)", "start": "\($0.start)", "end": "\($0.end)",
                        "score": String(format: "%.2f", $0.score), "action": $0.action,
                    ]
                },
                "requestBody": r.requestBody ?? "", "responseBody": r.responseBody ?? "",
            ])
    }

    func guardrailEvents(_ p: Principal) async throws -> Response {
        let rows = try await log.search(AuditSearch(limit: 5000))
        var counts: [[String]: Int] = [:]
        var latest: [[String: String]] = []
        for r in rows {
            for e in r.details.guardrails {
                counts[[e.direction, e.check, e.type, e.action], default: 0] += 1
                if latest.count < 50 {
                    latest.append([
                        "time": Self.utc(r.time), "id": r.id, "direction": e.direction, "check": e.check, "type": e.type,
                        "score": String(format: "%.2f", e.score), "action": e.action,
                    ])
                }
            }
        }
        let table = counts.sorted { ($0.value, $1.key.joined()) > ($1.value, $0.key.joined()) }.map {
            ["direction": $0.key[0], "check": $0.key[1], "type": $0.key[2], "action": $0.key[3], "count": "\($0.value)"]
        }
        return page("guardrails", title: "Guardrails", principal: p, ["counts": table, "latest": latest, "scanned": "\(rows.count)"])
    }

    func alertList(_ p: Principal) -> Response {
        let rows: [[String: String]] = alerts.snapshot().map { rule, state in
            [
                "name": rule.name, "kind": rule.kind.rawValue, "status": state.firing ? "firing" : "ok", "statusClass": state.firing ? "bad" : "good",
                "value": state.value.map { String(format: "%.3g", $0) } ?? "—", "threshold": String(format: "%.3g", AlertEvaluator.threshold(rule)),
                "since": state.since.map(Self.utc) ?? "—", "message": state.value.map { AlertEvaluator.describe(rule, value: $0) } ?? "not yet decided",
            ]
        }
        return page("alerts", title: "Alerts", principal: p, ["alerts": rows])
    }

    func flowList(_ p: Principal) async throws -> Response {
        let now = Date().timeIntervalSince1970
        var rows: [[String: Any]] = []
        for name in flows.names {
            let d = try flows.definition(name)
            let s = try await flowStats.flowStats(FlowStatsQuery(flow: name, since: now - 86_400, latencyThresholds: SLOReport.thresholds(d.config.slo)))
            let report = SLOReport(flow: name, version: nil, slo: d.config.slo, stats: [("24h", s)])
            let objectives = report.windows[0].objectives
            let missed = objectives.filter { $0.met == false }.map(\.name)
            rows.append([
                "name": name, "description": d.config.description ?? "", "version": "\(d.version)", "model": d.config.model,
                "output": { if case .schema = d.config.output { return "JSON schema" } else { return "text" } }(), "runs": "\(s.requests)",
                "success": s.requests == 0 ? "—" : Self.percent(Double(s.successes) / Double(s.requests)), "p95": Self.ms(s.p95Ms),
                "cost": s.requests == 0 ? "—" : Self.usd(s.costUSD / Double(s.requests)),
                "slo": objectives.isEmpty ? "—" : missed.isEmpty ? "met" : "missed: " + missed.joined(separator: ", "),
                "sloClass": objectives.isEmpty ? "muted" : missed.isEmpty ? "good" : "bad",
            ])
        }
        return page("flows", title: "Flows", principal: p, ["flows": rows])
    }

    func flowDetail(_ name: String, _ p: Principal) async throws -> Response {
        let (active, versions) = try flows.versions(name)
        let current = try flows.definition(name)
        let now = Date().timeIntervalSince1970
        var windows: [(window: String, stats: FlowStats)] = []
        for (window, seconds) in SLOReport.windows {
            windows.append(
                (window, try await flowStats.flowStats(FlowStatsQuery(flow: name, since: now - seconds, latencyThresholds: SLOReport.thresholds(current.config.slo)))))
        }
        let report = SLOReport(flow: name, version: nil, slo: current.config.slo, stats: windows)
        let objectives: [[String: String]] = report.windows.flatMap { w in
            w.objectives.map { o in
                [
                    "window": w.window, "name": o.name, "target": Self.number(o.target), "actual": o.actual.map(Self.number) ?? "—",
                    "met": o.met.map { $0 ? "met" : "missed" } ?? "no runs", "metClass": o.met.map { $0 ? "good" : "bad" } ?? "muted",
                    "budget": o.errorBudgetLeft.map { Self.percent($0) } ?? "—",
                ]
            }
        }
        let summary: [[String: String]] = report.windows.map { w in
            [
                "window": w.window, "runs": "\(w.requests)", "success": w.successRate.map(Self.percent) ?? "—", "p50": Self.ms(w.p50Ms),
                "p95": Self.ms(w.p95Ms), "p99": Self.ms(w.p99Ms), "cost": w.costPerRunUSD.map(Self.usd) ?? "—",
            ]
        }
        let rows = try await log.search(AuditSearch(from: now - 86_400, flow: name, limit: Self.maxRows))
        let traffic = TrafficSummary(rows: rows, now: now, window: 86_400, truncated: rows.count == Self.maxRows)
        let recent: [[String: String]] = rows.prefix(20).map { r in
            [
                "id": r.id, "link": "/dashboard/requests/" + Self.queryEscape(r.id), "time": Self.utc(r.time), "version": r.flowVersion.map(String.init) ?? "—",
                "status": "\(r.status)", "statusClass": r.status < 400 ? "good" : "bad", "latency": Self.ms(r.latencyMs), "cost": Self.usd(r.costUSD),
            ]
        }
        let versionRows: [[String: String]] = versions.reversed().map { v in
            [
                "version": "\(v.version)", "active": v.version == active ? "active" : "", "model": v.config.model,
                "created": v.createdAt.map(Self.utc) ?? "the config", "diff": v.version > 1 ? "/admin/flows/\(Self.queryEscape(name))/diff?from=\(v.version - 1)&to=\(v.version)" : "",
            ]
        }
        return page(
            "flow", title: "Flow \(name)", principal: p,
            [
                "name": name, "description": current.config.description ?? "", "active": "\(active)", "versions": versionRows, "summary": summary,
                "objectives": objectives, "recent": recent, "definition": current.rendered,
                "requestsChart": SVGChart.bars(traffic.buckets.map { Double($0.requests) }, label: "Runs per interval"),
                "latencyChart": SVGChart.line(traffic.buckets.map(\.p95Ms), label: "p95 latency per interval"),
                "errorsChart": SVGChart.bars(traffic.buckets.map { Double($0.errors) }, label: "Failed runs per interval", colour: "#dc2626"),
                "costChart": SVGChart.bars(traffic.buckets.map(\.costUSD), label: "Cost per interval (USD)"),
            ])
    }

    static func number(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e12 ? String(Int(v)) : String(format: "%.4g", v) }

    // MARK: Rendering

    static let nav: [(String, String)] = [
        ("/dashboard", "Overview"), ("/dashboard/models", "Models"), ("/dashboard/flows", "Flows"), ("/dashboard/keys", "Keys & teams"),
        ("/dashboard/requests", "Audit log"),
        ("/dashboard/guardrails", "Guardrails"), ("/dashboard/quality", "Quality"), ("/dashboard/batches", "Batches"),
        ("/dashboard/alerts", "Alerts"),
    ]

    func page(_ template: String, title: String, principal: Principal?, _ values: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        var context = values
        context["title"] = title
        if let principal {
            context["signedIn"] = true
            context["who"] = principal.key.name
            context["role"] = principal.key.role.rawValue
            context["nav"] = Self.nav.map {
                ["href": $0.0, "label": $0.1, "on": $0.1 == title || (title.hasPrefix("Request ") && $0.1 == "Audit log") || (title.hasPrefix("Flow ") && $0.1 == "Flows")]
            }
        }
        let html = library.render(context, withTemplate: template) ?? "<!doctype html><title>Sluice</title><p>Template \(template) is missing."
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("x-content-type-options")!] = "nosniff"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    // MARK: Formatting and parsing

    static func ms(_ v: Double?) -> String { v.map { $0 >= 100 ? String(format: "%.0f ms", $0) : String(format: "%.1f ms", $0) } ?? "—" }
    static func percent(_ v: Double) -> String { String(format: "%.1f%%", v * 100) }
    static func usd(_ v: Double) -> String { v == 0 ? "$0" : v < 0.01 ? String(format: "$%.5f", v) : String(format: "$%.2f", v) }

    static func utc(_ t: Double) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return f.string(from: Date(timeIntervalSince1970: t))
    }

    /// Spend against a budget as text and a bar (SVG-free HTML; the values are numbers only).
    static func spendBar(_ spent: Double, _ budget: Double?) -> String {
        guard let budget, budget > 0 else { return "\(usd(spent)) <span class=\"muted\">no budget</span>" }
        let share = min(1, spent / budget)
        return "<span class=\"bar\"><i style=\"width:\(Int(share * 100))%\"></i></span> \(usd(spent)) / \(usd(budget))"
    }

    /// One cookie's value from a `Cookie` header.
    static func cookie(_ name: String, in header: String?) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces)
            if pair.hasPrefix(name + "=") { return String(pair.dropFirst(name.count + 1)) }
        }
        return nil
    }

    /// An `application/x-www-form-urlencoded` body.
    static func form(_ body: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            if let k = parts.first { out[k] = parts.count > 1 ? parts[1] : "" }
        }
        return out
    }

    static func queryEscape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }
}
