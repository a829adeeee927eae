import Foundation
import Hummingbird
import HTTPTypes
import SluiceCore
import SluiceObservability

/// `GET /admin/usage`: requests, tokens and cost from the audit log, filtered and grouped.
/// Readable by admins and viewers.
struct UsageRoutes: Sendable {
    let reporter: any UsageReporter

    func register(on router: Router<SluiceRequestContext>) {
        router.get("/admin/usage") { request, _ in try await usage(request) }
    }

    static let routes: [String: [HTTPRequest.Method]] = ["/admin/usage": [.get]]

    func usage(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        var query = UsageQuery(
            from: try Self.time(q.get("from"), "from"), to: try Self.time(q.get("to"), "to", endOfDay: true), keyID: q.get("key"),
            teamID: q.get("team"), model: q.get("model"))
        if let group = q.get("group_by") {
            guard let g = UsageQuery.GroupBy(rawValue: group) else {
                throw SluiceError(.invalidValue, "group_by must be one of key, team, model, day.", param: "group_by")
            }
            query.groupBy = g
        }
        for (key, _) in q where !["from", "to", "key", "team", "model", "group_by"].contains(String(key)) {
            let name = String(key)
            throw SluiceError(.invalidValue, "Unknown query parameter '\(name)'.", param: name)
        }
        let rows = try await reporter.usage(query)
        let data: [JSONValue] = rows.map { r in
            var o: [String: JSONValue] = [
                "requests": .int(r.requests), "tokens_in": .int(r.tokensIn), "tokens_out": .int(r.tokensOut),
                "cost_usd": .double((r.costUSD * 1e8).rounded() / 1e8),
            ]
            if let g = query.groupBy { o[g.rawValue] = r.group.map(JSONValue.string) ?? .null }
            return .object(o)
        }
        var out: [String: JSONValue] = ["object": "usage", "data": .array(data)]
        out["group_by"] = query.groupBy.map { .string($0.rawValue) } ?? .null
        return try Self.json(.object(out))
    }

    /// Unix seconds, an ISO 8601 date-time, or a `YYYY-MM-DD` day (UTC; as `to`, the day is included).
    static func time(_ text: String?, _ name: String, endOfDay: Bool = false) throws -> Double? {
        guard let text else { return nil }
        if let seconds = Double(text), seconds.isFinite { return seconds }
        if let date = ISO8601DateFormatter().date(from: text) { return date.timeIntervalSince1970 }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        if let date = day.date(from: text) { return date.timeIntervalSince1970 + (endOfDay ? 86_400 : 0) }
        throw SluiceError(.invalidValue, "\(name) must be Unix seconds, an ISO 8601 date-time, or a YYYY-MM-DD day.", param: name)
    }

    static func json(_ value: JSONValue) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(value)))
    }
}
