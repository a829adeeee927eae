import Crypto
import NIOCore
import SluiceCore
import SluiceRuntime

/// The keys of the response cache: who may share an entry (the scope) and what makes two
/// requests the same (everything that changes the output; not `user`, `metadata` or the
/// usage option of a stream).
enum CacheKeys {
    /// Fields that never change what the model answers.
    static let ignoredExtra: Set<String> = ["metadata", "store", "service_tier", "user", "prompt_cache_key", "safety_identifier"]

    /// The tenant an entry belongs to under `scope`: a team, a key, or everyone. Without auth
    /// every caller is the same tenant.
    static func tenant(_ scope: CacheScope, context: InferenceContext) -> String {
        guard let principal = context.principal else { return "open" }
        switch scope {
        case .global: return "global"
        case .key: return "key:" + principal.key.id
        case .team: return principal.team.map { "team:" + $0.id } ?? "key:" + principal.key.id
        }
    }

    /// The exact-match key: the tenant and the whole normalised request.
    static func exact(_ request: ChatCompletionRequest, tenant: String) throws -> String {
        try digest(tenant, normalised(request))
    }

    /// The semantic partition: the tenant and the request without the text of its last user
    /// message (that text is compared by embedding).
    static func partition(_ request: ChatCompletionRequest, tenant: String) throws -> String {
        var rest = request
        if let i = rest.messages.lastIndex(where: { $0.role == .user }) { rest.messages[i] = ChatMessage(role: .user, text: "") }
        return try digest(tenant + "\u{1}semantic", normalised(rest))
    }

    /// The last user message: what the semantic cache embeds.
    static func semanticText(_ request: ChatCompletionRequest) -> String? {
        request.messages.last(where: { $0.role == .user })?.text
    }

    static func normalised(_ request: ChatCompletionRequest) -> ChatCompletionRequest {
        var r = request
        // A stream and a whole answer are cached apart: each replays exactly what was sent.
        r.stream = r.isStreaming
        r.streamOptions = nil
        r.user = nil
        for key in ignoredExtra { r.extra.removeValue(forKey: key) }
        return r
    }

    private static func digest(_ tenant: String, _ request: ChatCompletionRequest) throws -> String {
        var hasher = SHA256()
        var tenant = tenant
        tenant.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        withUnsafeBytes(of: UInt8(0)) { hasher.update(bufferPointer: $0) }
        // The same bytes as `JSONCoding.encode`, so keys stay those of entries already stored.
        let body = try request.jsonBytes()
        body.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize().withUnsafeBytes { Hex.lowercase($0) }
    }
}
