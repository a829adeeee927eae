import Foundation
import SluiceCore

/// Translates between OpenAI chat completions and Anthropic's Messages API, both ways and for
/// streams. Pure functions: the provider does the I/O.
public enum AnthropicTranslator {
    /// The Messages API request for a chat completion request.
    public static func messagesRequest(from request: ChatCompletionRequest, defaultMaxTokens: Int) throws -> JSONValue {
        let request = try request.withFunctionToolsOnly(provider: "Anthropic")
        var system: [String] = []
        var messages = AlternatingTurns()
        func append(_ role: String, _ blocks: [JSONValue]) { messages.append(role, blocks) }

        for (i, message) in request.messages.enumerated() {
            switch message.role {
            case .system, .developer:
                system.append(message.text)
            case .user:
                append("user", try contentBlocks(message.content, messageIndex: i))
            case .assistant:
                var blocks: [JSONValue] = []
                let text = message.text
                if !text.isEmpty { blocks.append(["type": "text", "text": .string(text)]) }
                for call in message.toolCalls ?? [] {
                    blocks.append(
                        ["type": "tool_use", "id": .string(call.id), "name": .string(call.function.name), "input": try ChatContent.toolInput(call, messageIndex: i)])
                }
                append("assistant", blocks)
            case .tool, .function:
                guard let id = message.toolCallId else {
                    throw SluiceError(.missingParameter, "A tool message needs 'tool_call_id'", param: "messages[\(i)].tool_call_id")
                }
                append("user", [["type": "tool_result", "tool_use_id": .string(id), "content": .string(message.text)]])
            }
        }

        if let format = request.responseFormat {
            switch format.type {
            case "json_object":
                system.append("Respond with a single JSON object and nothing else.")
            case "json_schema":
                let schema = format.jsonSchema?.schema ?? .object([:])
                system.append("Respond with a single JSON value that matches this JSON Schema, and nothing else:\n\(schema.compactJSON)")
            default:
                break
            }
        }

        var body: [String: JSONValue] = [
            "model": .string(request.model),
            "max_tokens": .int(request.outputTokenLimit ?? defaultMaxTokens),
            "messages": messages.json(contentKey: "content"),
        ]
        if !system.isEmpty { body["system"] = .string(system.joined(separator: "\n\n")) }
        if let t = request.temperature { body["temperature"] = .double(t) }
        if let p = request.topP { body["top_p"] = .double(p) }
        if let stop = request.stop { body["stop_sequences"] = .array(stop.values.map { .string($0) }) }
        if let user = request.user { body["metadata"] = ["user_id": .string(user)] }
        if request.isStreaming { body["stream"] = true }
        if let tools = request.tools, !tools.isEmpty {
            body["tools"] = .array(
                tools.map { tool in
                    var t: [String: JSONValue] = [
                        "name": .string(tool.function.name),
                        "input_schema": tool.function.parameters ?? ["type": "object", "properties": .object([:])],
                    ]
                    if let d = tool.function.description { t["description"] = .string(d) }
                    return .object(t)
                })
            var choice: JSONValue?
            switch request.toolChoice {
            case .string("auto")?: choice = ["type": "auto"]
            case .string("none")?: choice = ["type": "none"]
            case .string("required")?: choice = ["type": "any"]
            case .object(let o)?:
                if let name = o["function"]?["name"]?.stringValue { choice = ["type": "tool", "name": .string(name)] }
            default: break
            }
            if request.parallelToolCalls == false {
                var c = choice?.objectValue ?? ["type": "auto"]
                c["disable_parallel_tool_use"] = true
                choice = .object(c)
            }
            if let choice { body["tool_choice"] = choice }
        }
        return .object(body)
    }

    static func contentBlocks(_ content: MessageContent?, messageIndex: Int) throws -> [JSONValue] {
        switch content {
        case nil: return []
        case .text(let s)?: return s.isEmpty ? [] : [["type": "text", "text": .string(s)]]
        case .parts(let parts)?:
            return try parts.enumerated().map { j, part in
                switch part.type {
                case "text":
                    return ["type": "text", "text": .string(part.text ?? "")]
                case "image_url":
                    guard let url = ChatContent.imageURL(of: part) else {
                        throw SluiceError(.missingParameter, "An image part needs image_url.url", param: "messages[\(messageIndex)].content[\(j)].image_url")
                    }
                    if let inline = ChatContent.dataURL(url) {
                        return ["type": "image", "source": ["type": "base64", "media_type": .string(inline.mediaType), "data": .string(inline.data)]]
                    }
                    return ["type": "image", "source": ["type": "url", "url": .string(url)]]
                default:
                    throw SluiceError(
                        .unsupported, "Content parts of type '\(part.type)' cannot be sent to an Anthropic model",
                        param: "messages[\(messageIndex)].content[\(j)].type")
                }
            }
        }
    }

    /// OpenAI's finish reason for an Anthropic stop reason.
    static func finishReason(_ stopReason: String?) -> String? {
        switch stopReason {
        case nil: nil
        case "end_turn", "stop_sequence", "pause_turn": "stop"
        case "max_tokens": "length"
        case "tool_use": "tool_calls"
        case "refusal": "content_filter"
        default: "stop"
        }
    }

    static func usage(_ u: JSONValue?) -> Usage {
        let input = (u?["input_tokens"]?.intValue ?? 0) + (u?["cache_read_input_tokens"]?.intValue ?? 0)
            + (u?["cache_creation_input_tokens"]?.intValue ?? 0)
        return Usage(promptTokens: input, completionTokens: (u?["output_tokens"]?.intValue ?? 0))
    }

    /// The chat completion for a Messages API response.
    public static func completion(from message: JSONValue, created: Int) throws -> ChatCompletion {
        guard message["type"]?.stringValue == "message", let blocks = message["content"]?.arrayValue else {
            throw SluiceError(.upstreamBadResponse, "Anthropic returned a response that is not a message")
        }
        var text = ""
        var calls: [ToolCall] = []
        for block in blocks {
            switch block["type"]?.stringValue {
            case "text": text += block["text"]?.stringValue ?? ""
            case "tool_use":
                calls.append(
                    ToolCall(
                        id: block["id"]?.stringValue ?? "", name: block["name"]?.stringValue ?? "",
                        arguments: (block["input"] ?? .object([:])).compactJSON))
            default: break
            }
        }
        let msg = AssistantMessage(content: calls.isEmpty || !text.isEmpty ? text : nil, toolCalls: calls.isEmpty ? nil : calls)
        return ChatCompletion(
            id: message["id"]?.stringValue ?? "msg",
            created: created,
            model: message["model"]?.stringValue ?? "",
            choices: [.init(index: 0, message: msg, finishReason: finishReason(message["stop_reason"]?.stringValue) ?? "stop")],
            usage: usage(message["usage"]))
    }

    /// Turns Anthropic stream events into chat chunks; one per stream.
    public struct StreamState: SSEStreamTranslation {
        var id = "msg"
        var model = ""
        let created: Int
        var inputUsage: JSONValue?
        var outputTokens = 0
        // Anthropic numbers all content blocks; OpenAI numbers tool calls only.
        var toolIndexForBlock: [Int: Int] = [:]
        var finished = false

        public init(created: Int) { self.created = created }

        func chunk(_ delta: ChatCompletionChunk.Delta, finish: String? = nil) -> ChatCompletionChunk {
            ChatCompletionChunk(id: id, created: created, model: model, choices: [.init(index: 0, delta: delta, finishReason: finish)])
        }

        var isComplete: Bool { finished }

        /// The body ended before `message_stop`.
        func endOfBody(provider: String) throws -> [ChatCompletionChunk] {
            throw SluiceError(.upstreamError, "Upstream '\(provider)' ended the stream before message_stop")
        }

        /// The chunks for one event (often none); `finished` turns true at `message_stop`.
        public mutating func chunks(event: String?, data: JSONValue) throws -> [ChatCompletionChunk] {
            let type = data["type"]?.stringValue ?? event
            switch type {
            case "message_start":
                id = data["message"]?["id"]?.stringValue ?? id
                model = data["message"]?["model"]?.stringValue ?? model
                inputUsage = data["message"]?["usage"]
                outputTokens = (inputUsage?["output_tokens"]?.intValue ?? 0)
                return [chunk(.init(role: "assistant", content: ""))]
            case "content_block_start":
                let block = data["content_block"]
                guard block?["type"]?.stringValue == "tool_use" else { return [] }
                let blockIndex = (data["index"]?.intValue ?? 0)
                let toolIndex = toolIndexForBlock.count
                toolIndexForBlock[blockIndex] = toolIndex
                return [
                    chunk(
                        .init(toolCalls: [
                            .init(
                                index: toolIndex, id: block?["id"]?.stringValue, type: "function",
                                function: .init(name: block?["name"]?.stringValue, arguments: ""))
                        ]))
                ]
            case "content_block_delta":
                let delta = data["delta"]
                switch delta?["type"]?.stringValue {
                case "text_delta":
                    return [chunk(.init(content: delta?["text"]?.stringValue ?? ""))]
                case "input_json_delta":
                    let blockIndex = (data["index"]?.intValue ?? 0)
                    let toolIndex = toolIndexForBlock[blockIndex] ?? 0
                    return [chunk(.init(toolCalls: [.init(index: toolIndex, function: .init(arguments: delta?["partial_json"]?.stringValue ?? ""))]))]
                default:
                    return []
                }
            case "message_delta":
                if let out = data["usage"]?["output_tokens"]?.intValue { outputTokens = out }
                let reason = AnthropicTranslator.finishReason(data["delta"]?["stop_reason"]?.stringValue)
                return reason.map { [chunk(.init(), finish: $0)] } ?? []
            case "message_stop":
                finished = true
                var usage = AnthropicTranslator.usage(inputUsage)
                usage = Usage(promptTokens: usage.promptTokens, completionTokens: outputTokens)
                return [ChatCompletionChunk(id: id, created: created, model: model, choices: [], usage: usage)]
            case "error":
                let message = data["error"]?["message"]?.stringValue ?? "unknown error"
                let kind = data["error"]?["type"]?.stringValue ?? "error"
                throw SluiceError(.upstreamError, "Anthropic failed mid-stream (\(kind)): \(message)")
            default:
                return []  // ping, content_block_stop
            }
        }
    }
}
