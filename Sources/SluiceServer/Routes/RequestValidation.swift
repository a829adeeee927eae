import SluiceCore
import SluiceObservability

/// Checks what decoding cannot: ranges, empty lists, combinations OpenAI rejects.
enum RequestValidation {
    static func validate(_ r: ChatCompletionRequest) throws {
        if r.model.isEmpty { throw SluiceError(.invalidValue, "'model' must not be empty.", param: "model") }
        if r.messages.isEmpty { throw SluiceError(.invalidValue, "'messages' must contain at least one message.", param: "messages") }
        for (i, m) in r.messages.enumerated() {
            if m.role == .tool && m.toolCallId == nil {
                throw SluiceError(.missingParameter, "Messages with role 'tool' need 'tool_call_id'.", param: "messages[\(i)].tool_call_id")
            }
            // OpenAI's spec lets assistant and (legacy) function messages carry null content.
            if m.content == nil && m.role != .assistant && m.role != .function {
                throw SluiceError(.missingParameter, "Messages with role '\(m.role.rawValue)' need 'content'.", param: "messages[\(i)].content")
            }
        }
        let maxOutputTokens = 100_000_000
        try range(r.temperature, 0...2, "temperature")
        try range(r.topP, 0...1, "top_p")
        try range(r.presencePenalty, -2...2, "presence_penalty")
        try range(r.frequencyPenalty, -2...2, "frequency_penalty")
        // An upper bound too: token arithmetic (reservations, budgets) must never overflow.
        if let n = r.maxTokens, !(1...maxOutputTokens).contains(n) {
            throw SluiceError(.invalidValue, "'max_tokens' must be from 1 to \(maxOutputTokens).", param: "max_tokens")
        }
        if let n = r.maxCompletionTokens, !(1...maxOutputTokens).contains(n) {
            throw SluiceError(.invalidValue, "'max_completion_tokens' must be from 1 to \(maxOutputTokens).", param: "max_completion_tokens")
        }
        if let n = r.n, n != 1 {
            throw SluiceError(.invalidValue, "Only n=1 is supported.", param: "n")
        }
        if let stop = r.stop?.values, stop.count > 4 {
            throw SluiceError(.invalidValue, "'stop' may hold at most 4 sequences.", param: "stop")
        }
        if r.streamOptions != nil && !r.isStreaming {
            throw SluiceError(.invalidValue, "'stream_options' is only allowed when 'stream' is true.", param: "stream_options")
        }
        if let format = r.responseFormat {
            switch format.type {
            case "text", "json_object": break
            case "json_schema":
                if format.jsonSchema == nil {
                    throw SluiceError(.missingParameter, "'response_format.json_schema' is required for type json_schema.", param: "response_format.json_schema")
                }
            default:
                throw SluiceError(
                    .invalidValue, "'response_format.type' must be text, json_object or json_schema.", param: "response_format.type")
            }
        }
        for (i, tool) in (r.tools ?? []).enumerated() {
            if tool.type != "function" && tool.type != "custom" {
                throw SluiceError(.invalidValue, "Tools must be of type 'function' or 'custom', got '\(tool.type)'.", param: "tools[\(i)].type")
            }
            if tool.function.name.isEmpty {
                throw SluiceError(.invalidValue, "A tool needs a name.", param: "tools[\(i)].\(tool.type).name")
            }
        }
        if let choice = r.toolChoice {
            switch choice {
            case .string("none"), .string("auto"), .string("required"): break
            case .object(let o) where o["type"] == nil || o["type"] == "function":
                guard o["function"]?["name"]?.stringValue != nil else { throw badToolChoice }
            case .object(let o) where o["type"] == "custom":
                guard o["custom"]?["name"]?.stringValue != nil else { throw badToolChoice }
            case .object(let o) where o["type"] == "allowed_tools":
                guard case .object(let allowed)? = o["allowed_tools"], case .string(let mode)? = allowed["mode"], ["auto", "required"].contains(mode),
                    case .array(let tools)? = allowed["tools"]
                else {
                    throw SluiceError(
                        .invalidValue, "'tool_choice.allowed_tools' needs 'mode' (auto or required) and a 'tools' list.", param: "tool_choice.allowed_tools")
                }
                for (i, t) in tools.enumerated() where t["function"]?["name"]?.stringValue == nil && t["custom"]?["name"]?.stringValue == nil {
                    throw SluiceError(.invalidValue, "Each allowed tool needs a function or custom name.", param: "tool_choice.allowed_tools.tools[\(i)]")
                }
            default:
                throw badToolChoice
            }
        }
    }

    static let badToolChoice = SluiceError(
        .invalidValue,
        "'tool_choice' must be none, auto, required, {\"type\":\"function\",\"function\":{\"name\":…}}, {\"type\":\"custom\",\"custom\":{\"name\":…}} or {\"type\":\"allowed_tools\",…}.",
        param: "tool_choice")

    static let maxDimensions = 8192

    static func validate(_ r: EmbeddingsRequest, maxInputs: Int = 2048) throws {
        if r.model.isEmpty { throw SluiceError(.invalidValue, "'model' must not be empty.", param: "model") }
        if r.input.count == 0 { throw SluiceError(.invalidValue, "'input' must not be empty.", param: "input") }
        if r.input.count > maxInputs {
            throw SluiceError(.invalidValue, "'input' may hold at most \(maxInputs) items.", param: "input")
        }
        if case .strings(let items) = r.input {
            for (i, item) in items.enumerated() where item.isEmpty {
                throw SluiceError(.invalidValue, "'input' items must not be empty strings.", param: items.count == 1 ? "input" : "input[\(i)]")
            }
        }
        // Bounded above too: no embedding model has more (OpenAI's largest has 3,072), and a
        // provider that builds vectors itself must not be asked for a billion floats.
        if let d = r.dimensions, !(1...maxDimensions).contains(d) {
            throw SluiceError(.invalidValue, "'dimensions' must be from 1 to \(maxDimensions).", param: "dimensions")
        }
    }

    private static func range(_ value: Double?, _ range: ClosedRange<Double>, _ name: String) throws {
        if let value, !range.contains(value) {
            throw SluiceError(.invalidValue, "'\(name)' must be between \(range.lowerBound) and \(range.upperBound).", param: name)
        }
    }
}
