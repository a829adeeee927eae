import Hummingbird
import SluiceCore
import SluiceObservability

/// `GET /admin/alerts`: every alert rule and its state (for admins and viewers).
struct AlertRoutes: Sendable {
    let evaluator: AlertEvaluator

    static let routes: [String: [HTTPRequest.Method]] = ["/admin/alerts": [.get]]

    func register(on router: Router<SluiceRequestContext>) {
        router.get("/admin/alerts") { _, _ in try list() }
    }

    func list() throws -> Response {
        let data: [JSONValue] = evaluator.snapshot().map { rule, state in
            var o: [String: JSONValue] = [
                "name": .string(rule.name), "kind": .string(rule.kind.rawValue), "status": .string(state.firing ? "firing" : "ok"),
                "threshold": .double(AlertEvaluator.threshold(rule)), "value": state.value.map(JSONValue.double) ?? .null,
                "since": state.since.map(JSONValue.double) ?? .null, "last_evaluated": state.lastEvaluated.map(JSONValue.double) ?? .null,
            ]
            if let value = state.value { o["message"] = .string(AlertEvaluator.describe(rule, value: value)) }
            return .object(o)
        }
        let body: JSONValue = .object(["object": "list", "data": .array(data)])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(body)))
    }
}
