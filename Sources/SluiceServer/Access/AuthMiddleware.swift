import Hummingbird
import HTTPTypes
import SluiceCore

/// Resolves the caller's key on every `/v1/*` and `/admin/*` request and checks its role:
/// 401 for a missing or unknown key, 403 for a revoked or expired one or a role that may not use
/// the path. Keys are read from `Authorization: Bearer` or `x-api-key` and never logged.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = SluiceRequestContext
    let directory: KeyDirectory
    let publicPaths: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard !publicPaths.contains(path), let area = Area(path) else { return try await next(request, context) }
        let principal = try directory.authenticate(Self.presentedKey(request.headers)).get()
        guard Self.may(principal.key.role, area, request.method) else {
            throw SluiceError(
                .permissionDenied, "This API key's role '\(principal.key.role.rawValue)' may not use \(request.method.rawValue) \(path).")
        }
        var context = context
        context.principal = principal
        context.logger[metadataKey: "key_id"] = .string(principal.key.id)
        return try await next(request, context)
    }

    /// The parts of the API that need a key.
    enum Area {
        case inference
        case admin(readable: Bool)

        init?(_ path: String) {
            if path.hasPrefix("/v1/") || path == "/v1" {
                self = .inference
            } else if path.hasPrefix("/admin/") || path == "/admin" {
                // What a viewer may read: usage and the request log.
                self = .admin(readable: path.hasPrefix("/admin/usage") || path.hasPrefix("/admin/requests"))
            } else {
                return nil
            }
        }
    }

    static func may(_ role: Role, _ area: Area, _ method: HTTPRequest.Method) -> Bool {
        switch (role, area) {
        case (.admin, _): return true
        case (.app, .inference): return true
        case (.app, .admin): return false
        case (.viewer, .inference): return false
        case (.viewer, .admin(let readable)): return readable && (method == .get || method == .head)
        }
    }

    static func presentedKey(_ headers: HTTPFields) -> String? {
        if let auth = headers[.authorization] {
            let parts = auth.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return parts[1].trimmingCharacters(in: .whitespaces) }
            return nil
        }
        return headers[.apiKey]
    }
}

extension HTTPField.Name {
    static let apiKey = Self("x-api-key")!
}
