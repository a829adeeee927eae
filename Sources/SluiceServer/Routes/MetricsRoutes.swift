import Hummingbird
import NIOCore
import Prometheus
import SluiceObservability

/// `GET /metrics`: every metric in Prometheus' text format.
struct MetricsRoutes: Sendable {
    let registry: PrometheusCollectorRegistry
    let scrape: ScrapeTimeMetrics

    static let routes: [String: [HTTPRequest.Method]] = ["/metrics": [.get, .head]]

    func register(on router: Router<SluiceRequestContext>) {
        router.get("/metrics") { _, _ in render() }
        router.head("/metrics") { _, _ in render() }
    }

    func render() -> Response {
        scrape.update()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 * 1024)
        registry.emit(into: &bytes)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
