import Foundation
import HTTPTypes
import HummingbirdCore
import Hummingbird
import NIOCore
import SluiceCore
import SluiceObservability

/// The searchable audit log, for admins and viewers: `GET /admin/requests` (filters, newest
/// first, cursor pages), `GET /admin/requests/{id}` (one request with its attempts, guardrail
/// events and timings) and `GET /admin/requests/export` (the same filters as streamed JSONL).
struct AuditLogRoutes: Sendable {
    let log: any AuditLogStore
    /// Feedback and judgements shown with one request.
    var quality: (any QualityStore)?

    static let routes: [String: [HTTPRequest.Method]] = ["/admin/requests": [.get], "/admin/requests/export": [.get]]
    static let filterNames: Set<String> = ["from", "to", "key", "team", "model", "status", "cache", "q", "flow", "flow_version", "conversation", "experiment", "variant"]

    func register(on router: Router<SluiceRequestContext>) {
        router.get("/admin/requests") { request, _ in try await page(request) }
        router.get("/admin/requests/export") { request, _ in try export(request) }
        router.get("/admin/requests/{id}") { _, context in try await one(context) }
    }

    func page(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        var search = try Self.search(q, extra: ["limit", "cursor"])
        let limit = try Self.integer(q.get("limit"), "limit", default: 50, range: 1...1000)
        if let raw = q.get("cursor") {
            guard let cursor = AuditSearch.Cursor(encoded: raw) else {
                throw SluiceError(.invalidValue, "cursor is not a cursor this endpoint returned; pass next_cursor as it came.", param: "cursor")
            }
            search.cursor = cursor
        }
        // One row more than asked says whether there is a next page.
        search.limit = limit + 1
        var rows = try await log.search(search)
        var next: JSONValue = .null
        if rows.count > limit {
            rows.removeLast(rows.count - limit)
            if let last = rows.last { next = .string(AuditSearch.Cursor(time: last.time, id: last.id).encoded) }
        }
        let body: JSONValue = .object(["object": "list", "data": .array(rows.map { Self.json($0, details: false) }), "next_cursor": next])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(body)))
    }

    func one(_ context: SluiceRequestContext) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        guard let row = try await log.record(id: id) else {
            throw SluiceError(.notFound, "No request with id '\(id)' in the audit log.", param: "id")
        }
        var json = Self.json(row, details: true)
        if let quality, case .object(var o) = json {
            o["feedback"] = .array(try await quality.feedback(requestID: id).map(QualityRoutes.json))
            o["judgements"] = .array(try await quality.judgements(requestID: id).map(QualityRoutes.json))
            json = .object(o)
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(json)))
    }

    func export(_ request: Request) throws -> Response {
        let q = request.uri.queryParameters
        let filters = try Self.search(q, extra: ["limit"])
        let limit = try Self.integer(q.get("limit"), "limit", default: Int.max, range: 1...Int.max)
        let log = log
        // Pages of 500 rows, written as they are read: the export never holds the whole log.
        let body = ResponseBody { writer in
            var search = filters
            var remaining = limit
            while remaining > 0 {
                search.limit = min(500, remaining)
                let rows = try await log.search(search)
                guard !rows.isEmpty else { break }
                var buffer = ByteBuffer()
                for row in rows {
                    buffer.writeImmutableBuffer(try JSONCoding.encode(Self.json(row, details: true)))
                    buffer.writeString("\n")
                }
                try await writer.write(buffer)
                remaining -= rows.count
                guard rows.count == search.limit, let last = rows.last else { break }
                search.cursor = AuditSearch.Cursor(time: last.time, id: last.id)
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "application/x-ndjson", .contentDisposition: "attachment; filename=\"requests.jsonl\""], body: body)
    }

    /// The filters of a query string; any parameter not a filter nor in `extra` is refused.
    static func search(_ q: FlatDictionary<Substring, Substring>, extra: Set<String>) throws -> AuditSearch {
        for (key, _) in q where !filterNames.contains(String(key)) && !extra.contains(String(key)) {
            let name = String(key)
            throw SluiceError(.invalidValue, "Unknown query parameter '\(name)'.", param: name)
        }
        var search = AuditSearch(
            from: try UsageRoutes.time(q.get("from"), "from"), to: try UsageRoutes.time(q.get("to"), "to", endOfDay: true), keyID: q.get("key"),
            teamID: q.get("team"), model: q.get("model"), cache: q.get("cache"), text: q.get("q"))
        if let status = q.get("status") {
            if let code = Int(status), (100...599).contains(code) {
                search.status = .exact(code)
            } else if status.count == 3, status.lowercased().hasSuffix("xx"), let h = Int(status.prefix(1)), (1...5).contains(h) {
                search.status = .classOf(h)
            } else {
                throw SluiceError(.invalidValue, "status must be a status code (429) or a class (4xx).", param: "status")
            }
        }
        search.flow = q.get("flow")
        search.conversationID = q.get("conversation")
        search.experiment = q.get("experiment")
        search.variant = q.get("variant")
        if let version = q.get("flow_version") {
            search.flowVersion = try integer(version, "flow_version", default: 1, range: 1...1_000_000)
        }
        if let cache = search.cache, !["hit", "semantic-hit", "miss", "off", "bypass"].contains(cache) {
            throw SluiceError(.invalidValue, "cache must be one of hit, semantic-hit, miss, off, bypass.", param: "cache")
        }
        if let text = search.text, text.count > 200 {
            throw SluiceError(.invalidValue, "q may be at most 200 characters.", param: "q")
        }
        return search
    }

    static func integer(_ text: String?, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw SluiceError(.invalidValue, "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound).", param: name)
        }
        return n
    }

    /// A row as the API shows it; `details` adds the attempts, guardrail events and routing and cache decisions.
    static func json(_ r: AuditRecord, details: Bool) -> JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(r.id), "time": .double(r.time), "endpoint": .string(r.endpoint), "key_id": .string(r.keyID),
            "team_id": .string(r.teamID), "model": .string(r.modelRequested), "deployment": r.deployment.map(JSONValue.string) ?? .null,
            "status": .int(r.status), "error_code": r.errorCode.map(JSONValue.string) ?? .null, "latency_ms": .double(r.latencyMs),
            "ttft_ms": r.ttftMs.map(JSONValue.double) ?? .null, "tokens_in": .int(r.tokensIn), "tokens_out": .int(r.tokensOut),
            "cost_usd": .double(r.costUSD), "cache": .string(r.cacheStatus), "stream": .bool(r.stream), "attempts": .int(r.attempts),
            "flow": r.flow.map(JSONValue.string) ?? .null, "flow_version": r.flowVersion.map(JSONValue.int) ?? .null,
            "conversation_id": r.conversationID.map(JSONValue.string) ?? .null,
            "experiment": r.experiment.map(JSONValue.string) ?? .null, "variant": r.variant.map(JSONValue.string) ?? .null,
        ]
        if details {
            o["details"] = (try? JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: r.details.jsonText))) ?? .object([:])
            // The messages as kept (JSON, redacted or not); text if redaction left them unparseable.
            o["request_body"] = r.requestBody.map { (try? JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: $0))) ?? .string($0) } ?? .null
            o["response_body"] = r.responseBody.map(JSONValue.string) ?? .null
        }
        return .object(o)
    }
}
