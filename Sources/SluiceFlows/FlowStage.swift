import Foundation
import SluiceCore

/// Turns a flow run into the chat request its definition says (the enrich step): checks the input
/// against the flow's schema (filling in defaults), renders the prompt, sets the model, the
/// parameters, the output's JSON Schema (so the guardrail stage validates and repairs it) and
/// the flow's guardrail policy. Everything after it — guardrails, routing, limits, the cache,
/// fallbacks, the audit record — is the ordinary pipeline. Requests without a flow pass through.
public struct FlowStage: InferenceStage {
    let catalog: FlowCatalog

    public init(catalog: FlowCatalog) { self.catalog = catalog }

    public func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        guard let run = request.flow else { return try await next(request, context) }
        let definition = try catalog.definition(run.name, version: run.version)
        context.facts.update(\.flow) {
            $0.name = definition.name
            $0.version = definition.version
            if case .schema = definition.config.output { $0.structuredOutput = true }
        }
        let input = try definition.resolvedInput(run)
        var request = request
        request.body = .chat(try definition.chatRequest(input: input, base: request.chat))
        request.guardrailPolicy = definition.config.guardrails
        if request.conversation != nil {
            guard let conversation = definition.config.conversation else {
                throw SluiceError(
                    .invalidValue, "Flow '\(definition.name)' is stateless (it has no conversation: section); leave conversation_id out.",
                    param: "conversation_id")
            }
            request.maxHistoryTokens = conversation.maxHistoryTokens
            request.summarizesHistory = conversation.strategy == .summarize
        }
        return try await next(request, context)
    }
}

extension FlowDefinition {
    /// The run's variables: its input object (or its text bound or parsed), with defaults filled
    /// in, checked against the input schema. Errors are 400s naming the JSON Pointer and the rule.
    func resolvedInput(_ run: FlowRun) throws -> [String: JSONValue] {
        var value = run.input
        if let text = run.text {
            let parsed = Array(text.utf8).withUnsafeBytes { JSONParser.parse($0) }
            if case .object? = parsed {
                value = parsed!
            } else if let property = singleStringProperty {
                value = .object([property: .string(text)])
            } else {
                throw SluiceError(
                    .invalidValue,
                    "Flow '\(name)' takes a JSON object as input (properties: \((config.inputProperties ?? []).sorted().joined(separator: ", "))); send it as the last user message.",
                    param: "messages")
            }
        }
        guard case .object(var object) = value else {
            throw SluiceError(.invalidType, "The input of flow '\(name)' must be a JSON object, got \(value.typeName).", param: "input")
        }
        for (key, fallback) in defaults where object[key] == nil { object[key] = fallback }
        if let validator = input {
            let violations = validator.validate(.object(object), limit: 10)
            if let first = violations.first {
                let listed = violations.map { "input\($0.path): \($0.message)" }.joined(separator: "; ")
                throw SluiceError(.invalidValue, "The input does not match flow '\(name)' version \(version): \(listed)", param: "input\(first.path)")
            }
        }
        return object
    }

    /// The chat request this version makes of `input`: the client's own request (stream,
    /// `user`, options) with the flow's model, rendered messages, parameters and output format.
    func chatRequest(input: [String: JSONValue], base: ChatCompletionRequest?) throws -> ChatCompletionRequest {
        let variables = Self.renderable(.object(input))
        var chat = base ?? ChatCompletionRequest(model: config.model, messages: [])
        chat.model = config.model
        chat.messages = messages.map { ChatMessage(role: $0.role, text: $0.template.render(variables)) }
        let params = config.params
        if let t = params.temperature { chat.temperature = t }
        if let p = params.topP { chat.topP = p }
        if let m = params.maxTokens {
            chat.maxTokens = m
            chat.maxCompletionTokens = nil
        }
        if let s = params.seed { chat.seed = s }
        if let stop = params.stop { chat.stop = .many(stop) }
        switch config.output {
        case .text:
            chat.responseFormat = nil
        case .schema(let schema):
            chat.responseFormat = ResponseFormat(type: "json_schema", jsonSchema: .init(name: Self.schemaName(name), schema: schema))
        }
        return chat
    }

    /// OpenAI's schema names are `[a-zA-Z0-9_-]{1,64}`.
    static func schemaName(_ flow: String) -> String {
        String(flow.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "_" }.prefix(64))
    }

    /// A JSON value as mustache reads it: objects as dictionaries (sections and dotted names),
    /// lists as arrays, scalars as themselves.
    static func renderable(_ value: JSONValue) -> Any {
        switch value {
        case .object(let members): return members.mapValues { renderable($0) }
        case .array(let items): return items.map { renderable($0) }
        case .string(let s): return s
        case .int(let i): return i
        case .double(let d): return d
        case .bool(let b): return b
        case .null: return ""
        }
    }
}
