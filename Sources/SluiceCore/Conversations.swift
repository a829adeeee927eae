/// A stateful use case's thread: its owner (the team, else the key, that made it), metadata, and
/// items appended in one total order.
public struct Conversation: Sendable, Hashable {
    public var id: String
    /// `team:ID` or `key:ID`; empty when auth is off.
    public var owner: String
    public var createdAt: Double
    public var metadata: [String: String]
    /// The running summary of the turns folded out of the history (`strategy: summarize`).
    public var summary: String?
    /// The last item's sequence the summary covers (0: none).
    public var summarizedThrough: Int

    public init(id: String, owner: String, createdAt: Double, metadata: [String: String], summary: String? = nil, summarizedThrough: Int = 0) {
        self.id = id
        self.owner = owner
        self.createdAt = createdAt
        self.metadata = metadata
        self.summary = summary
        self.summarizedThrough = summarizedThrough
    }
}

/// One message of a conversation.
public struct ConversationItem: Sendable, Hashable {
    public var id: String
    /// Its place in the conversation's one order (1, 2, …).
    public var sequence: Int
    public var role: ChatMessage.Role
    public var text: String
    public var createdAt: Double

    public init(id: String, sequence: Int = 0, role: ChatMessage.Role, text: String, createdAt: Double) {
        self.id = id
        self.sequence = sequence
        self.role = role
        self.text = text
        self.createdAt = createdAt
    }
}

/// Where conversations and their items are kept, shared by replicas.
public protocol ConversationStore: Sendable {
    func create(_ conversation: Conversation, items: [ConversationItem]) async throws
    func conversation(id: String) async throws -> Conversation?
    func updateMetadata(id: String, _ metadata: [String: String]) async throws
    /// Deletes a conversation and its items; false when there was none.
    func delete(id: String) async throws -> Bool
    /// Items in order (or newest first), after the item with id `after` when given.
    func items(id: String, after: String?, limit: Int, newestFirst: Bool) async throws -> [ConversationItem]
    /// Appends items at the end of the order, together (a turn's question and answer stay
    /// adjacent however many turns run at once); answers them with their sequence numbers.
    func append(id: String, _ items: [ConversationItem]) async throws -> [ConversationItem]
    /// Replaces the running summary, unless a newer one (covering more) is already stored.
    func setSummary(id: String, _ summary: String, through sequence: Int) async throws
    /// Deletes items created before `time` (Unix seconds), as the audit log's bodies are; answers how many.
    func purge(itemsBefore time: Double) async throws -> Int
}

/// A Responses API response kept for `GET /v1/responses/{id}` and `previous_response_id`.
public struct StoredResponse: Sendable, Hashable {
    public var id: String
    /// `team:ID` or `key:ID`; empty when auth is off.
    public var owner: String
    public var createdAt: Double
    /// The response object, as JSON.
    public var response: String
    /// The conversation through this response (input and output, without `instructions`) as
    /// chat messages, as JSON: what a response that continues it starts from.
    public var messages: String

    public init(id: String, owner: String, createdAt: Double, response: String, messages: String) {
        self.id = id
        self.owner = owner
        self.createdAt = createdAt
        self.response = response
        self.messages = messages
    }
}

/// Where stored Responses API responses are kept, shared by replicas.
public protocol ResponseStore: Sendable {
    func save(_ response: StoredResponse) async throws
    func response(id: String) async throws -> StoredResponse?
    /// False when there was none.
    func delete(id: String) async throws -> Bool
    /// Deletes responses created before `time` (Unix seconds), as conversation items are; answers how many.
    func purge(createdBefore time: Double) async throws -> Int
}
