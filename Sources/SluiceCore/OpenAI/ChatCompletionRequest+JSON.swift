import NIOCore

extension ChatCompletionRequest {
    /// The request's JSON, byte for byte what `JSONCoding.encode` gives (sorted keys), written
    /// directly: this is the body of every upstream call, and Foundation's encoder was about 5%
    /// of a proxied request's CPU. Requests with fields Sluice does not interpret (`extra`) are
    /// rare and go through `JSONCoding.encode`, which merges them into the key order.
    public func jsonBytes() throws -> ByteBuffer {
        guard extra.isEmpty else { return try JSONCoding.encode(self) }
        var out = ByteBuffer()
        out.reserveCapacity(256)
        var object = ObjectWriter(&out)
        // Keys in sorted order, as Foundation's `.sortedKeys` writes them.
        try object.double("frequency_penalty", frequencyPenalty, &out)
        if let logitBias { try object.value("logit_bias", .object(logitBias.mapValues(JSONValue.double)), &out) }
        object.bool("logprobs", logprobs, &out)
        object.int("max_completion_tokens", maxCompletionTokens, &out)
        object.int("max_tokens", maxTokens, &out)
        object.key("messages", &out)
        try writeArray(messages, &out) { message, out in try message.writeJSON(to: &out) }
        object.string("model", model, &out)
        object.int("n", n, &out)
        object.bool("parallel_tool_calls", parallelToolCalls, &out)
        try object.double("presence_penalty", presencePenalty, &out)
        if let responseFormat {
            object.key("response_format", &out)
            var format = ObjectWriter(&out)
            if let schema = responseFormat.jsonSchema {
                format.key("json_schema", &out)
                var s = ObjectWriter(&out)
                s.string("description", schema.description, &out)
                s.string("name", schema.name, &out)
                if let body = schema.schema { try s.value("schema", body, &out) }
                s.bool("strict", schema.strict, &out)
                s.finish(&out)
            }
            format.string("type", responseFormat.type, &out)
            format.finish(&out)
        }
        object.int("seed", seed, &out)
        switch stop {
        case .none: break
        case .one(let s): object.string("stop", s, &out)
        case .many(let a): try object.value("stop", .array(a.map(JSONValue.string)), &out)
        }
        object.bool("stream", stream, &out)
        if let streamOptions {
            object.key("stream_options", &out)
            var options = ObjectWriter(&out)
            options.bool("include_usage", streamOptions.includeUsage, &out)
            options.finish(&out)
        }
        try object.double("temperature", temperature, &out)
        if let toolChoice { try object.value("tool_choice", toolChoice, &out) }
        if let tools {
            object.key("tools", &out)
            try writeArray(tools, &out) { tool, out in
                var t = ObjectWriter(&out)
                if let custom = tool.custom {
                    try t.value("custom", custom, &out)
                    t.string("type", tool.type, &out)
                    t.finish(&out)
                    return
                }
                t.key("function", &out)
                var f = ObjectWriter(&out)
                f.string("description", tool.function.description, &out)
                f.string("name", tool.function.name, &out)
                if let parameters = tool.function.parameters { try f.value("parameters", parameters, &out) }
                f.bool("strict", tool.function.strict, &out)
                f.finish(&out)
                t.string("type", tool.type, &out)
                t.finish(&out)
            }
        }
        object.int("top_logprobs", topLogprobs, &out)
        try object.double("top_p", topP, &out)
        object.string("user", user, &out)
        object.finish(&out)
        return out
    }
}

extension ChatMessage {
    /// Messages as a JSON array, each as `JSONCoding.encode` writes it (the audit log's request body).
    public static func jsonArrayBytes(_ messages: [ChatMessage]) throws -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(64 + messages.count * 64)
        try writeArray(messages, &out) { message, out in try message.writeJSON(to: &out) }
        return out
    }

    /// This message's JSON as `JSONCoding.encode` writes it.
    func writeJSON(to out: inout ByteBuffer) throws {
        var object = ObjectWriter(&out)
        switch content {
        case .none: break
        case .text(let s): object.string("content", s, &out)
        case .parts(let parts): try object.value("content", .array(parts.map(\.raw)), &out)
        }
        if let functionCall {
            object.key("function_call", &out)
            var f = ObjectWriter(&out)
            f.string("arguments", functionCall.arguments, &out)
            f.string("name", functionCall.name, &out)
            f.finish(&out)
        }
        object.string("name", name, &out)
        object.string("refusal", refusal, &out)
        object.string("role", role.rawValue, &out)
        object.string("tool_call_id", toolCallId, &out)
        if let toolCalls {
            object.key("tool_calls", &out)
            try writeArray(toolCalls, &out) { call, out in
                var c = ObjectWriter(&out)
                if let custom = call.custom {
                    try c.value("custom", custom, &out)
                } else {
                    c.key("function", &out)
                    var f = ObjectWriter(&out)
                    f.string("arguments", call.function.arguments, &out)
                    f.string("name", call.function.name, &out)
                    f.finish(&out)
                }
                c.string("id", call.id, &out)
                c.string("type", call.type, &out)
                c.finish(&out)
            }
        }
        object.finish(&out)
    }
}

/// Writes a JSON array, each element by `element`.
func writeArray<C: Collection>(
    _ items: C, _ out: inout ByteBuffer, _ element: (C.Element, inout ByteBuffer) throws -> Void
) rethrows {
    out.writeInteger(UInt8(ascii: "["))
    var first = true
    for item in items {
        if !first { out.writeInteger(UInt8(ascii: ",")) }
        first = false
        try element(item, &out)
    }
    out.writeInteger(UInt8(ascii: "]"))
}

/// Writes one JSON object's members into a buffer passed to each call (so nested objects never
/// share, and copy, a buffer); absent optionals are skipped.
struct ObjectWriter {
    private var first = true

    init(_ out: inout ByteBuffer) {
        out.writeInteger(UInt8(ascii: "{"))
    }

    mutating func key(_ name: StaticString, _ out: inout ByteBuffer) {
        if !first { out.writeInteger(UInt8(ascii: ",")) }
        first = false
        out.writeInteger(UInt8(ascii: "\""))
        out.writeStaticString(name)
        out.writeStaticString("\":")
    }

    mutating func string(_ name: StaticString, _ value: String?, _ out: inout ByteBuffer) {
        guard let value else { return }
        key(name, &out)
        JSONWriter.writeString(value, to: &out)
    }

    mutating func int(_ name: StaticString, _ value: Int?, _ out: inout ByteBuffer) {
        guard let value else { return }
        key(name, &out)
        out.writeString(String(value))
    }

    mutating func bool(_ name: StaticString, _ value: Bool?, _ out: inout ByteBuffer) {
        guard let value else { return }
        key(name, &out)
        value ? out.writeStaticString("true") : out.writeStaticString("false")
    }

    mutating func double(_ name: StaticString, _ value: Double?, _ out: inout ByteBuffer) throws {
        guard let value else { return }
        key(name, &out)
        try JSONWriter.writeDouble(value, to: &out)
    }

    /// A number that is written as null when it is not finite (NaN or infinite), instead of failing.
    mutating func finiteDouble(_ name: StaticString, _ value: Double?, _ out: inout ByteBuffer) {
        guard let value else { return }
        key(name, &out)
        if value.isFinite { try? JSONWriter.writeDouble(value, to: &out) } else { out.writeStaticString("null") }
    }

    mutating func value(_ name: StaticString, _ value: JSONValue, _ out: inout ByteBuffer) throws {
        key(name, &out)
        try JSONWriter.write(value, to: &out)
    }

    func finish(_ out: inout ByteBuffer) {
        out.writeInteger(UInt8(ascii: "}"))
    }
}

extension ChatCompletionRequest {
    /// The request read straight from a parsed body, or nil for anything out of the ordinary
    /// (a wrong type, an unknown role, ...), which the caller then decodes through `Codable`, the
    /// one definition of the wire format and of its errors. The generic `Decoder` machinery was
    /// about 5% of a proxied request's CPU; tests check this reader against `Codable` on varied
    /// bodies.
    public init?(parsed value: JSONValue) {
        guard case .object(let members) = value,
            case .string(let model)? = members["model"],
            case .array(let rawMessages)? = members["messages"]
        else { return nil }
        var messages: [ChatMessage] = []
        messages.reserveCapacity(rawMessages.count)
        for raw in rawMessages {
            guard let message = ChatMessage(parsed: raw) else { return nil }
            messages.append(message)
        }
        self.init(model: model, messages: messages)
        var extra: [String: JSONValue] = [:]
        for (key, member) in members {
            // `decodeIfPresent` reads null as absent.
            if case .null = member, Self.knownKeys.contains(key) { continue }
            switch key {
            case "model", "messages": continue
            case "stream": guard let v = member.exactBool else { return nil }; stream = v
            case "max_tokens": guard let v = member.exactInt else { return nil }; maxTokens = v
            case "max_completion_tokens": guard let v = member.exactInt else { return nil }; maxCompletionTokens = v
            case "temperature": guard let v = member.doubleValue else { return nil }; temperature = v
            case "top_p": guard let v = member.doubleValue else { return nil }; topP = v
            case "seed": guard let v = member.exactInt else { return nil }; seed = v
            case "user": guard case .string(let v) = member else { return nil }; user = v
            case "n": guard let v = member.exactInt else { return nil }; n = v
            case "presence_penalty": guard let v = member.doubleValue else { return nil }; presencePenalty = v
            case "frequency_penalty": guard let v = member.doubleValue else { return nil }; frequencyPenalty = v
            case "logprobs": guard let v = member.exactBool else { return nil }; logprobs = v
            case "top_logprobs": guard let v = member.exactInt else { return nil }; topLogprobs = v
            case "parallel_tool_calls": guard let v = member.exactBool else { return nil }; parallelToolCalls = v
            case "tool_choice": toolChoice = member
            case "stop":
                switch member {
                case .string(let s): stop = .one(s)
                case .array(let items):
                    var values: [String] = []
                    for item in items {
                        guard case .string(let s) = item else { return nil }
                        values.append(s)
                    }
                    stop = .many(values)
                default: return nil
                }
            // The nested, rarer shapes go through their `Codable` conformances.
            case "stream_options": guard let v = try? JSONValueDecoder.decode(StreamOptions.self, from: member) else { return nil }; streamOptions = v
            case "tools": guard let v = try? JSONValueDecoder.decode([Tool].self, from: member) else { return nil }; tools = v
            case "response_format":
                guard let v = try? JSONValueDecoder.decode(ResponseFormat.self, from: member) else { return nil }
                responseFormat = v
            case "logit_bias": guard let v = try? JSONValueDecoder.decode([String: Double].self, from: member) else { return nil }; logitBias = v
            default: extra[key] = member
            }
        }
        self.extra = extra
    }
}

extension ChatMessage {
    /// One message read straight from parsed JSON, or nil where `Codable` must decide.
    init?(parsed value: JSONValue) {
        guard case .object(let members) = value, case .string(let roleName)? = members["role"],
            let role = Role(rawValue: roleName)
        else { return nil }
        self.init(role: role, content: nil)
        for (key, member) in members {
            if case .null = member { continue }
            switch key {
            case "content":
                switch member {
                case .string(let s): content = .text(s)
                case .array(let items):
                    var parts: [ContentPart] = []
                    for item in items {
                        guard case .string(let type)? = item["type"] else { return nil }
                        let text = item["text"]?.stringValue
                        if type == "text" && text == nil { return nil }
                        parts.append(ContentPart(type: type, text: text, raw: item))
                    }
                    content = .parts(parts)
                default: return nil
                }
            case "name": guard case .string(let s) = member else { return nil }; name = s
            case "tool_call_id": guard case .string(let s) = member else { return nil }; toolCallId = s
            case "refusal": guard case .string(let s) = member else { return nil }; refusal = s
            case "tool_calls":
                guard case .array(let items) = member else { return nil }
                var calls: [ToolCall] = []
                for item in items {
                    guard case .string(let id)? = item["id"], case .string(let type)? = item["type"] else { return nil }
                    if type == "custom" {
                        guard case .string(let name)? = item["custom"]?["name"], case .string(let input)? = item["custom"]?["input"] else { return nil }
                        var call = ToolCall(id: id, name: name, arguments: input)
                        call.type = type
                        call.custom = item["custom"]
                        calls.append(call)
                        continue
                    }
                    guard case .string(let fn)? = item["function"]?["name"], case .string(let args)? = item["function"]?["arguments"]
                    else { return nil }
                    var call = ToolCall(id: id, name: fn, arguments: args)
                    call.type = type
                    calls.append(call)
                }
                toolCalls = calls
            case "function_call":
                guard case .string(let fn)? = member["name"], case .string(let args)? = member["arguments"] else { return nil }
                functionCall = FunctionCall(name: fn, arguments: args)
            default: continue
            }
        }
    }
}

extension JSONValue {
    /// A boolean exactly as `Codable` accepts one.
    fileprivate var exactBool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// An integer exactly as `Codable` accepts one (a whole number that fits).
    fileprivate var exactInt: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.isFinite && d == d.rounded(): return Int(exactly: d)
        default: return nil
        }
    }
}
