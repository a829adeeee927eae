import Hummingbird
import ServiceLifecycle
import SluiceCore
import SluiceObservability
import Synchronization

/// `/healthz` (the process answers) and `/readyz` (the store answers and a provider is healthy,
/// and the process is not shutting down).
struct HealthRoutes: Sendable {
    let store: any AuditLogStore
    let providers: ProviderRegistry
    let drain: ReadinessDrain

    func register(on router: Router<SluiceRequestContext>) {
        router.get("/healthz") { _, _ in Self.json(["status": "ok"], status: .ok) }
        router.get("/readyz") { _, _ in await readiness() }
    }

    func readiness() async -> Response {
        if drain.isDraining {
            return Self.json(["status": "draining"], status: .serviceUnavailable)
        }
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

/// From SIGTERM on, `/readyz` answers 503 while the listener still accepts, for `server.drain_s`;
/// then this service returns and the HTTP server (stopped after it) closes its listener and
/// lets in-flight requests finish. Load balancers that poll readiness stop routing new requests
/// here before they would be refused.
final class ReadinessDrain: Service, Sendable {
    let delay: Duration
    private let draining = Atomic<Bool>(false)

    init(delay: Duration) { self.delay = delay }

    var isDraining: Bool { draining.load(ordering: .relaxed) }

    func run() async throws {
        // Returns when graceful shutdown begins (or the task is cancelled).
        try? await gracefulShutdown()
        draining.store(true, ordering: .relaxed)
        if delay > .zero, !Task.isCancelled { try? await Task.sleep(for: delay) }
    }
}
