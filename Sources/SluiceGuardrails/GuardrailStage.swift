import SluiceCore

/// Checks what goes to the model and what comes back, per the caller's guardrail policy: input
/// size, PII and secrets (redacted, masked, blocked or anonymised), prompt injection, ban lists
/// and denied topics on the way in; PII, ban lists, system-prompt leakage and denied topics on
/// the way out, in text and tool-call arguments, streams included; and a structured answer's
/// JSON Schema, with repair attempts.
public struct GuardrailStage: InferenceStage {
    let policies: GuardrailPolicies

    public init(policies: GuardrailPolicies) { self.policies = policies }

    public func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        let chosen = request.guardrailPolicy.map { policies.policy(named: $0) } ?? policies.policy(for: context.principal)
        // A flow's output schema is its contract: checked and repaired even when no policy applies.
        guard let policy = chosen ?? (request.flow != nil && request.chat?.responseFormat?.jsonSchema != nil ? policies.outputContract : nil) else {
            return try await next(request, context)
        }
        context.facts.update(\.guardrails) { $0.policy = policy.name }
        let book = PlaceholderBook()
        var request = request
        guard case .chat(var chat) = request.body else {
            if case .embeddings(var embeddings) = request.body {
                try await checkInput(&embeddings, policy: policy, book: book, context: context)
                request.body = .embeddings(embeddings)
            }
            return try await next(request, context)
        }
        try await checkInput(&chat, policy: policy, book: book, context: context)
        request.body = .chat(chat)
        let schema = try Self.schemaValidator(chat)
        let fingerprint = policy.configuration(.output).leakage.map { leak in
            LeakageCheck(minWords: leak.minWords).fingerprint(
                of: chat.messages.filter { $0.role == .system || $0.role == .developer }.map(\.text).joined(separator: "\n"))
        }
        let checksOutput = policy.checksText(.output) || book.hasRestorable
        let outputTopics = policies.topics["\(policy.name)/output"]
        if chat.isStreaming {
            let response = try await next(request, context)
            guard case .stream(let stream) = response, checksOutput || schema != nil || outputTopics != nil else { return response }
            let guarded = GuardedStream(
                base: stream, policy: checksOutput ? policy : nil, book: book, fingerprint: fingerprint, schema: schema,
                topics: outputTopics.map { TopicGate(policy: policy, topics: $0, stage: self) }, context: context)
            return .stream(ChatStream(guarded))
        }
        return try await complete(
            request, chat: chat, policy: policy, book: book, schema: schema, fingerprint: fingerprint, checksOutput: checksOutput, context: context,
            next: next)
    }

    /// An embeddings request's input: its size limits, and the span checks (PII, secrets, ban
    /// lists) on each string — what is embedded leaves Sluice as much as a prompt does. Not
    /// scored for injection (nothing follows instructions in it) nor matched to topics.
    func checkInput(_ embeddings: inout EmbeddingsRequest, policy: GuardrailPolicy, book: PlaceholderBook, context: InferenceContext) async throws {
        guard case .strings(var inputs) = embeddings.input else { return }
        let c = policy.configuration(.input)
        var totalChars = 0
        for (i, text) in inputs.enumerated() {
            let chars = text.unicodeScalars.count
            totalChars += chars
            if let max = c.maxMessageChars, chars > max {
                throw SluiceError(.invalidValue, "input[\(i)] has \(chars) characters; the limit is \(max) (guardrail policy '\(policy.name)').", param: "input[\(i)]")
            }
        }
        if let max = c.maxChars, totalChars > max {
            throw SluiceError(.requestTooLarge, "The input has \(totalChars) characters; the limit is \(max) (guardrail policy '\(policy.name)').", param: "input")
        }
        guard policy.checksText(.input) else { return }
        let entities = try await policies.entityTaggers[policy.name]?.findings(inputs)
        for i in inputs.indices {
            let outcome = policy.check(inputs[i], direction: .input, book: book, scoreInjection: false, entities: entities?[i] ?? [])
            record(outcome.findings, direction: .input, index: i, context: context)
            if let blocked = outcome.blockedBy {
                throw SluiceError(.guardrailBlocked, "The request was blocked by guardrail '\(blocked.check)' (\(blocked.type) in input[\(i)]).", param: "input[\(i)]")
            }
            inputs[i] = outcome.text
        }
        embeddings.input = .strings(inputs)
    }

    // MARK: Input

    func checkInput(_ chat: inout ChatCompletionRequest, policy: GuardrailPolicy, book: PlaceholderBook, context: InferenceContext) async throws {
        let c = policy.configuration(.input)
        var totalChars = 0
        var totalTokens = 0
        for (i, message) in chat.messages.enumerated() {
            let text = message.text
            let chars = text.unicodeScalars.count
            let tokens = TokenEstimator.tokens(in: text)
            totalChars += chars
            totalTokens += tokens
            if let max = c.maxMessageChars, chars > max {
                throw SluiceError(.invalidValue, "messages[\(i)] has \(chars) characters; the limit is \(max) (guardrail policy '\(policy.name)').", param: "messages[\(i)].content")
            }
            if let max = c.maxMessageTokens, tokens > max {
                throw SluiceError(.invalidValue, "messages[\(i)] has about \(tokens) tokens; the limit is \(max) (guardrail policy '\(policy.name)').", param: "messages[\(i)].content")
            }
        }
        if let max = c.maxChars, totalChars > max {
            throw SluiceError(.requestTooLarge, "The messages have \(totalChars) characters; the limit is \(max) (guardrail policy '\(policy.name)').", param: "messages")
        }
        if let max = c.maxTokens, totalTokens > max {
            throw SluiceError(.requestTooLarge, "The messages have about \(totalTokens) tokens; the limit is \(max) (guardrail policy '\(policy.name)').", param: "messages")
        }
        guard policy.checksText(.input) || c.topics != nil else { return }
        let classifier = policies.injectionClassifiers["\(policy.name)/input"]
        // The entity tagger's findings for every text, in the order the loop below visits them.
        var entities: [[PIIFinding]] = []
        if let tagger = policies.entityTaggers[policy.name] {
            entities = try await tagger.findings(chat.messages.flatMap { message -> [String] in
                switch message.content {
                case .text(let text)?: [text]
                case .parts(let parts)?: parts.compactMap(\.text)
                case nil: []
                }
            })
        }
        var visited = 0
        func nextEntities() -> [PIIFinding] {
            defer { visited += 1 }
            return visited < entities.count ? entities[visited] : []
        }
        var untrustedTexts: [(index: Int, text: String)] = []
        for i in chat.messages.indices {
            let message = chat.messages[i]
            // System and developer text is the application's own: checked for PII, not scored as an injection.
            let untrusted = message.role == .user || message.role == .tool || message.role == .function
            if untrusted, classifier != nil {
                let text = message.text
                if !text.isEmpty { untrustedTexts.append((i, text)) }
            }
            switch message.content {
            case .text(let text)?:
                chat.messages[i].content = .text(
                    try checkInputText(text, index: i, untrusted: untrusted, policy: policy, book: book, entities: nextEntities(), context: context))
            case .parts(var parts)?:
                for k in parts.indices {
                    guard let text = parts[k].text else { continue }
                    let checked = try checkInputText(text, index: i, untrusted: untrusted, policy: policy, book: book, entities: nextEntities(), context: context)
                    if checked != text { parts[k] = parts[k].replacingText(checked) }
                }
                chat.messages[i].content = .parts(parts)
            case nil:
                break
            }
        }
        if let classifier, let action = c.injection?.action, !untrustedTexts.isEmpty {
            // A tool's JSON result is read as its strings, escapes decoded, as the rules read it.
            let verdicts = try await classifier.score(untrustedTexts.map { JSONText.strings($0.text) ?? $0.text })
            for (verdict, (index, text)) in zip(verdicts, untrustedTexts) {
                guard let finding = classifier.finding(verdict, text: text, action: action) else { continue }
                record([finding], direction: .input, index: index, context: context)
                if action == .block {
                    throw SluiceError(
                        .guardrailBlocked, "The request was blocked by guardrail 'injection' (\(verdict.reason) in messages[\(index)]).",
                        param: "messages[\(index)].content")
                }
            }
        }
        if let topics = policies.topics["\(policy.name)/input"], let index = chat.messages.lastIndex(where: { $0.role == .user }) {
            try await checkTopic(
                chat.messages[index].text, topics: topics, policy: policy, direction: .input, index: index, context: context,
                blocked: { SluiceError(.guardrailBlocked, "The request was blocked by guardrail 'topics' (denied topic '\($0)').", param: "messages[\(index)].content") })
        }
    }

    /// Matches a text against a direction's denied topics, records a hit, and throws `blocked(topic)` when the action is block.
    func checkTopic(
        _ text: String, topics: DeniedTopics, policy: GuardrailPolicy, direction: GuardrailDirection, index: Int, context: InferenceContext,
        blocked: (String) -> SluiceError
    ) async throws {
        guard let action = policy.configuration(direction).topics?.action, let hit = try await topics.match(text) else { return }
        let finding = GuardrailFinding(check: "topics", type: "DENIED_TOPIC", start: 0, end: text.unicodeScalars.count, score: hit.similarity, action: action)
        record([finding], direction: direction, index: index, context: context)
        if action == .block { throw blocked(hit.topic) }
    }

    func checkInputText(
        _ text: String, index: Int, untrusted: Bool, policy: GuardrailPolicy, book: PlaceholderBook, entities: [PIIFinding], context: InferenceContext
    ) throws -> String {
        let outcome = policy.check(text, direction: .input, book: book, scoreInjection: untrusted, entities: entities)
        record(outcome.findings, direction: .input, index: index, context: context)
        if let blocked = outcome.blockedBy {
            let detail = blocked.check == "injection" ? "score \(blocked.score)" : blocked.type
            throw SluiceError(.guardrailBlocked, "The request was blocked by guardrail '\(blocked.check)' (\(detail) in messages[\(index)]).", param: "messages[\(index)].content")
        }
        return outcome.text
    }

    func record(_ findings: [GuardrailFinding], direction: GuardrailDirection, index: Int, context: InferenceContext) {
        guard !findings.isEmpty else { return }
        for f in findings { GuardrailPolicies.count(f, direction: direction) }
        let events = findings.map {
            GuardrailEvent(direction: direction.rawValue, check: $0.check, type: $0.type, index: index, start: $0.start, end: $0.end, score: $0.score, action: $0.action.rawValue)
        }
        context.facts.update(\.guardrails) { $0.events.append(contentsOf: events) }
    }

    // MARK: Output

    static func schemaValidator(_ chat: ChatCompletionRequest) throws -> JSONSchemaValidator? {
        guard let format = chat.responseFormat, format.type == "json_schema", let schema = format.jsonSchema?.schema else { return nil }
        return try JSONSchemaValidator(schema: schema)
    }

    func complete(
        _ request: InferenceRequest, chat: ChatCompletionRequest, policy: GuardrailPolicy, book: PlaceholderBook, schema: JSONSchemaValidator?, fingerprint: Set<Int>?,
        checksOutput: Bool, context: InferenceContext, next: InferenceHandler
    ) async throws -> InferenceResponse {
        var attempt = request
        var chat = chat
        var usage: Usage?
        let attempts = schema == nil ? 1 : 1 + policy.config.schemaRepairAttempts
        var violations: [JSONSchemaValidator.Violation] = []
        for n in 0..<attempts {
            let response = try await next(attempt, context)
            guard case .completion(var result) = response else { return response }
            if let u = result.usage { usage = usage.map { Usage(promptTokens: $0.promptTokens + u.promptTokens, completionTokens: $0.completionTokens + u.completionTokens) } ?? u }
            if let schema {
                let content = try result.completion().choices.first?.message.content ?? ""
                violations = schema.validate(text: content)
                if !violations.isEmpty {
                    let finding = GuardrailFinding(check: "schema", type: "SCHEMA_VIOLATION", start: 0, end: 0, score: 1, action: n + 1 < attempts ? .allow : .block)
                    record([finding], direction: .output, index: n, context: context)
                    if n + 1 < attempts {
                        chat.messages.append(ChatMessage(role: .assistant, text: content))
                        chat.messages.append(ChatMessage(role: .user, text: Self.repairPrompt(violations)))
                        attempt.body = .chat(chat)
                        continue
                    }
                    break
                }
                if n > 0, let total = usage { try result.modify { $0.usage = total } }
            }
            if checksOutput || policies.topics["\(policy.name)/output"] != nil {
                try await checkOutput(&result, policy: policy, book: book, fingerprint: fingerprint, context: context)
            }
            return .completion(result)
        }
        // Every attempt failed: the ledger has charged each of them.
        let listed = violations.prefix(10).map(\.description).joined(separator: "; ")
        throw SluiceError(.schemaValidationFailed, "The model's answer did not match the JSON Schema after \(attempts) attempt\(attempts == 1 ? "" : "s"): \(listed)")
    }

    static func repairPrompt(_ violations: [JSONSchemaValidator.Violation]) -> String {
        "Your previous answer does not match the required JSON Schema:\n"
            + violations.prefix(10).map { "- \($0.description)" }.joined(separator: "\n")
            + "\nReply again with only the corrected JSON document, nothing else."
    }

    func checkOutput(_ result: inout ChatResult, policy: GuardrailPolicy, book: PlaceholderBook, fingerprint: Set<Int>?, context: InferenceContext) async throws {
        // The text and tool calls only, read from the upstream's bytes: the completion is decoded
        // just when a check changes it. A choice's index is its place in `choices`.
        let answers = try result.answerText()
        let topics = policies.topics["\(policy.name)/output"]
        var changed: [Int: String] = [:]
        var changedArguments: [Int: [Int: String]] = [:]
        for (k, answer) in answers.enumerated() {
            if let content = answer.content, !content.isEmpty {
                let outcome = policy.check(content, direction: .output, book: book, scoreInjection: true, leakFingerprint: fingerprint)
                record(outcome.findings, direction: .output, index: k, context: context)
                if let blocked = outcome.blockedBy {
                    throw SluiceError(.guardrailBlocked, "The model's answer was blocked by guardrail '\(blocked.check)' (\(blocked.type)).")
                }
                let restored = book.hasRestorable ? book.restore(outcome.text) : outcome.text
                if restored != content { changed[k] = restored }
                if let topics {
                    try await checkTopic(content, topics: topics, policy: policy, direction: .output, index: k, context: context) {
                        SluiceError(.guardrailBlocked, "The model's answer was blocked by guardrail 'topics' (denied topic '\($0)').")
                    }
                }
            }
            // Tool-call arguments leave Sluice as much as text does: the same span checks apply.
            for (c, call) in answer.toolCalls.enumerated() where !call.arguments.isEmpty {
                let outcome = policy.check(call.arguments, direction: .output, book: book, scoreInjection: false, leakFingerprint: fingerprint, json: true)
                record(outcome.findings, direction: .output, index: k, context: context)
                if let blocked = outcome.blockedBy {
                    throw SluiceError(
                        .guardrailBlocked, "The model's call of tool '\(call.name)' was blocked by guardrail '\(blocked.check)' (\(blocked.type)).")
                }
                let restored = book.hasRestorable ? book.restore(outcome.text) : outcome.text
                if restored != call.arguments { changedArguments[k, default: [:]][c] = restored }
            }
        }
        guard !changed.isEmpty || !changedArguments.isEmpty else { return }
        try result.modify { c in
            for (k, text) in changed { c.choices[k].message.content = text }
            for (k, calls) in changedArguments {
                for (call, arguments) in calls { c.choices[k].message.toolCalls?[call].function.arguments = arguments }
            }
        }
    }
}

/// A stream's denied-topic check: the answer so far is matched every `interval` code points and
/// at its end (an embedding per check, so not per chunk).
struct TopicGate: Sendable {
    let policy: GuardrailPolicy
    let topics: DeniedTopics
    let stage: GuardrailStage
    var interval = 512

    func check(_ text: String, index: Int, context: InferenceContext) async throws {
        try await stage.checkTopic(text, topics: topics, policy: policy, direction: .output, index: index, context: context) {
            SluiceError(.guardrailBlocked, "The answer was stopped by guardrail 'topics' (denied topic '\($0)').")
        }
    }
}

/// A stream with the output checks applied to each choice's text as it arrives.
struct GuardedStream: AsyncSequence, Sendable {
    typealias Element = ChatStreamEvent
    let base: ChatStream
    let policy: GuardrailPolicy?
    let book: PlaceholderBook
    let fingerprint: Set<Int>?
    let schema: JSONSchemaValidator?
    let topics: TopicGate?
    let context: InferenceContext

    func makeAsyncIterator() -> Iterator {
        Iterator(base: base.makeAsyncIterator(), owner: self)
    }

    struct Iterator: AsyncIteratorProtocol {
        var base: ChatStream.AsyncIterator
        let owner: GuardedStream
        /// Guards by choice for text, and by choice and call for tool-call arguments.
        var guards: [GuardKey: StreamTextGuard] = [:]
        var reported: [GuardKey: Int] = [:]
        var texts: [Int: String] = [:]
        /// Code points of each choice's text so far, and at its last topic check.
        var textLengths: [Int: Int] = [:]
        var topicCheckedAt: [Int: Int] = [:]
        var queue: [ChatStreamEvent] = []
        var pendingError: SluiceError?
        var template: ChatCompletionChunk?
        var ended = false

        init(base: ChatStream.AsyncIterator, owner: GuardedStream) {
            self.base = base
            self.owner = owner
        }

        /// A topic check a chunk asks for: the choice's text so far.
        struct TopicCheck {
            var text: String
            var index: Int
        }

        // The checks themselves are synchronous (`process`, never inlined here): what they keep
        // stays on the thread's stack instead of in this frame, which a held stream keeps for as
        // long as it lasts. Only the topic checks wait, and they run before the chunk goes on.
        mutating func next() async throws -> ChatStreamEvent? {
            while true {
                if !queue.isEmpty { return queue.removeFirst() }
                if let error = pendingError {
                    pendingError = nil
                    ended = true
                    throw error
                }
                if ended { return nil }
                let event = try await base.next()
                var topicChecks: [TopicCheck] = []
                let out = try process(event, topicChecks: &topicChecks)
                if let gate = owner.topics {
                    do {
                        for check in topicChecks { try await gate.check(check.text, index: check.index, context: owner.context) }
                    } catch {
                        ended = true
                        pendingError = nil
                        throw error
                    }
                }
                if let out { return out }
            }
        }

        /// Applies the checks to one event (nil: upstream ended); returns what to send, if anything.
        @inline(never)
        mutating func process(_ event: ChatStreamEvent?, topicChecks: inout [TopicCheck]) throws -> ChatStreamEvent? {
            guard let event else {
                ended = true
                // Upstream ended without a finish reason: send what is held back.
                if let rest = try flushAll(), var chunk = template {
                    chunk.choices = rest.map { ChatCompletionChunk.Choice(index: $0.key, delta: .init(content: $0.value)) }
                    queue.append(ChatStreamEvent(chunk: chunk))
                }
                return nil
            }
            if event.summary.outputBytes == 0 && event.summary.finishReason == nil { return event }
            var chunk = try event.chunk()
            if template == nil { template = ChatCompletionChunk(id: chunk.id, created: chunk.created, model: chunk.model, choices: []) }
            var keep = false
            for k in chunk.choices.indices {
                let index = chunk.choices[k].index
                var out = ""
                if let content = chunk.choices[k].delta.content, !content.isEmpty {
                    texts[index, default: ""] += content
                    out += try feed(content, key: GuardKey(choice: index))
                    if let gate = owner.topics {
                        textLengths[index, default: 0] += content.unicodeScalars.count
                        let length = textLengths[index]!
                        if length - (topicCheckedAt[index] ?? 0) >= gate.interval {
                            topicCheckedAt[index] = length
                            topicChecks.append(TopicCheck(text: texts[index]!, index: index))
                        }
                    }
                }
                if let calls = chunk.choices[k].delta.toolCalls {
                    for j in calls.indices {
                        guard let arguments = calls[j].function?.arguments, !arguments.isEmpty else { continue }
                        chunk.choices[k].delta.toolCalls![j].function!.arguments = try feed(arguments, key: GuardKey(choice: index, call: calls[j].index))
                    }
                }
                if chunk.choices[k].finishReason != nil {
                    out += try finish(key: GuardKey(choice: index))
                    let rest = try finishToolCalls(choice: index)
                    if !rest.isEmpty { chunk.choices[k].delta.toolCalls = (chunk.choices[k].delta.toolCalls ?? []) + rest }
                    if owner.topics != nil, let text = texts[index], !text.isEmpty {
                        topicChecks.append(TopicCheck(text: text, index: index))
                    }
                    if let schema = owner.schema {
                        let violations = schema.validate(text: texts[index] ?? "")
                        if violations.isEmpty {
                            chunk.sluice = StreamAnnotations(schemaValid: true)
                        } else {
                            pendingError = SluiceError(
                                .schemaValidationFailed,
                                "The streamed answer does not match the JSON Schema: " + violations.prefix(10).map(\.description).joined(separator: "; "))
                        }
                    }
                }
                chunk.choices[k].delta.content = out.isEmpty ? nil : out
                if !out.isEmpty || chunk.choices[k].finishReason != nil || chunk.choices[k].delta.toolCalls != nil || chunk.choices[k].delta.role != nil {
                    keep = true
                }
            }
            return keep || chunk.usage != nil ? ChatStreamEvent(chunk: chunk) : nil
        }

        mutating func guardFor(_ key: GuardKey) -> StreamTextGuard? {
            guard let policy = owner.policy else { return nil }
            if let g = guards[key] { return g }
            let g = StreamTextGuard(policy: policy, book: owner.book, leakFingerprint: owner.fingerprint, json: key.call != nil)
            guards[key] = g
            return g
        }

        mutating func feed(_ text: String, key: GuardKey) throws -> String {
            guard var g = guardFor(key) else { return text }
            defer { guards[key] = g; report(g, key: key) }
            do { return try g.feed(text) } catch { report(g, key: key); throw error }
        }

        mutating func finish(key: GuardKey) throws -> String {
            guard var g = guards[key] else { return "" }
            defer { guards[key] = g; report(g, key: key) }
            do { return try g.finish() } catch { report(g, key: key); throw error }
        }

        /// The held-back ends of a choice's tool-call arguments, as deltas.
        mutating func finishToolCalls(choice: Int) throws -> [ChatCompletionChunk.ToolCallDelta] {
            var out: [ChatCompletionChunk.ToolCallDelta] = []
            for key in guards.keys.filter({ $0.choice == choice && $0.call != nil }).sorted() {
                let rest = try finish(key: key)
                if !rest.isEmpty { out.append(.init(index: key.call!, function: .init(arguments: rest))) }
            }
            return out
        }

        mutating func flushAll() throws -> [Int: String]? {
            var out: [Int: String] = [:]
            for key in guards.keys.sorted() where key.call == nil {
                let rest = try finish(key: key)
                if !rest.isEmpty { out[key.choice] = rest }
            }
            return out.isEmpty ? nil : out
        }

        /// Records the guard's findings not yet recorded.
        mutating func report(_ g: StreamTextGuard, key: GuardKey) {
            let index = key.choice
            let done = reported[key] ?? 0
            guard g.findings.count > done else { return }
            let new = Array(g.findings[done...])
            reported[key] = g.findings.count
            for f in new { GuardrailPolicies.count(f, direction: .output) }
            let events = new.map {
                GuardrailEvent(direction: "output", check: $0.check, type: $0.type, index: index, start: $0.start, end: $0.end, score: $0.score, action: $0.action.rawValue)
            }
            owner.context.facts.update(\.guardrails) { $0.events.append(contentsOf: events) }
        }
    }
}

/// Which text of a stream a guard watches: a choice's content, or one of its tool calls' arguments.
struct GuardKey: Hashable, Comparable {
    var choice: Int
    var call: Int?

    static func < (a: GuardKey, b: GuardKey) -> Bool { (a.choice, a.call ?? -1) < (b.choice, b.call ?? -1) }
}
