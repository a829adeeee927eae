import Foundation
import HTTPTypes
import Hummingbird
import SluiceCore
import SluiceFlows

/// `GET /admin/flows`, `/admin/flows/{name}` and `/admin/flows/{name}/slo`: the flows, their
/// definitions, and their objectives against what the audit log recorded. Readable by admins and
/// viewers.
struct FlowAdminRoutes: Sendable {
    let catalog: FlowCatalog
    let reporter: any FlowReporter

    static let routes: [String: [HTTPRequest.Method]] = ["/admin/flows": [.get]]

    func register(on router: Router<SluiceRequestContext>) {
        router.get("/admin/flows") { _, _ in try list() }
        router.get("/admin/flows/{name}") { request, context in try await show(context.parameters.get("name") ?? "", request) }
        router.get("/admin/flows/{name}/slo") { request, context in try await slo(context.parameters.get("name") ?? "", request) }
    }

    func list() throws -> Response {
        let flows: [JSONValue] = try catalog.names.map { try Self.summary(catalog.definition($0)) }
        return try Self.json(.object(["object": "list", "data": .array(flows)]))
    }

    func show(_ name: String, _ request: Request) async throws -> Response {
        try Self.refuseQuery(request, allowed: [])
        let definition = try catalog.definition(name)
        var body = Self.summary(definition).objectValue ?? [:]
        body["definition"] = Self.definitionJSON(definition.config)
        // The last day's objectives, as a status line.
        let report = try await report(definition, version: nil, windows: [("24h", 86_400)])
        body["slo_24h"] = try JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(report.windows[0]))
        return try Self.json(.object(body))
    }

    func slo(_ name: String, _ request: Request) async throws -> Response {
        try Self.refuseQuery(request, allowed: ["version"])
        let q = request.uri.queryParameters
        var version: Int?
        if let text = q.get("version") {
            guard let v = Int(text), v >= 1 else { throw SluiceError(.invalidValue, "version must be a whole number from 1.", param: "version") }
            version = v
        }
        let definition = try catalog.definition(name, version: version)
        let report = try await report(definition, version: version, windows: SLOReport.windows)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(report)))
    }

    private func report(_ definition: FlowDefinition, version: Int?, windows: [(name: String, seconds: Double)]) async throws -> SLOReport {
        let now = Date().timeIntervalSince1970
        let thresholds = SLOReport.thresholds(definition.config.slo)
        var stats: [(window: String, stats: FlowStats)] = []
        for (name, seconds) in windows {
            let s = try await reporter.flowStats(FlowStatsQuery(flow: definition.name, version: version, since: now - seconds, latencyThresholds: thresholds))
            stats.append((name, s))
        }
        return SLOReport(flow: definition.name, version: version, slo: definition.config.slo, stats: stats)
    }

    static func summary(_ d: FlowDefinition) -> JSONValue {
        var o: [String: JSONValue] = [
            "name": .string(d.name), "active_version": .int(d.version), "model": .string(d.config.model),
            "output": { if case .schema = d.config.output { return "json_schema" } else { return "text" } }(),
        ]
        if let description = d.config.description { o["description"] = .string(description) }
        return .object(o)
    }

    static func definitionJSON(_ c: FlowConfig) -> JSONValue {
        var o: [String: JSONValue] = ["model": .string(c.model)]
        if !c.messages.isEmpty {
            o["messages"] = .array(c.messages.map { .object(["role": .string($0.role.rawValue), "content": .string($0.content)]) })
        }
        if let t = c.template { o["template"] = .string(t) }
        if let input = c.input { o["input"] = input }
        if case .schema(let schema) = c.output { o["output"] = schema } else { o["output"] = "text" }
        o["params"] = (try? JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(ParamsJSON(c.params)))) ?? .object([:])
        if let g = c.guardrails { o["guardrails"] = .string(g) }
        if let slo = c.slo {
            var s: [String: JSONValue] = [:]
            for (k, v) in [("p50_ms", slo.p50Ms), ("p95_ms", slo.p95Ms), ("p99_ms", slo.p99Ms), ("success_rate", slo.successRate), ("max_cost_usd", slo.maxCostUSD)] {
                if let v { s[k] = .double(v) }
            }
            o["slo"] = .object(s)
        }
        return .object(o)
    }

    private struct ParamsJSON: Encodable {
        var temperature: Double?
        var top_p: Double?
        var max_tokens: Int?
        var seed: Int?
        var stop: [String]?
        init(_ p: FlowConfig.Params) {
            temperature = p.temperature
            top_p = p.topP
            max_tokens = p.maxTokens
            seed = p.seed
            stop = p.stop
        }
    }

    static func refuseQuery(_ request: Request, allowed: Set<String>) throws {
        for (key, _) in request.uri.queryParameters where !allowed.contains(String(key)) {
            throw SluiceError(.invalidValue, "Unknown query parameter '\(key)'.", param: String(key))
        }
    }

    static func json(_ value: JSONValue) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(value)))
    }
}
