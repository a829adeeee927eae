import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SluiceCore
import SluiceFlows
import SluiceGuardrails

/// The body of `POST /v1/flows/{name}/run`.
struct FlowRunRequest: Decodable, Sendable {
    var input: JSONValue?
    var version: Int?
    var user: String?
    var stream: Bool?
    var conversationID: String?
    /// A model entry or alias to run on instead of the flow's (the key's allow-list applies).
    var model: String?

    enum CodingKeys: String, CodingKey {
        case input, version, user, stream, model
        case conversationID = "conversation_id"
    }
}

/// What a flow run answers (and, streamed, its last event).
struct FlowRunResult: Sendable {
    var id: String
    var flow: String
    var version: Int
    /// The JSON object when the flow has an output schema, else the text.
    var output: JSONValue
    var usage: Usage?
    var costUSD: Double
    var conversationID: String?
    /// The `[n]` marks of an answer over retrieved passages.
    var citations: [Citation]?
    var grounding: GroundingOutcome?

    /// The answer's JSON, written directly (no Foundation encoder on the request path).
    func bytes() throws -> ByteBuffer {
        var o: [String: JSONValue] = [
            "id": .string(id), "object": "flow.run", "flow": .string(flow), "version": .int(version), "output": output, "cost_usd": .double(costUSD),
        ]
        if let conversationID { o["conversation_id"] = .string(conversationID) }
        if let citations {
            o["citations"] = .array(
                citations.map { .object(["n": .int($0.n), "file_id": .string($0.fileID), "filename": .string($0.filename), "quote": .string($0.quote)]) })
        }
        if let grounding {
            o["grounding"] = .object([
                "score": .double((grounding.score * 1000).rounded() / 1000), "unsupported": .array(grounding.unsupported.map(JSONValue.string)),
                "retried": .bool(grounding.retried),
            ])
        }
        if let usage {
            o["usage"] = .object([
                "prompt_tokens": .int(usage.promptTokens), "completion_tokens": .int(usage.completionTokens), "total_tokens": .int(usage.totalTokens),
            ])
        }
        var out = ByteBuffer()
        try JSONWriter.write(.object(o), to: &out)
        return out
    }
}

/// One streamed piece of a run's output.
struct FlowRunDelta: Encodable, Sendable {
    var object = "flow.run.delta"
    var delta: String
}

extension OpenAIRoutes {
    /// `POST /v1/flows/{name}/run`: structured variables in, the flow's output out, through the
    /// same pipeline as every chat request.
    func runFlow(_ request: Request, name: String, context: SluiceRequestContext) async throws -> Response {
        let inference = makeContext(request, context, endpoint: "flows.run")
        let run: FlowRunRequest
        do {
            run = try await body.decode(FlowRunRequest.self, from: request)
            if let version = run.version, version < 1 {
                throw SluiceError(.invalidValue, "version must be 1 or more, got \(version).", param: "version")
            }
            if let model = run.model, model.isEmpty || model.hasPrefix("flow:") {
                throw SluiceError(.invalidValue, "model must name a model entry or alias.", param: "model")
            }
            guard let input = run.input else { throw SluiceError(.missingParameter, "A flow run needs an input object.", param: "input") }
            guard case .object = input else {
                throw SluiceError(.invalidType, "input must be a JSON object, got \(input.typeName).", param: "input")
            }
        } catch {
            recorder.finish(inference, model: "flow:\(name)", stream: false, outcome: .failed(error))
            throw error
        }
        var base = ChatCompletionRequest(model: "flow:\(name)", messages: [])
        base.user = run.user
        base.stream = run.stream == true ? true : nil
        var inferenceRequest = InferenceRequest(chat: base)
        var flowRun = FlowRun(name: name, version: run.version, input: run.input ?? .object([:]))
        flowRun.model = run.model
        inferenceRequest.flow = flowRun
        inferenceRequest.conversation = run.conversationID
        let deadline = NIODeadline.now() + requestTimeout
        let response = try await self.run(inferenceRequest, inference: inference, deadline: deadline)
        var headers = Self.answerHeaders(inference)
        switch response {
        case .embeddings:
            throw SluiceError(.internalError, "A flow answered with embeddings.")
        case .completion(let result):
            // Read from the upstream's bytes without decoding the completion, when unchanged.
            let text = try result.answerText().first?.content ?? ""
            var answer = try Self.flowResult(text, inference: inference, usage: result.usage)
            answer.conversationID = run.conversationID
            headers[.contentType] = "application/json"
            if let cost = inference.ledger.settlement?.costUSD { headers[.sluiceCost] = Self.usd(cost) }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: try answer.bytes()))
        case .stream(let stream):
            return eventStream(headers: headers, inference: inference, context: context, deadline: deadline) { writer in
                var text = ""
                var usage: Usage?
                for try await event in stream {
                    if let u = event.summary.usage { usage = u }
                    guard let delta = try event.firstDeltaContent(), !delta.isEmpty else { continue }
                    text += delta
                    try await writer.write(SSEEncoder.event(try JSONCoding.encode(FlowRunDelta(delta: delta))))
                }
                // The record stage settled the run when the stream ended: its cost is final.
                var answer = try Self.flowResult(text, inference: inference, usage: usage)
                answer.conversationID = run.conversationID
                try await writer.write(SSEEncoder.event(try answer.bytes()))
            }
        }
    }

    /// The run's answer: the output parsed as JSON when the flow has an output schema (the
    /// guardrail stage has checked it), else the text.
    static func flowResult(_ text: String, inference: InferenceContext, usage: Usage?) throws -> FlowRunResult {
        let flow = inference.facts[\.flow]
        var output = JSONValue.string(text)
        if flow.structuredOutput {
            guard let parsed = Array(JSONSchemaValidator.stripCodeFence(text).utf8).withUnsafeBytes({ JSONParser.parse($0) }) else {
                throw SluiceError(.schemaValidationFailed, "The flow's answer is not JSON.")
            }
            output = parsed
        }
        let settlement = inference.ledger.settlement
        var result = FlowRunResult(
            id: inference.requestID, flow: flow.name ?? "", version: flow.version ?? 0, output: output, usage: settlement?.usage ?? usage,
            costUSD: settlement?.costUSD ?? 0)
        if flow.retrieved {
            result.citations = Citations.extract(text, passages: flow.passages)
            result.grounding = flow.grounding
        }
        return result
    }
}
