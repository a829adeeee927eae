import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Metrics
import NIOCore
import SluiceCore
import SluiceEvaluation
import SluiceStore

/// Closing the loop over HTTP: feedback on answers (`POST /v1/feedback`, `GET /admin/feedback`,
/// `GET /admin/feedback/summary`), judges (`POST /v1/judges/{name}/score|compare`,
/// `GET /admin/judgements`) and experiments (`GET /admin/experiments[/{name}]`,
/// `POST /admin/experiments/{name}/start|pause|stop`).
struct QualityRoutes: Sendable {
    let store: any QualityStore
    let log: any AuditLogStore
    /// Writes what is queued for the audit log, so feedback right after an answer finds its row.
    let flushAuditLog: @Sendable () async -> Void
    let experiments: Experiments
    let judges: Judges
    let evals: EvalJobs
    /// An uploaded file's text, when the caller may read it.
    let fileText: @Sendable (String, Principal?) async throws -> String?
    let body: RequestBodyReader
    /// The configured flows (metric labels).
    var knownFlows: Set<String> = []

    static let routes: [String: [HTTPRequest.Method]] = ["/v1/feedback": [.post], "/v1/judges/{name}/score": [.post], "/v1/judges/{name}/compare": [.post]]
    static let adminRoutes: [String: [HTTPRequest.Method]] = [
        "/admin/feedback": [.get], "/admin/feedback/summary": [.get], "/admin/judgements": [.get], "/admin/experiments": [.get],
        "/admin/experiments/{name}": [.get], "/admin/experiments/{name}/start": [.post], "/admin/experiments/{name}/pause": [.post],
        "/admin/experiments/{name}/stop": [.post], "/admin/evals": [.get, .post], "/admin/evals/{id}": [.get],
        "/admin/evals/{id}/report.html": [.get], "/admin/evals/{id}/cancel": [.post],
    ]

    /// `admin`: the `/admin/*` routes too (only where keys and roles guard them).
    func register(on router: Router<SluiceRequestContext>, admin: Bool) {
        router.post("/v1/feedback") { request, context in try await postFeedback(request, context) }
        router.post("/v1/judges/{name}/score") { request, context in try await score(request, context) }
        router.post("/v1/judges/{name}/compare") { request, context in try await compare(request, context) }
        guard admin else { return }
        router.get("/admin/feedback") { request, _ in try await listFeedback(request) }
        router.get("/admin/feedback/summary") { request, _ in try await summary(request) }
        router.get("/admin/judgements") { request, _ in try await listJudgements(request) }
        router.post("/admin/evals") { request, context in try await submitEval(request, context) }
        router.get("/admin/evals") { request, _ in try await listEvals(request) }
        router.get("/admin/evals/{id}") { request, context in try await evalRun(request, context) }
        router.get("/admin/evals/{id}/report.html") { _, context in
            let (_, report) = try await evals.report(context.parameters.get("id") ?? "")
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: report.html)))
        }
        router.post("/admin/evals/{id}/cancel") { _, context in
            try UsageRoutes.json(Self.json(try await evals.cancel(context.parameters.get("id") ?? ""), report: nil))
        }
        router.get("/admin/experiments") { _, _ in try await listExperiments() }
        router.get("/admin/experiments/{name}") { _, context in try await experiment(context) }
        for (action, status) in [("start", ExperimentState.Status.running), ("pause", .paused), ("stop", .stopped)] {
            router.post("/admin/experiments/{name}/\(action)") { _, context in
                let name = context.parameters.get("name") ?? ""
                _ = try await experiments.setStatus(name, status)
                return try await experimentResponse(name)
            }
        }
    }

    // MARK: Feedback

    func postFeedback(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let value = try await body.decode(JSONValue.self, from: request)
        guard case .object(let o) = value else { throw SluiceError(.invalidType, "The body must be a JSON object.") }
        for key in o.keys where !["request_id", "score", "label", "comment", "user"].contains(key) {
            throw SluiceError(.invalidValue, "Unknown field '\(key)'; feedback has request_id, score, label, comment and user.", param: key)
        }
        guard let requestID = o["request_id"]?.stringValue, !requestID.isEmpty else {
            throw SluiceError(.missingParameter, "Feedback needs the request_id of the answer (its x-request-id or id).", param: "request_id")
        }
        let score: Double
        switch o["score"] {
        case .string("up")?: score = 1
        case .string("down")?: score = 0
        case .int(let i)? where i == 0 || i == 1: score = Double(i)
        case .double(let d)? where d >= 0 && d <= 1: score = d
        case nil: throw SluiceError(.missingParameter, "Feedback needs a score: a number from 0 to 1, \"up\" or \"down\".", param: "score")
        default: throw SluiceError(.invalidValue, "score must be a number from 0 to 1, \"up\" or \"down\".", param: "score")
        }
        func text(_ name: String, max: Int) throws -> String? {
            switch o[name] {
            case nil, .null?: return nil
            case .string(let s)?:
                guard s.count <= max else { throw SluiceError(.invalidValue, "\(name) may be at most \(max) characters.", param: name) }
                return s
            default: throw SluiceError(.invalidType, "\(name) must be a string.", param: name)
            }
        }
        let label = try text("label", max: 100)
        let comment = try text("comment", max: 4000)
        let user = try text("user", max: 256) ?? ""
        var record = try await log.record(id: requestID)
        if record == nil {
            await flushAuditLog()
            record = try await log.record(id: requestID)
        }
        // Another team's request is as unknown as one that does not exist.
        guard let record, Self.mayRate(record, context.principal) else {
            throw SluiceError(.notFound, "No request with id '\(requestID)' made by your team.", param: "request_id")
        }
        let feedback = Feedback(
            requestID: requestID, user: user, teamID: record.teamID, score: score, label: label, comment: comment, time: Date().timeIntervalSince1970,
            subject: RequestSubject(record))
        try await store.putFeedback(feedback)
        Recorder(label: "sluice_feedback_score", dimensions: [("flow", Self.flowLabel(record.flow, known: knownFlows))]).record(score)
        return try UsageRoutes.json(Self.json(feedback))
    }

    /// A flow's name as a metric label: configured flows by name, the rest (flows added at run
    /// time, plain chat) grouped, so the label's values stay bounded.
    static func flowLabel(_ flow: String?, known: Set<String>) -> String {
        guard let flow else { return "none" }
        return known.contains(flow) ? flow : "other"
    }

    /// A key may rate its team's requests (its own, without a team); an admin any.
    static func mayRate(_ record: AuditRecord, _ principal: Principal?) -> Bool {
        guard let principal else { return true }
        if principal.key.role == .admin { return true }
        if let team = principal.team { return record.teamID == team.id }
        return record.keyID == principal.key.id
    }

    static func filter(_ q: FlatDictionary<Substring, Substring>, extra: Set<String> = []) throws -> QualityFilter {
        let known: Set<String> = ["flow", "flow_version", "version", "model", "experiment", "variant", "team", "from", "to", "limit"]
        for (key, _) in q where !known.contains(String(key)) && !extra.contains(String(key)) {
            throw SluiceError(.invalidValue, "Unknown query parameter '\(key)'.", param: String(key))
        }
        var f = QualityFilter(
            flow: q.get("flow"), model: q.get("model"), experiment: q.get("experiment"), variant: q.get("variant"), teamID: q.get("team"),
            from: try UsageRoutes.time(q.get("from"), "from"), to: try UsageRoutes.time(q.get("to"), "to", endOfDay: true))
        if let v = q.get("flow_version") ?? q.get("version") {
            f.flowVersion = try AuditLogRoutes.integer(v, "flow_version", default: 1, range: 1...1_000_000)
        }
        f.limit = try AuditLogRoutes.integer(q.get("limit"), "limit", default: 100, range: 1...1000)
        return f
    }

    func listFeedback(_ request: Request) async throws -> Response {
        let rows = try await store.feedback(try Self.filter(request.uri.queryParameters))
        return try UsageRoutes.json(.object(["object": "list", "data": .array(rows.map(Self.json))]))
    }

    /// Requests, success rate, feedback and judges' means per flow, version, model or variant.
    func summary(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        let filter = try Self.filter(q, extra: ["group_by"])
        let raw = q.get("group_by") ?? "flow_version"
        guard let grouping = QualityGrouping(rawValue: raw) else {
            throw SluiceError(
                .invalidValue, "group_by must be one of \(QualityGrouping.allCases.map(\.rawValue).joined(separator: ", ")).", param: "group_by")
        }
        let groups = try await store.groupMetrics(filter, by: grouping)
        let rows: [JSONValue] = groups.sorted { $0.key < $1.key }.map { key, g in
            var judges: [String: JSONValue] = [:]
            for (name, m) in g.judges { judges[name] = .object(["n": .int(m.count), "mean": Self.number(m.mean)]) }
            return .object([
                "group": .string(key), "requests": .int(g.requests),
                "success_rate": g.requests > 0 ? .double(Double(g.successes) / Double(g.requests)) : .null,
                "latency_ms_mean": Self.number(g.latencyMs.mean), "cost_usd_mean": Self.number(g.costUSD.mean),
                "feedback": .object(["n": .int(g.feedback.count), "mean": Self.number(g.feedback.mean)]), "judges": .object(judges),
            ])
        }
        return try UsageRoutes.json(.object(["object": "list", "group_by": .string(raw), "data": .array(rows)]))
    }

    static func number(_ x: Double?) -> JSONValue { x.map { $0.isFinite ? .double(($0 * 1e6).rounded() / 1e6) : .null } ?? .null }

    static func json(_ f: Feedback) -> JSONValue {
        .object([
            "object": "feedback", "request_id": .string(f.requestID), "user": .string(f.user), "score": .double(f.score),
            "label": f.label.map(JSONValue.string) ?? .null, "comment": f.comment.map(JSONValue.string) ?? .null, "time": .double(f.time),
            "team_id": .string(f.teamID), "flow": f.subject.flow.map(JSONValue.string) ?? .null,
            "flow_version": f.subject.flowVersion.map(JSONValue.int) ?? .null, "model": f.subject.model.map(JSONValue.string) ?? .null,
            "experiment": f.subject.experiment.map(JSONValue.string) ?? .null, "variant": f.subject.variant.map(JSONValue.string) ?? .null,
        ])
    }

    static func json(_ j: Judgement) -> JSONValue {
        .object([
            "object": "judgement", "request_id": .string(j.requestID), "judge": .string(j.judge), "score": .double(j.score),
            "reason": .string(j.reason), "judge_model": .string(j.judgeModel), "cost_usd": .double(j.costUSD), "time": .double(j.time),
            "flow": j.subject.flow.map(JSONValue.string) ?? .null, "flow_version": j.subject.flowVersion.map(JSONValue.int) ?? .null,
            "model": j.subject.model.map(JSONValue.string) ?? .null, "experiment": j.subject.experiment.map(JSONValue.string) ?? .null,
            "variant": j.subject.variant.map(JSONValue.string) ?? .null,
        ])
    }

    // MARK: Judges

    func listJudgements(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        let judge = q.get("judge")
        if let judge, judges.definitions[judge] == nil { throw SluiceError(.notFound, "No judge named '\(judge)'.", param: "judge") }
        let rows = try await store.judgements(try Self.filter(q, extra: ["judge"]), judge: judge)
        return try UsageRoutes.json(.object(["object": "list", "data": .array(rows.map(Self.json))]))
    }

    func judge(_ context: SluiceRequestContext) throws -> String {
        let name = context.parameters.get("name") ?? ""
        guard judges.definitions[name] != nil else {
            throw SluiceError(
                .notFound, "No judge named '\(name)' (judges: \(judges.definitions.keys.sorted().joined(separator: ", ").ifEmpty("none configured"))).",
                param: "name")
        }
        return name
    }

    static func fields(_ value: JSONValue, required: [String], optional: [String]) throws -> [String: String] {
        guard case .object(let o) = value else { throw SluiceError(.invalidType, "The body must be a JSON object.") }
        var out: [String: String] = [:]
        for (key, v) in o {
            guard required.contains(key) || optional.contains(key) else {
                throw SluiceError(.invalidValue, "Unknown field '\(key)' (fields: \((required + optional).joined(separator: ", "))).", param: key)
            }
            switch v {
            case .string(let s): out[key] = s
            case .null: continue
            case .array, .object:
                // Structured input or output is judged as its JSON.
                var buffer = ByteBuffer()
                try JSONWriter.write(v, to: &buffer)
                out[key] = String(buffer: buffer)
            default: throw SluiceError(.invalidType, "\(key) must be a string.", param: key)
            }
        }
        for key in required where out[key] == nil { throw SluiceError(.missingParameter, "\(key) is required.", param: key) }
        return out
    }

    func score(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let name = try judge(context)
        let value = try await body.decode(JSONValue.self, from: request)
        let f = try Self.fields(value, required: ["input", "output"], optional: ["reference"])
        var passages: [String] = []
        if case .object(let o) = value, case .array(let items)? = o["passages"] { passages = items.compactMap(\.stringValue) }
        let s = try await judges.score(
            judge: name, JudgeCase(input: f["input"]!, output: f["output"]!, reference: f["reference"], passages: passages),
            principal: context.principal)
        return try UsageRoutes.json(
            .object([
                "object": "judge.score", "judge": .string(name), "score": .double(s.score), "reason": .string(s.reason), "model": .string(s.model),
                "cost_usd": .double(s.costUSD),
            ]))
    }

    func compare(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let name = try judge(context)
        let f = try Self.fields(try await body.decode(JSONValue.self, from: request), required: ["input", "output_a", "output_b"], optional: ["reference"])
        let v = try await judges.compare(
            judge: name, input: f["input"]!, a: f["output_a"]!, b: f["output_b"]!, reference: f["reference"], principal: context.principal)
        return try UsageRoutes.json(
            .object([
                "object": "judge.comparison", "judge": .string(name), "winner": .string(v.winner), "consistent": .bool(v.winner != "inconsistent"),
                "verdicts": .array(v.verdicts.map(JSONValue.string)), "reasons": .array(v.reasons.map(JSONValue.string)), "cost_usd": .double(v.costUSD),
            ]))
    }

    // MARK: Evaluations

    func submitEval(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let value = try await body.decode(JSONValue.self, from: request)
        let spec = try await EvalSpec(json: value, file: { id in try await fileText(id, context.principal) })
        let run = try await evals.submit(spec)
        var headers: HTTPFields = [.contentType: "application/json"]
        headers[.location] = "/admin/evals/\(run.id)"
        return Response(status: .accepted, headers: headers, body: .init(byteBuffer: try JSONCoding.encode(Self.json(run, report: nil))))
    }

    func listEvals(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        for (key, _) in q where key != "limit" { throw SluiceError(.invalidValue, "Unknown query parameter '\(key)'.", param: String(key)) }
        let limit = try AuditLogRoutes.integer(q.get("limit"), "limit", default: 20, range: 1...200)
        let runs = try await store.evalRuns(limit: limit)
        return try UsageRoutes.json(.object(["object": "list", "data": .array(runs.map { Self.json($0, report: nil) })]))
    }

    /// Progress, and the report once there are results (`?results=true` adds every case).
    func evalRun(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let q = request.uri.queryParameters
        for (key, _) in q where key != "results" { throw SluiceError(.invalidValue, "Unknown query parameter '\(key)'.", param: String(key)) }
        let (run, report) = try await evals.report(context.parameters.get("id") ?? "")
        var json = report.json
        if q.get("results") != "true", case .object(var o) = json {
            o["results"] = nil
            json = .object(o)
        }
        return try UsageRoutes.json(Self.json(run, report: json))
    }

    static func json(_ run: EvalRunRecord, report: JSONValue?) -> JSONValue {
        var o: [String: JSONValue] = [
            "object": "eval", "id": .string(run.id), "status": .string(run.status.rawValue), "created_at": .double(run.createdAt),
            "updated_at": .double(run.updatedAt), "total": .int(run.total), "done": .int(run.done), "errors": .int(run.errors),
            "error": run.error.map(JSONValue.string) ?? .null, "report_html": .string("/admin/evals/\(run.id)/report.html"),
        ]
        if let spec = Array(run.spec.utf8).withUnsafeBytes({ JSONParser.parse($0) }), case .object(let s) = spec { o["flow"] = s["flow"] ?? .null }
        if let report { o["report"] = report }
        return .object(o)
    }

    // MARK: Experiments

    func listExperiments() async throws -> Response {
        var rows: [JSONValue] = []
        for name in experiments.configs.keys.sorted() {
            let (analysis, state) = try await experiments.analyze(name)
            rows.append(analysis.json(status: state.status, promoted: state.promoted))
        }
        return try UsageRoutes.json(.object(["object": "list", "data": .array(rows)]))
    }

    func experiment(_ context: SluiceRequestContext) async throws -> Response {
        try await experimentResponse(context.parameters.get("name") ?? "")
    }

    func experimentResponse(_ name: String) async throws -> Response {
        let (analysis, state) = try await experiments.analyze(name)
        return try UsageRoutes.json(analysis.json(status: state.status, promoted: state.promoted))
    }
}

extension String {
    fileprivate func ifEmpty(_ other: String) -> String { isEmpty ? other : self }
}
