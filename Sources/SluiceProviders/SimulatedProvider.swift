import Foundation
import SluiceCore
import Synchronization

/// A deterministic provider for tests and benchmarks. Its behaviour comes from its config and can
/// be scripted per request with headers:
///
/// - `x-sim-mode: fixed|echo`, `x-sim-reply: text`, `x-sim-tokens: N` — what it answers;
/// - `x-sim-replies: ["first", "second", …]` — a JSON array: the answer to a conversation with k
///   assistant turns is element k (the last one beyond), whatever the response format (repair tests);
/// - `x-sim-ttft-ms: N`, `x-sim-tps: N` — time to first token and tokens per second;
/// - `x-sim-fault: 429|500|503|hang|malformed|cut|context|content_filter`, `x-sim-retry-after: S` — injected faults;
///   `x-sim-fault-model: M` confines them to calls for upstream model `M`, `x-sim-fault-attempts: N`
///   to the request's first N upstream attempts, `x-sim-fault-rate: P` to a share P of calls.
///
/// With `tools` it calls the chosen tool (arguments generated from its JSON Schema) unless the
/// conversation already ends in a tool result; with `response_format: json_schema` it answers a
/// JSON value of that schema. Embeddings are hashed bags of words: similar texts, similar vectors.
public struct SimulatedProvider: ChatProvider, EmbeddingProvider {
    public let name: String
    let config: SimulatedProviderConfig
    let timeouts: Timeouts
    let probe: SimulationProbe?

    public init(name: String, config: SimulatedProviderConfig, timeouts: Timeouts = .init(), probe: SimulationProbe? = nil) {
        self.name = name
        self.config = config
        self.timeouts = timeouts
        self.probe = probe
    }

    /// The script for one call: the config, overridden by the request's `x-sim-*` headers.
    struct Script {
        var mode: String
        var reply: String
        var tokens: Int?
        var ttftMs: Int
        var tokensPerSecond: Double
        var fault: String?
        var retryAfter: Int
        var replies: [String]?

        init(config: SimulatedProviderConfig, headers: [String: String], upstreamModel: String = "", attempt: Int = 0) throws {
            mode = headers["x-sim-mode"] ?? config.mode
            reply = headers["x-sim-reply"] ?? config.reply
            tokens = config.tokens
            ttftMs = config.ttftMs
            tokensPerSecond = config.tokensPerSecond
            fault = headers["x-sim-fault"] ?? config.fault
            retryAfter = 1
            func number(_ header: String, max: Double) throws -> Double? {
                guard let raw = headers[header] else { return nil }
                guard let value = Double(raw), value >= 0, value <= max else {
                    throw SluiceError(
                        .invalidValue, "Header \(header) must be a number in 0...\(Int(max)), got '\(raw)'", param: header)
                }
                return value
            }
            if let raw = headers["x-sim-replies"] {
                guard let parsed = Array(raw.utf8).withUnsafeBytes({ JSONParser.parse($0) })?.arrayValue, !parsed.isEmpty,
                    let strings = Optional(parsed.compactMap(\.stringValue)), strings.count == parsed.count
                else {
                    throw SluiceError(.invalidValue, "Header x-sim-replies must be a non-empty JSON array of strings", param: "x-sim-replies")
                }
                replies = strings
            }
            if let v = try number("x-sim-tokens", max: 100_000) { tokens = Int(v) }
            if let v = try number("x-sim-ttft-ms", max: 600_000) { ttftMs = Int(v) }
            if let v = try number("x-sim-tps", max: 1_000_000) { tokensPerSecond = v }
            if let v = try number("x-sim-retry-after", max: 86_400) { retryAfter = Int(v) }
            guard ["fixed", "echo"].contains(mode) else {
                throw SluiceError(.invalidValue, "Header x-sim-mode must be fixed or echo, got '\(mode)'", param: "x-sim-mode")
            }
            if let fault, !SimulatedProviderConfig.faults.contains(fault) {
                throw SluiceError(
                    .invalidValue, "Header x-sim-fault must be one of \(SimulatedProviderConfig.faults.sorted().joined(separator: ", "))",
                    param: "x-sim-fault")
            }
            var rate = config.faultRate
            if let v = try number("x-sim-fault-rate", max: 1) { rate = v }
            if fault != nil {
                if let model = headers["x-sim-fault-model"], model != upstreamModel { fault = nil }
                if let n = try number("x-sim-fault-attempts", max: 1000), Double(attempt) >= n { fault = nil }
                if rate < 1 && Double.random(in: 0..<1) >= rate { fault = nil }
            }
        }
    }

    /// What one call answers, decided before any time passes.
    struct Answer {
        var pieces: [String]
        var toolCall: ToolCall?
        var finishReason: String
        var usage: Usage
    }

    func answer(_ request: ChatCompletionRequest, script: Script, id: String) -> Answer {
        let promptTokens = TokenEstimator.promptTokens(of: request)
        if let call = toolCall(for: request, id: id) {
            let usage = Usage(promptTokens: promptTokens, completionTokens: max(1, TokenEstimator.tokens(in: call.function.arguments)))
            return Answer(pieces: [], toolCall: call, finishReason: "tool_calls", usage: usage)
        }
        var text: String
        if let replies = script.replies {
            text = replies[min(replies.count - 1, request.messages.filter { $0.role == .assistant }.count)]
        } else if let format = request.responseFormat, format.type == "json_schema" {
            let schema = format.jsonSchema?.schema ?? .object([:])
            text = SchemaInstance.make(for: schema, hint: script.reply).compactJSON
        } else if request.responseFormat?.type == "json_object" {
            text = JSONValue.object(["reply": .string(script.reply)]).compactJSON
        } else if script.mode == "echo" {
            text = request.messages.last(where: { $0.role == .user })?.text ?? ""
            if text.isEmpty { text = script.reply }
        } else {
            text = script.reply
        }
        var pieces = Self.split(text)
        if let n = script.tokens, request.responseFormat == nil {
            let words = pieces.isEmpty ? ["token "] : pieces
            pieces = (0..<n).map { i in
                let w = words[i % words.count]
                return i == n - 1 ? w.trimmingTrailingSpace : (w.hasSuffix(" ") ? w : w + " ")
            }
        }
        var finish = "stop"
        if let stops = request.stop?.values, !stops.isEmpty {
            var joined = ""
            for (i, piece) in pieces.enumerated() {
                joined += piece
                if let hit = stops.compactMap({ joined.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
                    let kept = String(joined[..<hit.lowerBound])
                    let before = pieces[..<i].joined()
                    pieces = Array(pieces[..<i])
                    if kept.count > before.count { pieces.append(String(kept.dropFirst(before.count))) }
                    break
                }
            }
        }
        if let limit = request.outputTokenLimit, pieces.count > limit {
            pieces = Array(pieces.prefix(limit))
            finish = "length"
        }
        return Answer(pieces: pieces, toolCall: nil, finishReason: finish, usage: Usage(promptTokens: promptTokens, completionTokens: pieces.count))
    }

    /// Splits text into word-sized "tokens", each keeping its trailing space.
    static func split(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        for ch in text {
            current.append(ch)
            if ch == " " || ch == "\n" {
                out.append(current)
                current = ""
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    func toolCall(for request: ChatCompletionRequest, id: String) -> ToolCall? {
        guard let tools = request.tools, !tools.isEmpty else { return nil }
        if request.messages.last?.role == .tool { return nil }
        var chosen = tools[0]
        switch request.toolChoice {
        case .string("none"): return nil
        case .object(let o):
            if let name = o["function"]?["name"]?.stringValue ?? o["custom"]?["name"]?.stringValue, let t = tools.first(where: { $0.function.name == name }) {
                chosen = t
            }
        default: break
        }
        if chosen.custom != nil {
            // A custom tool takes free-form text, as OpenAI's custom tool calls carry it.
            var call = ToolCall(id: "call_" + id.suffix(12), name: chosen.function.name, arguments: "example")
            call.type = "custom"
            call.custom = ["name": .string(chosen.function.name), "input": "example"]
            return call
        }
        let arguments = SchemaInstance.make(for: chosen.function.parameters ?? .object([:]), hint: "example").compactJSON
        return ToolCall(id: "call_" + id.suffix(12), name: chosen.function.name, arguments: arguments)
    }

    func failIfScripted(_ script: Script, streaming: Bool) async throws {
        switch script.fault {
        case "429":
            throw SluiceError(.upstreamRateLimited, "Upstream '\(name)' is rate limiting (simulated)", retryAfter: script.retryAfter, upstreamStatus: 429)
        case "500":
            throw SluiceError(.upstreamError, "Upstream '\(name)' failed with HTTP 500 (simulated)", upstreamStatus: 500)
        case "503":
            throw SluiceError(
                .upstreamError, "Upstream '\(name)' failed with HTTP 503 (simulated)", retryAfter: script.retryAfter, upstreamStatus: 503)
        case "hang":
            try await Task.sleep(for: .milliseconds(timeouts.firstTokenMs))
            throw SluiceError(.upstreamTimeout, "Upstream '\(name)' did not answer within \(timeouts.firstTokenMs) ms")
        case "context":
            throw SluiceError(
                .contextLengthExceeded, "Upstream '\(name)': this model's maximum context length was exceeded (simulated)", param: "messages",
                upstreamStatus: 400)
        case "content_filter":
            throw SluiceError(
                .contentFiltered, "Upstream '\(name)' refused the prompt under its content policy (simulated)", upstreamStatus: 400)
        case "malformed" where !streaming:
            throw SluiceError(.upstreamBadResponse, "Upstream '\(name)' returned a response that is not a chat completion (simulated malformed JSON)")
        default:
            break
        }
    }

    public func complete(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatResult {
        let script = try Script(config: config, headers: context.headers, upstreamModel: request.model, attempt: context.attempt)
        probe?.record(.started, requestID: context.requestID, model: request.model)
        try await failIfScripted(script, streaming: false)
        let id = "chatcmpl-sim-" + context.requestID
        let answer = answer(request, script: script, id: id)
        var waitMs = Double(script.ttftMs)
        if script.tokensPerSecond > 0 { waitMs += Double(answer.pieces.count) / script.tokensPerSecond * 1000 }
        if waitMs > 0 { try await Task.sleep(for: .milliseconds(waitMs)) }
        if script.fault == "cut" {
            throw SluiceError(.upstreamError, "Upstream '\(name)' closed the connection mid-response (simulated)")
        }
        let message = AssistantMessage(content: answer.toolCall == nil ? answer.pieces.joined() : nil, toolCalls: answer.toolCall.map { [$0] })
        let completion = ChatCompletion(
            id: id, created: Int(context.receivedAtUnix), model: request.model,
            choices: [.init(index: 0, message: message, finishReason: answer.finishReason)], usage: answer.usage)
        return ChatResult(completion: completion)
    }

    public func stream(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatStream {
        let script = try Script(config: config, headers: context.headers, upstreamModel: request.model, attempt: context.attempt)
        try await failIfScripted(script, streaming: true)
        let id = "chatcmpl-sim-" + context.requestID
        let answer = answer(request, script: script, id: id)
        let generator = SimulatedStream(
            id: id, model: request.model, created: Int(context.receivedAtUnix), answer: answer, script: script, provider: name,
            probe: probe, requestID: context.requestID)
        probe?.record(.started, requestID: context.requestID, model: request.model)
        return ChatStream(generator)
    }

    public func embed(_ request: EmbeddingsRequest, context: InferenceContext) async throws -> EmbeddingsResponse {
        let script = try Script(config: config, headers: context.headers, upstreamModel: request.model, attempt: context.attempt)
        try await failIfScripted(script, streaming: false)
        guard case .strings(let inputs) = request.input else {
            throw SluiceError(.unsupported, "The simulated provider embeds text input only", param: "input")
        }
        let dims = request.dimensions ?? config.embeddingDimensions
        var data: [EmbeddingsResponse.Embedding] = []
        var tokens = 0
        for (i, text) in inputs.enumerated() {
            tokens += TokenEstimator.tokens(in: text)
            data.append(.init(index: i, embedding: .float(Self.hashedEmbedding(text, dimensions: dims))))
        }
        return EmbeddingsResponse(data: data, model: request.model, usage: .init(promptTokens: tokens))
    }

    public func checkHealth() async -> ProviderHealth { .healthy }

    /// A bag of lower-cased words hashed into `dimensions` buckets (FNV-1a), L2-normalised.
    static func hashedEmbedding(_ text: String, dimensions: Int) -> [Float] {
        var v = [Float](repeating: 0, count: dimensions)
        for word in text.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }) {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for b in word.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            v[Int(h % UInt64(dimensions))] += (h >> 63) == 0 ? 1 : -1
        }
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        if norm > 0 { for i in v.indices { v[i] /= norm } }
        return v
    }
}

/// The chunks of one simulated stream, paced by the script.
struct SimulatedStream: AsyncSequence, Sendable {
    typealias Element = ChatStreamEvent
    let id: String
    let model: String
    let created: Int
    let answer: SimulatedProvider.Answer
    let script: SimulatedProvider.Script
    let provider: String
    let probe: SimulationProbe?
    let requestID: String

    func makeAsyncIterator() -> Iterator { Iterator(owner: self) }

    struct Iterator: AsyncIteratorProtocol {
        let owner: SimulatedStream
        var step = 0

        func chunk(_ delta: ChatCompletionChunk.Delta, finish: String? = nil, usage: Usage? = nil, noChoices: Bool = false) -> ChatStreamEvent {
            let choices = noChoices ? [] : [ChatCompletionChunk.Choice(index: 0, delta: delta, finishReason: finish)]
            return ChatStreamEvent(chunk: ChatCompletionChunk(id: owner.id, created: owner.created, model: owner.model, choices: choices, usage: usage))
        }

        mutating func next() async throws -> ChatStreamEvent? {
            let answer = owner.answer
            let script = owner.script
            defer { step += 1 }
            do {
                if step == 0 {
                    if script.ttftMs > 0 { try await Task.sleep(for: .milliseconds(script.ttftMs)) }
                    if let call = answer.toolCall {
                        let delta = ChatCompletionChunk.Delta(
                            role: "assistant",
                            toolCalls: [.init(index: 0, id: call.id, type: "function", function: .init(name: call.function.name, arguments: ""))])
                        return chunk(delta)
                    }
                    return chunk(.init(role: "assistant", content: ""))
                }
                let pieceIndex = step - 1
                if let call = answer.toolCall {
                    // The arguments in two fragments, as real upstreams split them.
                    let args = call.function.arguments
                    let half = args.index(args.startIndex, offsetBy: args.count / 2)
                    switch pieceIndex {
                    case 0: return chunk(.init(toolCalls: [.init(index: 0, function: .init(arguments: String(args[..<half])))]))
                    case 1: return chunk(.init(toolCalls: [.init(index: 0, function: .init(arguments: String(args[half...])))]))
                    case 2: return chunk(.init(), finish: answer.finishReason)
                    case 3: return chunk(.init(), usage: answer.usage, noChoices: true)
                    default:
                        owner.probe?.record(.finished, requestID: owner.requestID)
                        return nil
                    }
                }
                if pieceIndex < answer.pieces.count {
                    if script.fault == "cut" && pieceIndex >= answer.pieces.count / 2 {
                        throw SluiceError(.upstreamError, "Upstream '\(owner.provider)' cut the stream off midway (simulated)")
                    }
                    if script.fault == "malformed" && pieceIndex >= answer.pieces.count / 2 {
                        throw SluiceError(.upstreamBadResponse, "Upstream '\(owner.provider)' sent a stream event that is not a chat chunk (simulated)")
                    }
                    if script.tokensPerSecond > 0 && pieceIndex > 0 {
                        try await Task.sleep(for: .milliseconds(1000 / script.tokensPerSecond))
                    }
                    return chunk(.init(content: answer.pieces[pieceIndex]))
                }
                switch pieceIndex - answer.pieces.count {
                case 0: return chunk(.init(), finish: answer.finishReason)
                case 1: return chunk(.init(), usage: answer.usage, noChoices: true)
                default:
                    owner.probe?.record(.finished, requestID: owner.requestID)
                    return nil
                }
            } catch is CancellationError {
                owner.probe?.record(.cancelled, requestID: owner.requestID)
                throw CancellationError()
            }
        }
    }
}

/// Records what simulated streams went through, so tests can see an upstream being cancelled.
public final class SimulationProbe: Sendable {
    /// A moment in a call's life (`started` for whole answers too; the rest for streams).
    public enum Event: Sendable, Hashable { case started, finished, cancelled }

    private let events = Mutex<[(String, Event, ContinuousClock.Instant)]>([])
    private let startsByModel = Mutex<[String: Int]>([:])

    public init() {}

    func record(_ event: Event, requestID: String, model: String? = nil) {
        events.withLock { $0.append((requestID, event, .now)) }
        if let model { startsByModel.withLock { $0[model, default: 0] += 1 } }
    }

    /// How many calls for the given upstream model have started.
    public func started(model: String) -> Int {
        startsByModel.withLock { $0[model] ?? 0 }
    }

    /// When the given event happened to the given request's stream, if it did.
    public func instant(of event: Event, requestID: String) -> ContinuousClock.Instant? {
        events.withLock { $0.first { $0.0 == requestID && $0.1 == event }?.2 }
    }

    /// How many streams have had the given event.
    public func count(_ event: Event) -> Int {
        events.withLock { $0.filter { $0.1 == event }.count }
    }
}

/// A small JSON value that satisfies a JSON Schema: what a well-behaved model would answer.
/// Numbers from the schema are clamped: a schema is client input.
enum SchemaInstance {
    static func clamped(_ value: Double?, default fallback: Int, in range: ClosedRange<Int>) -> Int {
        guard let value, value.isFinite else { return fallback }
        return Int(min(max(value.rounded(.up), Double(range.lowerBound)), Double(range.upperBound)))
    }

    static func make(for schema: JSONValue, hint: String, depth: Int = 0) -> JSONValue {
        guard depth < 8, case .object(let s) = schema else { return .string(hint) }
        if let c = s["const"] { return c }
        if let e = s["enum"]?.arrayValue, let first = e.first { return first }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let first = s[key]?.arrayValue?.first { return make(for: first, hint: hint, depth: depth + 1) }
        }
        var type = s["type"]?.stringValue
        if type == nil, case .array(let types)? = s["type"] { type = types.compactMap(\.stringValue).first { $0 != "null" } }
        if type == nil, s["properties"] != nil { type = "object" }
        switch type {
        case "object":
            var out: [String: JSONValue] = [:]
            let properties = s["properties"]?.objectValue ?? [:]
            let required = Set(s["required"]?.arrayValue?.compactMap(\.stringValue) ?? Array(properties.keys))
            for (key, sub) in properties where required.contains(key) {
                out[key] = make(for: sub, hint: key, depth: depth + 1)
            }
            return .object(out)
        case "array":
            let count = clamped(s["minItems"]?.doubleValue, default: 1, in: 1...100)
            let item = make(for: s["items"] ?? .object([:]), hint: hint, depth: depth + 1)
            return .array(Array(repeating: item, count: count))
        case "integer":
            return .int(clamped(s["minimum"]?.doubleValue, default: 1, in: -1_000_000_000...1_000_000_000))
        case "number":
            let minimum = s["minimum"]?.doubleValue ?? 1.5
            return .double(minimum.isFinite ? minimum : 1.5)
        case "boolean":
            return .bool(true)
        case "null":
            return .null
        default:
            var text = hint
            let minLength = clamped(s["minLength"]?.doubleValue, default: 0, in: 0...10_000)
            let maxLength = clamped(s["maxLength"]?.doubleValue, default: 10_000, in: 0...10_000)
            if text.count < minLength { text += String(repeating: "x", count: minLength - text.count) }
            if text.count > maxLength { text = String(text.prefix(maxLength)) }
            return .string(text)
        }
    }
}

extension String {
    fileprivate var trimmingTrailingSpace: String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
