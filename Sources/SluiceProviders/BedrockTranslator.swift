import Foundation
import SluiceCore

/// Translates between OpenAI chat completions and AWS Bedrock's Converse API (`converse`,
/// `converse-stream`), both ways and for streams. Pure functions.
public enum BedrockTranslator {
    /// The Converse body for a chat request.
    public static func converseRequest(from request: ChatCompletionRequest) throws -> JSONValue {
        let request = try request.withFunctionToolsOnly(provider: "Bedrock")
        var system: [String] = []
        var messages = AlternatingTurns()
        func append(_ role: String, _ content: [JSONValue]) { messages.append(role, content) }

        for (i, message) in request.messages.enumerated() {
            switch message.role {
            case .system, .developer:
                system.append(message.text)
            case .user:
                append("user", try blocks(message.content, messageIndex: i))
            case .assistant:
                var content: [JSONValue] = []
                let text = message.text
                if !text.isEmpty { content.append(["text": .string(text)]) }
                for call in message.toolCalls ?? [] {
                    content.append(
                        ["toolUse": ["toolUseId": .string(call.id), "name": .string(call.function.name), "input": try ChatContent.toolInput(call, messageIndex: i)]])
                }
                append("assistant", content)
            case .tool, .function:
                guard let id = message.toolCallId else {
                    throw SluiceError(.missingParameter, "A tool message needs 'tool_call_id'", param: "messages[\(i)].tool_call_id")
                }
                append("user", [["toolResult": ["toolUseId": .string(id), "content": [["text": .string(message.text)]]]]])
            }
        }

        switch request.responseFormat?.type {
        case "json_object":
            system.append("Respond with a single JSON object and nothing else.")
        case "json_schema":
            let schema = request.responseFormat?.jsonSchema?.schema ?? .object([:])
            system.append("Respond with a single JSON value that matches this JSON Schema, and nothing else:\n\(schema.compactJSON)")
        default:
            break
        }

        var inference: [String: JSONValue] = [:]
        if let n = request.outputTokenLimit { inference["maxTokens"] = .int(n) }
        if let t = request.temperature { inference["temperature"] = .double(t) }
        if let p = request.topP { inference["topP"] = .double(p) }
        if let stop = request.stop { inference["stopSequences"] = .array(stop.values.map { .string($0) }) }

        var body: [String: JSONValue] = [
            "messages": messages.json(contentKey: "content")
        ]
        if !system.isEmpty { body["system"] = [["text": .string(system.joined(separator: "\n\n"))]] }
        if !inference.isEmpty { body["inferenceConfig"] = .object(inference) }
        if let tools = request.tools, !tools.isEmpty {
            var config: [String: JSONValue] = [
                "tools": .array(
                    tools.map { tool in
                        var spec: [String: JSONValue] = [
                            "name": .string(tool.function.name),
                            "inputSchema": ["json": tool.function.parameters ?? ["type": "object", "properties": .object([:])]],
                        ]
                        if let d = tool.function.description { spec["description"] = .string(d) }
                        return ["toolSpec": .object(spec)]
                    })
            ]
            // Converse has no "none": the tools stay declared (earlier turns may use them) and the model chooses.
            switch request.toolChoice {
            case .string("auto")?: config["toolChoice"] = ["auto": .object([:])]
            case .string("required")?: config["toolChoice"] = ["any": .object([:])]
            case .object(let o)?:
                if let name = o["function"]?["name"]?.stringValue { config["toolChoice"] = ["tool": ["name": .string(name)]] }
            default: break
            }
            body["toolConfig"] = .object(config)
        }
        return .object(body)
    }

    static func blocks(_ content: MessageContent?, messageIndex: Int) throws -> [JSONValue] {
        switch content {
        case nil: return []
        case .text(let s)?: return s.isEmpty ? [] : [["text": .string(s)]]
        case .parts(let parts)?:
            return try parts.enumerated().map { j, part in
                let param = "messages[\(messageIndex)].content[\(j)]"
                switch part.type {
                case "text":
                    return ["text": .string(part.text ?? "")]
                case "image_url":
                    guard let url = ChatContent.imageURL(of: part), let inline = ChatContent.dataURL(url), inline.mediaType.hasPrefix("image/") else {
                        throw SluiceError(.unsupported, "Bedrock takes images as data: URLs (base64), not links", param: param + ".image_url")
                    }
                    let format = String(inline.mediaType.dropFirst("image/".count))
                    return ["image": ["format": .string(format == "jpg" ? "jpeg" : format), "source": ["bytes": .string(inline.data)]]]
                default:
                    throw SluiceError(.unsupported, "Content parts of type '\(part.type)' cannot be sent to a Bedrock model", param: param + ".type")
                }
            }
        }
    }

    /// OpenAI's finish reason for a Converse stop reason.
    static func finishReason(_ stopReason: String?) -> String? {
        switch stopReason {
        case nil: nil
        case "max_tokens", "model_context_window_exceeded": "length"
        case "tool_use": "tool_calls"
        case "guardrail_intervened", "content_filtered": "content_filter"
        default: "stop"
        }
    }

    static func usage(_ u: JSONValue?) -> Usage? {
        guard let u else { return nil }
        return Usage(promptTokens: u["inputTokens"]?.intValue ?? 0, completionTokens: u["outputTokens"]?.intValue ?? 0)
    }

    /// The chat completion for a Converse response.
    public static func completion(from response: JSONValue, id: String, model: String, created: Int, provider: String) throws -> ChatCompletion {
        guard let content = response["output"]?["message"]?["content"]?.arrayValue else {
            throw SluiceError(.upstreamBadResponse, "Upstream '\(provider)' (Bedrock) returned no output message")
        }
        var text = ""
        var calls: [ToolCall] = []
        for block in content {
            if let t = block["text"]?.stringValue { text += t }
            if let use = block["toolUse"] {
                calls.append(
                    ToolCall(id: use["toolUseId"]?.stringValue ?? "", name: use["name"]?.stringValue ?? "", arguments: (use["input"] ?? .object([:])).compactJSON))
            }
        }
        let stop = response["stopReason"]?.stringValue
        let finish = finishReason(stop) ?? "stop"
        if finish == "content_filter" && calls.isEmpty && (text.isEmpty || stop == "guardrail_intervened") {
            throw SluiceError(.contentFiltered, "Upstream '\(provider)' (Bedrock) refused the request: \(stop ?? "content_filtered")", upstreamStatus: 200)
        }
        let message = AssistantMessage(content: calls.isEmpty || !text.isEmpty ? text : nil, toolCalls: calls.isEmpty ? nil : calls)
        return ChatCompletion(
            id: id, created: created, model: model, choices: [.init(index: 0, message: message, finishReason: finish)], usage: usage(response["usage"]))
    }

    /// The error an event-stream exception message stands for.
    static func exception(_ type: String?, payload: JSONValue?, provider: String) -> SluiceError {
        let message = payload?["message"]?.stringValue ?? payload?["Message"]?.stringValue ?? "no message"
        switch type {
        case "throttlingException":
            return SluiceError(.upstreamRateLimited, "Upstream '\(provider)' is rate limiting: \(message)", retryAfter: 1, upstreamStatus: 429)
        case "validationException":
            if UpstreamError.isContextLengthMessage(message) {
                return SluiceError(.contextLengthExceeded, "Upstream '\(provider)' cannot take a prompt this long: \(message)", param: "messages", upstreamStatus: 400)
            }
            return SluiceError(.upstreamRejected, "Upstream '\(provider)' rejected the request: \(message)", upstreamStatus: 400)
        case "serviceUnavailableException":
            return SluiceError(.upstreamError, "Upstream '\(provider)' is unavailable: \(message)", upstreamStatus: 503)
        default:
            return SluiceError(.upstreamError, "Upstream '\(provider)' failed mid-stream (\(type ?? "exception")): \(message)", upstreamStatus: 500)
        }
    }

    /// Turns ConverseStream events into chat chunks; one per stream.
    public struct StreamState: Sendable {
        let id: String
        let model: String
        let created: Int
        let provider: String
        /// Chat tool-call index of each Converse content block that is a tool use.
        var toolIndexForBlock: [Int: Int] = [:]
        var usage: Usage?
        var finishReason: String?
        /// Whether `messageStop` arrived (`metadata`, with usage, may follow it).
        public private(set) var stopped = false

        public init(id: String, model: String, created: Int, provider: String) {
            self.id = id
            self.model = model
            self.created = created
            self.provider = provider
        }

        func chunk(_ delta: ChatCompletionChunk.Delta, finish: String? = nil) -> ChatCompletionChunk {
            ChatCompletionChunk(id: id, created: created, model: model, choices: [.init(index: 0, delta: delta, finishReason: finish)])
        }

        public mutating func chunks(for message: AWSEventStreamMessage) throws -> [ChatCompletionChunk] {
            let payload = try? JSONCoding.decode(JSONValue.self, from: message.payload)
            if message.headers[":message-type"] == "exception" || message.headers[":message-type"] == "error" {
                throw BedrockTranslator.exception(
                    message.headers[":exception-type"] ?? message.headers[":error-code"], payload: payload, provider: provider)
            }
            guard let data = payload else {
                throw SluiceError(.upstreamBadResponse, "Upstream '\(provider)' sent a stream event that is not JSON")
            }
            switch message.headers[":event-type"] {
            case "messageStart":
                return [chunk(.init(role: "assistant", content: ""))]
            case "contentBlockStart":
                guard let use = data["start"]?["toolUse"] else { return [] }
                let index = toolIndexForBlock.count
                toolIndexForBlock[data["contentBlockIndex"]?.intValue ?? 0] = index
                return [
                    chunk(
                        .init(toolCalls: [
                            .init(index: index, id: use["toolUseId"]?.stringValue, type: "function", function: .init(name: use["name"]?.stringValue, arguments: ""))
                        ]))
                ]
            case "contentBlockDelta":
                let delta = data["delta"]
                if let text = delta?["text"]?.stringValue { return [chunk(.init(content: text))] }
                if let input = delta?["toolUse"]?["input"]?.stringValue {
                    let index = toolIndexForBlock[data["contentBlockIndex"]?.intValue ?? 0] ?? 0
                    return [chunk(.init(toolCalls: [.init(index: index, function: .init(arguments: input))]))]
                }
                return []
            case "messageStop":
                stopped = true
                let finish = BedrockTranslator.finishReason(data["stopReason"]?.stringValue) ?? "stop"
                return [chunk(.init(), finish: finish)]
            case "metadata":
                usage = BedrockTranslator.usage(data["usage"])
                return []
            default:
                return []  // contentBlockStop
            }
        }

        /// The usage chunk that ends the stream.
        public func end() -> ChatCompletionChunk {
            ChatCompletionChunk(id: id, created: created, model: model, choices: [], usage: usage ?? Usage(promptTokens: 0, completionTokens: 0))
        }
    }
}
