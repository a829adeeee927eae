import Foundation
import Hummingbird
import HTTPTypes
import SluiceCore
import SluiceObservability

/// Resolves the caller's key on every `/v1/*` and `/admin/*` request and checks its role:
/// 401 for a missing or unknown key, 403 for a revoked or expired one or a role that may not use
/// the path. Keys are read from `Authorization: Bearer` or `x-api-key` and never logged.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = SluiceRequestContext
    let directory: KeyDirectory
    let publicPaths: Set<String>
    /// Refused requests get their log line and audit row too (who knocked, on what, when).
    let recorder: AuditRecorder

    func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard !publicPaths.contains(path), let area = Area(path) else { return try await next(request, context) }
        let principal: Principal
        do {
            principal = try directory.authenticate(Self.presentedKey(request.headers)).get()
            guard Self.may(principal.key.role, area, request.method) else {
                throw SluiceError(
                    .permissionDenied, "This API key's role '\(principal.key.role.rawValue)' may not use \(request.method.rawValue) \(path).")
            }
        } catch {
            let refused = InferenceContext(
                requestID: context.requestID, endpoint: Self.endpoint(path), logger: context.logger, receivedAtUnix: Date().timeIntervalSince1970)
            recorder.finish(refused, model: "", stream: false, outcome: .failed(error))
            throw error
        }
        var context = context
        context.principal = principal
        context.logger[metadataKey: "key_id"] = .string(principal.key.id)
        return try await next(request, context)
    }

    /// The audit log's endpoint name for a path.
    static func endpoint(_ path: String) -> String {
        switch path {
        case "/v1/chat/completions": "chat.completions"
        case "/v1/embeddings": "embeddings"
        case "/v1/messages": "messages"
        case "/v1/responses": "responses"
        default: path
        }
    }

    /// The parts of the API that need a key.
    enum Area {
        case inference
        case admin(readable: Bool)
        /// Health and metrics: any valid key, unless `auth.public_paths` opens them.
        case operations

        init?(_ path: String) {
            if path == "/healthz" || path == "/readyz" || path == "/metrics" {
                self = .operations
            } else if path.hasPrefix("/v1/") || path == "/v1" {
                self = .inference
            } else if path.hasPrefix("/admin/") || path == "/admin" {
                // What a viewer may read: usage, the audit log, the alerts and the flows.
                self = .admin(
                    readable: path.hasPrefix("/admin/usage") || path.hasPrefix("/admin/requests") || path.hasPrefix("/admin/alerts")
                        || path.hasPrefix("/admin/flows") || path.hasPrefix("/admin/feedback") || path.hasPrefix("/admin/judgements")
                        || path.hasPrefix("/admin/experiments") || path.hasPrefix("/admin/evals"))
            } else {
                return nil
            }
        }
    }

    static func may(_ role: Role, _ area: Area, _ method: HTTPRequest.Method) -> Bool {
        switch (role, area) {
        case (_, .operations): return true
        case (.admin, _): return true
        case (.app, .inference): return true
        case (.app, .admin): return false
        case (.viewer, .inference): return false
        case (.viewer, .admin(let readable)): return readable && (method == .get || method == .head)
        }
    }

    static func presentedKey(_ headers: HTTPFields) -> String? {
        if let auth = headers.value(.authorization) {
            // "Bearer <key>", the scheme in any case; cheap byte checks (Foundation's trimming
            // showed in profiles on this per-request path).
            let utf8 = auth.utf8
            guard utf8.count > 7 else { return nil }
            let scheme = utf8.prefix(7)
            guard scheme.elementsEqual("bearer ".utf8, by: { a, b in a | 0x20 == b }) else { return nil }
            let rest = utf8.dropFirst(7).drop { $0 == UInt8(ascii: " ") }
            var end = rest.endIndex
            while end > rest.startIndex, utf8[utf8.index(before: end)] == UInt8(ascii: " ") { end = utf8.index(before: end) }
            return String(auth[rest.startIndex..<end])
        }
        return headers.value(.apiKey)
    }
}

extension HTTPField.Name {
    static let apiKey = Self("x-api-key")!
}
