import Hummingbird
import SluiceCore
import SluiceObservability

/// `/healthz` (the process answers) and `/readyz` (the store answers and a provider is healthy).
struct HealthRoutes: Sendable {
    let store: any AuditLogStore
    let providers: ProviderRegistry

    func register(on router: Router<SluiceRequestContext>) {
        router.get("/healthz") { _, _ in Self.json(["status": "ok"], status: .ok) }
        router.get("/readyz") { _, _ in await readiness() }
    }

    func readiness() async -> Response {
        var storeStatus = "ok"
        do {
            try await store.ping()
        } catch {
            storeStatus = "unavailable: \(error)"
        }
        let health = await providers.health()
        var providerStatus: [String: JSONValue] = [:]
        for (name, h) in health {
            switch h {
            case .healthy: providerStatus[name] = "healthy"
            case .unhealthy(let why): providerStatus[name] = .string("unhealthy: \(why)")
            }
        }
        let ready = storeStatus == "ok" && health.values.contains(where: \.isHealthy)
        let body: JSONValue = ["status": ready ? "ready" : "not_ready", "store": .string(storeStatus), "providers": .object(providerStatus)]
        return Self.json(body, status: ready ? .ok : .serviceUnavailable)
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status) -> Response {
        let bytes = (try? JSONCoding.encode(value)) ?? .init()
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: bytes))
    }
}
