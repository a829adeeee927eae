import AsyncHTTPClient
import NIOHTTP1
import SluiceCore

/// `GET url` with the provider's headers: healthy on any status below 400.
enum HealthProbe {
    static func check(client: HTTPClient, url: String, headers: HTTPHeaders, provider: String, timeouts: Timeouts) async -> ProviderHealth {
        var request = HTTPClientRequest(url: url)
        request.headers = headers
        do {
            let response = try await client.execute(request, timeout: .seconds(5))
            _ = try? await response.body.collect(upTo: 1 << 20)
            return response.status.code < 400 ? .healthy : .unhealthy("HTTP \(response.status.code) from \(url)")
        } catch {
            return .unhealthy("\(UpstreamError.fromTransport(error, provider: provider, timeouts: timeouts))")
        }
    }
}
