import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SluiceConversations
import SluiceCore

/// OpenAI's Conversations API: `POST /v1/conversations`, `GET`, `POST` (metadata) and `DELETE
/// /v1/conversations/{id}`, `GET /v1/conversations/{id}/items`. A conversation belongs to the
/// team (else the key) that made it; any other caller gets 404.
struct ConversationRoutes: Sendable {
    let store: any ConversationStore
    let body: RequestBodyReader

    func register(on router: Router<SluiceRequestContext>) {
        router.post("/v1/conversations") { request, context in try await create(request, context) }
        router.get("/v1/conversations/{id}") { _, context in try await show(context.parameters.get("id") ?? "", context) }
        router.post("/v1/conversations/{id}") { request, context in try await update(context.parameters.get("id") ?? "", request, context) }
        router.delete("/v1/conversations/{id}") { _, context in try await delete(context.parameters.get("id") ?? "", context) }
        router.get("/v1/conversations/{id}/items") { request, context in try await items(context.parameters.get("id") ?? "", request, context) }
    }

    func create(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let value = try await body.decode(JSONValue.self, from: request)
        guard case .object(let fields) = value else { throw SluiceError(.invalidType, "The body must be a JSON object.") }
        for key in fields.keys where key != "metadata" && key != "items" {
            throw SluiceError(.invalidValue, "Unknown parameter '\(key)'.", param: key)
        }
        let metadata = try Self.metadata(fields["metadata"])
        let now = Date().timeIntervalSince1970
        var items: [ConversationItem] = []
        if let raw = fields["items"] {
            guard case .array(let list) = raw, list.count <= 20 else {
                throw SluiceError(.invalidValue, "items must be a list of at most 20 messages.", param: "items")
            }
            for (i, entry) in list.enumerated() { items.append(try Self.item(entry, index: i, at: now)) }
        }
        let conversation = Conversation(
            id: "conv_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(), owner: ConversationStage.owner(context.principal),
            createdAt: now, metadata: metadata)
        try await store.create(conversation, items: items)
        return try Self.json(Self.conversationJSON(conversation))
    }

    func show(_ id: String, _ context: SluiceRequestContext) async throws -> Response {
        try Self.json(Self.conversationJSON(try await ConversationStage.owned(id, by: context.principal, in: store)))
    }

    func update(_ id: String, _ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        var conversation = try await ConversationStage.owned(id, by: context.principal, in: store)
        let value = try await body.decode(JSONValue.self, from: request)
        guard case .object(let fields) = value, fields.keys.allSatisfy({ $0 == "metadata" }), let raw = fields["metadata"] else {
            throw SluiceError(.invalidValue, "Send {\"metadata\": {…}}: metadata is what a conversation's update changes.", param: "metadata")
        }
        conversation.metadata = try Self.metadata(raw)
        try await store.updateMetadata(id: id, conversation.metadata)
        return try Self.json(Self.conversationJSON(conversation))
    }

    func delete(_ id: String, _ context: SluiceRequestContext) async throws -> Response {
        _ = try await ConversationStage.owned(id, by: context.principal, in: store)
        _ = try await store.delete(id: id)
        return try Self.json(.object(["id": .string(id), "object": "conversation.deleted", "deleted": true]))
    }

    func items(_ id: String, _ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        _ = try await ConversationStage.owned(id, by: context.principal, in: store)
        let q = request.uri.queryParameters
        for (key, _) in q where !["after", "limit", "order"].contains(String(key)) {
            throw SluiceError(.invalidValue, "Unknown query parameter '\(key)'.", param: String(key))
        }
        var limit = 20
        if let text = q.get("limit") {
            guard let n = Int(text), (1...100).contains(n) else { throw SluiceError(.invalidValue, "limit must be from 1 to 100.", param: "limit") }
            limit = n
        }
        let order = q.get("order") ?? "desc"
        guard order == "asc" || order == "desc" else { throw SluiceError(.invalidValue, "order must be asc or desc.", param: "order") }
        let after = q.get("after")
        // One more than asked, to know whether there are more.
        let page = try await store.items(id: id, after: after, limit: limit + 1, newestFirst: order == "desc")
        let shown = Array(page.prefix(limit))
        return try Self.json(
            .object([
                "object": "list", "data": .array(shown.map(Self.itemJSON)), "first_id": shown.first.map { .string($0.id) } ?? .null,
                "last_id": shown.last.map { .string($0.id) } ?? .null, "has_more": .bool(page.count > limit),
            ]))
    }

    // MARK: Shapes

    static func conversationJSON(_ c: Conversation) -> JSONValue {
        .object([
            "id": .string(c.id), "object": "conversation", "created_at": .int(Int(c.createdAt)),
            "metadata": .object(c.metadata.mapValues(JSONValue.string)),
        ])
    }

    static func itemJSON(_ item: ConversationItem) -> JSONValue {
        .object([
            "type": "message", "id": .string(item.id), "status": "completed", "role": .string(item.role.rawValue),
            "content": .array([.object(["type": .string(item.role == .assistant ? "output_text" : "input_text"), "text": .string(item.text)])]),
        ])
    }

    /// OpenAI's limits: at most 16 pairs, keys up to 64 characters, values up to 512.
    static func metadata(_ value: JSONValue?) throws -> [String: String] {
        guard let value, value != .null else { return [:] }
        guard case .object(let pairs) = value, pairs.count <= 16 else {
            throw SluiceError(.invalidValue, "metadata is an object of at most 16 string values.", param: "metadata")
        }
        var out: [String: String] = [:]
        for (key, v) in pairs {
            guard let text = v.stringValue, key.count <= 64, text.count <= 512 else {
                throw SluiceError(.invalidValue, "metadata.\(key) must be a string of at most 512 characters (keys at most 64).", param: "metadata.\(key)")
            }
            out[key] = text
        }
        return out
    }

    /// A message given when the conversation is made.
    static func item(_ value: JSONValue, index: Int, at time: Double) throws -> ConversationItem {
        let at = "items[\(index)]"
        guard case .object(let o) = value, let roleText = o["role"]?.stringValue, let role = ChatMessage.Role(rawValue: roleText),
            [.user, .assistant, .system, .developer].contains(role)
        else {
            throw SluiceError(.invalidValue, "\(at) must be a message with a role of user, assistant, system or developer.", param: at)
        }
        if let type = o["type"]?.stringValue, type != "message" { throw SluiceError(.invalidValue, "\(at).type must be message.", param: "\(at).type") }
        var text: String
        switch o["content"] {
        case .string(let s)?: text = s
        case .array(let parts)?:
            text = ""
            for part in parts {
                guard let t = part["text"]?.stringValue else {
                    throw SluiceError(.invalidValue, "\(at).content holds text parts only.", param: "\(at).content")
                }
                text += t
            }
        default: throw SluiceError(.invalidValue, "\(at).content must be text or a list of text parts.", param: "\(at).content")
        }
        return ConversationItem(
            id: "msg_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(), role: role, text: text, createdAt: time)
    }

    static func json(_ value: JSONValue) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: try JSONCoding.encode(value)))
    }
}
