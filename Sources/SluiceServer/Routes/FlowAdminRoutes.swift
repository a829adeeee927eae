import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SluiceCore
import SluiceFlows

/// `GET /admin/flows`, `/admin/flows/{name}` and `/admin/flows/{name}/slo`: the flows, their
/// definitions, and their objectives against what the audit log recorded. Readable by admins and
/// viewers.
struct FlowAdminRoutes: Sendable {
    let catalog: FlowCatalog
    let reporter: any FlowReporter
    let body: RequestBodyReader

    static let routes: [String: [HTTPRequest.Method]] = [
        "/admin/flows": [.get], "/admin/flows/{name}": [.get], "/admin/flows/{name}/slo": [.get], "/admin/flows/{name}/versions": [.get, .post],
        "/admin/flows/{name}/versions/{version}": [.get], "/admin/flows/{name}/diff": [.get], "/admin/flows/{name}/activate": [.post],
    ]

    func register(on router: Router<SluiceRequestContext>) {
        router.get("/admin/flows") { _, _ in try list() }
        router.get("/admin/flows/{name}") { request, context in try await show(context.parameters.get("name") ?? "", request) }
        router.get("/admin/flows/{name}/slo") { request, context in try await slo(context.parameters.get("name") ?? "", request) }
        router.post("/admin/flows/{name}/versions") { request, context in try await addVersion(context.parameters.get("name") ?? "", request) }
        router.get("/admin/flows/{name}/versions") { _, context in try versions(context.parameters.get("name") ?? "") }
        router.get("/admin/flows/{name}/versions/{version}") { _, context in
            try version(context.parameters.get("name") ?? "", context.parameters.get("version") ?? "")
        }
        router.get("/admin/flows/{name}/diff") { request, context in try diff(context.parameters.get("name") ?? "", request) }
        router.post("/admin/flows/{name}/activate") { request, context in try await activate(context.parameters.get("name") ?? "", request) }
    }

    // MARK: Versions

    func addVersion(_ name: String, _ request: Request) async throws -> Response {
        let definition = try await body.decode(JSONValue.self, from: request)
        let added = try await catalog.addVersion(name, definition: definition)
        var o = Self.versionJSON(added, active: try catalog.versions(name).active).objectValue ?? [:]
        o["definition"] = added.definitionJSON
        return Response(status: .created, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(JSONValue.object(o))))
    }

    func versions(_ name: String) throws -> Response {
        let (active, all) = try catalog.versions(name)
        return try Self.json(.object(["object": "list", "flow": .string(name), "active_version": .int(active), "data": .array(all.map { Self.versionJSON($0, active: active) })]))
    }

    func version(_ name: String, _ text: String) throws -> Response {
        guard let n = Int(text), n >= 1 else { throw SluiceError(.invalidValue, "A version is a whole number from 1.", param: "version") }
        let definition = try catalog.definition(name, version: n)
        var o = Self.versionJSON(definition, active: try catalog.versions(name).active).objectValue ?? [:]
        o["definition"] = definition.definitionJSON
        return try Self.json(.object(o))
    }

    /// `?from=A&to=B`: a unified diff of the two versions' definitions, as text.
    func diff(_ name: String, _ request: Request) throws -> Response {
        try Self.refuseQuery(request, allowed: ["from", "to"])
        let q = request.uri.queryParameters
        var numbers: [Int] = []
        for key in ["from", "to"] {
            guard let text = q.get(key), let n = Int(text), n >= 1 else {
                throw SluiceError(.invalidValue, "\(key) must be a version number (from 1).", param: key)
            }
            numbers.append(n)
        }
        let a = try catalog.definition(name, version: numbers[0])
        let b = try catalog.definition(name, version: numbers[1])
        let text = UnifiedDiff.make(from: a.rendered, to: b.rendered, fromName: "\(name) version \(a.version)", toName: "\(name) version \(b.version)")
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func activate(_ name: String, _ request: Request) async throws -> Response {
        let value = try await body.decode(JSONValue.self, from: request)
        guard case .int(let version)? = value["version"], version >= 1 else {
            throw SluiceError(.invalidValue, "Send {\"version\": N} with the version to activate.", param: "version")
        }
        try await catalog.activate(name, version: version)
        return try Self.json(.object(["flow": .string(name), "active_version": .int(version)]))
    }

    static func versionJSON(_ d: FlowDefinition, active: Int) -> JSONValue {
        .object([
            "flow": .string(d.name), "version": .int(d.version), "active": .bool(d.version == active),
            "created_at": d.createdAt.map(JSONValue.double) ?? .null, "model": .string(d.config.model),
        ])
    }

    func list() throws -> Response {
        let flows: [JSONValue] = try catalog.names.map { try Self.summary(catalog.definition($0)) }
        return try Self.json(.object(["object": "list", "data": .array(flows)]))
    }

    func show(_ name: String, _ request: Request) async throws -> Response {
        try Self.refuseQuery(request, allowed: [])
        let definition = try catalog.definition(name)
        var body = Self.summary(definition).objectValue ?? [:]
        body["definition"] = definition.definitionJSON
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

    static func refuseQuery(_ request: Request, allowed: Set<String>) throws {
        for (key, _) in request.uri.queryParameters where !allowed.contains(String(key)) {
            throw SluiceError(.invalidValue, "Unknown query parameter '\(key)'.", param: String(key))
        }
    }

    static func json(_ value: JSONValue) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(value)))
    }
}
