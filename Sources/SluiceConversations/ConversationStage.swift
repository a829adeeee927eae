import Foundation
import SluiceCore
import SluiceGuardrails

/// Gives a request that names a conversation its history, and adds its turn afterwards: history
/// goes after the leading system and developer messages, cut oldest-first to fit the request's
/// budget (`max_history_tokens`, else what the model's smallest context window leaves after the
/// prompt and `max_tokens`); after a successful answer — a whole completion, or a stream that
/// reached its end — the turn's messages and the answer are appended together. A failed or
/// cancelled request appends nothing. What is stored follows the caller's guardrail policy:
/// redacted when it redacts PII. Placed after the flow stage (which renders a flow's turn) and
/// before the guardrails (so the answer it stores has passed the output checks).
public struct ConversationStage: InferenceStage {
    let store: any ConversationStore
    let policies: GuardrailPolicies
    /// The smallest context window of the deployments a model name reaches, when known.
    let contextWindow: @Sendable (String) -> Int?
    /// The output assumed when a request sets no `max_tokens`.
    let defaultOutputTokens: Int
    let redactor = BodyRedactor()

    public init(store: any ConversationStore, policies: GuardrailPolicies, defaultOutputTokens: Int, contextWindow: @escaping @Sendable (String) -> Int?) {
        self.store = store
        self.policies = policies
        self.defaultOutputTokens = defaultOutputTokens
        self.contextWindow = contextWindow
    }

    /// Who owns a conversation made by `principal`: its team, else its key ("" with auth off).
    public static func owner(_ principal: Principal?) -> String { Ownership.owner(principal) }

    /// The conversation, if the caller may use it (another owner's is as good as absent).
    public static func owned(_ id: String, by principal: Principal?, in store: any ConversationStore) async throws -> Conversation {
        guard let conversation = try await store.conversation(id: id), conversation.owner == owner(principal) else {
            throw SluiceError(.notFound, "There is no conversation '\(id)'.", param: "conversation")
        }
        return conversation
    }

    public func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        guard let id = request.conversation, case .chat(let chat) = request.body else { return try await next(request, context) }
        // Out of line: requests outside a conversation pass without allocating its task frame.
        return try await handle(id, chat, request, context: context, next: next)
    }

    private func handle(
        _ id: String, _ chat: ChatCompletionRequest, _ request: InferenceRequest, context: InferenceContext, next: InferenceHandler
    ) async throws -> InferenceResponse {
        var chat = chat
        let conversation = try await Self.owned(id, by: context.principal, in: store)
        context.facts.update(\.flow) { $0.conversation = id }
        let leading = chat.messages.prefix { $0.role == .system || $0.role == .developer }
        let turn = Array(chat.messages.dropFirst(leading.count))
        let redacts = redacts(request, context)
        let history: [ChatMessage]
        if request.summarizesHistory {
            history = try await summarizedHistory(conversation, for: chat, limit: request.maxHistoryTokens, request: request, context: context, next: next)
        } else {
            history = try await self.history(id, for: chat, limit: request.maxHistoryTokens)
        }
        chat.messages = Array(leading) + history + turn
        var request = request
        request.body = .chat(chat)
        let turnItems = turn.map { item($0.role, $0.text, redact: redacts) }
        let response = try await next(request, context)
        switch response {
        case .completion(let result):
            let answer = try result.answerText().first?.content ?? ""
            _ = try await store.append(id: id, turnItems + [item(.assistant, answer, redact: redacts)])
            return response
        case .stream(let stream):
            return .stream(ChatStream(RecordedStream(base: stream, conversation: id, turn: turnItems, store: store, stage: self, redacts: redacts)))
        case .embeddings:
            return response
        }
    }

    /// The tokens history may take: `limit`, and what the smallest context window leaves.
    func budget(for chat: ChatCompletionRequest, limit: Int?) -> Int {
        let window = contextWindow(chat.model).map { $0 - TokenEstimator.promptTokens(of: chat) - (chat.outputTokenLimit ?? defaultOutputTokens) }
        return [limit, window].compactMap { $0 }.min() ?? Int.max
    }

    /// `strategy: summarize`: the running summary, then the newest turns that fit beside it. Turns
    /// that no longer fit are folded into the summary first, by the request's own model through
    /// the rest of the pipeline (routed, admitted, charged to this request and recorded as one of
    /// its attempts).
    func summarizedHistory(
        _ conversation: Conversation, for chat: ChatCompletionRequest, limit: Int?, request: InferenceRequest, context: InferenceContext,
        next: InferenceHandler
    ) async throws -> [ChatMessage] {
        let budget = budget(for: chat, limit: limit)
        guard budget > 0 else { return [] }
        // Every item the summary does not cover yet, newest first.
        var open: [ConversationItem] = []
        var after: String?
        pages: while true {
            let page = try await store.items(id: conversation.id, after: after, limit: 200, newestFirst: true)
            for item in page {
                guard item.sequence > conversation.summarizedThrough else { break pages }
                open.append(item)
            }
            guard page.count == 200, let last = page.last else { break }
            after = last.id
        }
        var summary = conversation.summary
        let existing = summary.map { 8 + TokenEstimator.tokens(in: $0) } ?? 0
        let total = open.reduce(0) { $0 + 4 + TokenEstimator.tokens(in: $1.text) }
        var kept = open
        if existing + total > budget {
            // A summary will stand for the older turns: it gets a third of the budget, the newest turns the rest.
            kept = []
            var used = 0
            for item in open {
                let cost = 4 + TokenEstimator.tokens(in: item.text)
                guard used + cost <= budget - budget / 3 else { break }
                used += cost
                kept.append(item)
            }
        }
        let folded = Array(open.dropFirst(kept.count).reversed())
        if let newest = folded.last {
            summary = try await summarize(previous: summary, folded, model: chat.model, request: request, context: context, next: next)
            if let summary { try await store.setSummary(id: conversation.id, summary, through: newest.sequence) }
        }
        var messages: [ChatMessage] = []
        if let summary, !summary.isEmpty {
            messages.append(ChatMessage(role: .system, text: "Summary of the earlier conversation:\n" + summary))
        }
        return messages + kept.reversed().map { ChatMessage(role: $0.role, text: $0.text) }
    }

    /// One model call that folds `items` into the running summary.
    func summarize(
        previous: String?, _ items: [ConversationItem], model: String, request: InferenceRequest, context: InferenceContext, next: InferenceHandler
    ) async throws -> String? {
        var transcript = previous.map { "Summary so far:\n\($0)\n\nLater messages:\n" } ?? ""
        for item in items { transcript += "\(item.role.rawValue): \(item.text)\n" }
        var ask = ChatCompletionRequest(
            model: model,
            messages: [
                ChatMessage(
                    role: .system,
                    text: "Summarise this conversation for your own later use in at most 120 words: keep names, facts, decisions and open questions."),
                ChatMessage(role: .user, text: transcript),
            ], maxTokens: 256, temperature: 0)
        ask.user = request.chat?.user
        var summaryRequest = InferenceRequest(chat: ask)
        summaryRequest.guardrailPolicy = request.guardrailPolicy
        guard case .completion(let result) = try await next(summaryRequest, context) else { return previous }
        let text = (try result.answerText().first?.content ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? previous : text
    }

    /// The newest history that fits the budget, oldest first.
    func history(_ id: String, for chat: ChatCompletionRequest, limit: Int?) async throws -> [ChatMessage] {
        let budget = budget(for: chat, limit: limit)
        guard budget > 0 else { return [] }
        var kept: [ChatMessage] = []
        var used = 0
        var after: String?
        // Newest first, a page at a time, until the budget is spent.
        pages: while true {
            let page = try await store.items(id: id, after: after, limit: 200, newestFirst: true)
            for item in page {
                let cost = 4 + TokenEstimator.tokens(in: item.text)
                guard used + cost <= budget else { break pages }
                used += cost
                kept.append(ChatMessage(role: item.role, text: item.text))
            }
            guard page.count == 200, let last = page.last else { break }
            after = last.id
        }
        return kept.reversed()
    }

    func redacts(_ request: InferenceRequest, _ context: InferenceContext) -> Bool {
        let policy = request.guardrailPolicy.map { policies.policy(named: $0) } ?? policies.policy(for: context.principal)
        guard let pii = policy?.configuration(.input).pii else { return false }
        return pii.action != .allow || pii.types.values.contains { $0 != .allow }
    }

    func item(_ role: ChatMessage.Role, _ text: String, redact: Bool) -> ConversationItem {
        ConversationItem(
            id: "msg_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(), role: role, text: redact ? redactor.redact(text) : text,
            createdAt: Date().timeIntervalSince1970)
    }
}

/// A streamed answer that, when it reaches its end, appends the turn and the text it carried
/// before reporting the end (a stream cut short appends nothing).
struct RecordedStream: AsyncSequence, Sendable {
    typealias Element = ChatStreamEvent
    let base: ChatStream
    let conversation: String
    let turn: [ConversationItem]
    let store: any ConversationStore
    let stage: ConversationStage
    let redacts: Bool

    func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator(), owner: self) }

    struct Iterator: AsyncIteratorProtocol {
        var base: ChatStream.AsyncIterator
        let owner: RecordedStream
        var text = ""
        var done = false

        mutating func next() async throws -> ChatStreamEvent? {
            guard !done else { return nil }
            guard let event = try await base.next() else {
                done = true
                _ = try await owner.store.append(id: owner.conversation, owner.turn + [owner.stage.item(.assistant, text, redact: owner.redacts)])
                return nil
            }
            if let delta = try event.firstDeltaContent() { text += delta }
            return event
        }
    }
}
