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
    /// This message's JSON as `JSONCoding.encode` writes it.
    func writeJSON(to out: inout ByteBuffer) throws {
        var object = ObjectWriter(&out)
        switch content {
        case .none: break
        case .text(let s): object.string("content", s, &out)
        case .parts(let parts): try object.value("content", .array(parts.map(\.raw)), &out)
        }
        object.string("name", name, &out)
        object.string("refusal", refusal, &out)
        object.string("role", role.rawValue, &out)
        object.string("tool_call_id", toolCallId, &out)
        if let toolCalls {
            object.key("tool_calls", &out)
            writeArray(toolCalls, &out) { call, out in
                var c = ObjectWriter(&out)
                c.key("function", &out)
                var f = ObjectWriter(&out)
                f.string("arguments", call.function.arguments, &out)
                f.string("name", call.function.name, &out)
                f.finish(&out)
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

    mutating func value(_ name: StaticString, _ value: JSONValue, _ out: inout ByteBuffer) throws {
        key(name, &out)
        try JSONWriter.write(value, to: &out)
    }

    func finish(_ out: inout ByteBuffer) {
        out.writeInteger(UInt8(ascii: "}"))
    }
}
