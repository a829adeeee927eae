import Foundation
import Logging
import NIOCore
import SluiceBatch
import SluiceCore

/// Runs a batch line through the pipeline as the batch's key, at low priority, priced at
/// `batch.price_multiplier`, under the line's stable request id (endpoint `batch`: the audit
/// row names the batch in its id).
struct PipelineBatchExecutor: BatchExecutor {
    let pipeline: Pipeline
    let directory: KeyDirectory?
    let priceMultiplier: Double
    let requestTimeout: Duration
    let logger: Logger

    func run(_ batch: BatchRecord, _ line: BatchLine, requestID: String) async -> BatchExecution {
        var context = InferenceContext(
            requestID: requestID, endpoint: "batch", logger: logger, receivedAtUnix: Date().timeIntervalSince1970, costMultiplier: priceMultiplier)
        context.deadline = .now + requestTimeout
        if let directory {
            switch directory.principal(keyID: batch.keyID) {
            case .success(let principal):
                // Batch work yields to live traffic at every capped deployment.
                var key = principal.key
                key.priority = .low
                context.principal = Principal(key: key, team: principal.team)
            case .failure(let error):
                return .answered(statusCode: error.httpStatus, body: Self.body(error))
            }
        }
        do {
            guard let body = Array(line.body.utf8).withUnsafeBytes({ JSONParser.parse($0) }) else {
                throw SluiceError(.invalidJSON, "The line's body is not JSON.")
            }
            var request: InferenceRequest
            if batch.endpoint == "/v1/embeddings" {
                let embeddings = try JSONValueDecoder.decode(EmbeddingsRequest.self, from: body)
                try RequestValidation.validate(embeddings)
                request = InferenceRequest(embeddings: embeddings)
            } else if batch.endpoint.hasPrefix("/v1/flows/") {
                let name = String(batch.endpoint.dropFirst("/v1/flows/".count).dropLast("/run".count))
                var run = FlowRun(name: name, version: body["version"]?.intValue, input: body["input"] ?? .object([:]))
                run.model = body["model"]?.stringValue
                request = InferenceRequest(chat: ChatCompletionRequest(model: "flow:\(name)", messages: []))
                request.flow = run
            } else {
                var chat = try ChatCompletionRequest(parsed: body) ?? JSONValueDecoder.decode(ChatCompletionRequest.self, from: body)
                chat.stream = nil
                try RequestValidation.validate(chat)
                request = InferenceRequest(chat: chat)
            }
            let finalRequest = request
            let finalContext = context
            let limit = requestTimeout
            let response = try await withTimeLimit(limit, timeoutError: { SluiceError(.upstreamTimeout, "The request took longer than \(limit).") }) {
                try await pipeline.run(finalRequest, context: finalContext)
            }
            switch response {
            case .completion(let result):
                if batch.endpoint.hasPrefix("/v1/flows/") {
                    let text = try result.answerText().first?.content ?? ""
                    return .answered(statusCode: 200, body: Self.parse(try OpenAIRoutes.flowResult(text, inference: context, usage: result.usage).bytes()))
                }
                return .answered(statusCode: 200, body: Self.parse(try result.bytes()))
            case .embeddings(let e):
                return .answered(statusCode: 200, body: Self.parse(try JSONCoding.encode(e)))
            case .stream:
                return .answered(statusCode: 500, body: Self.body(SluiceError(.internalError, "A batch line answered with a stream.")))
            }
        } catch let error as SluiceError {
            return Self.classify(error)
        } catch let error as DecodingError {
            return Self.classify(SluiceError.fromDecoding(error))
        } catch {
            return .retryable(statusCode: 500, body: Self.body(SluiceError(.internalError, "\(error)")))
        }
    }

    /// Upstream trouble is tried again; Sluice's own limits and budgets wait; the rest is the answer.
    static func classify(_ error: SluiceError) -> BatchExecution {
        switch error.code {
        case .rateLimited, .insufficientQuota:
            return .paused(statusCode: error.httpStatus, body: body(error))
        case .upstreamRateLimited, .upstreamError, .upstreamBadResponse, .upstreamUnavailable, .upstreamTimeout, .shuttingDown:
            return .retryable(statusCode: error.httpStatus, body: body(error))
        default:
            return .answered(statusCode: error.httpStatus, body: body(error))
        }
    }

    static func body(_ error: SluiceError) -> JSONValue {
        (try? JSONCoding.encode(error.body)).map(parse) ?? .object(["error": .object(["message": .string(error.message)])])
    }

    static func parse(_ buffer: ByteBuffer) -> JSONValue {
        JSONParser.parse(buffer) ?? .string(String(buffer: buffer))
    }
}

/// Batch input and output files in the files store, and the keys' model allow-lists.
struct StoredBatchFiles: BatchFiles {
    let store: any RetrievalStore
    let directory: KeyDirectory?

    func input(id: String, owner: String) async throws -> String? {
        guard let file = try await store.file(id: id), file.owner == owner, file.purpose == .batch, let bytes = try await store.fileContent(id: id) else {
            return nil
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func write(id: String, owner: String, filename: String, lines: [String]) async throws -> String {
        let bytes = Array((lines.joined(separator: "\n") + "\n").utf8)
        // Written again by a finalizer that took over: the same id, replaced.
        if try await store.file(id: id) != nil { _ = try await store.deleteFile(id: id) }
        try await store.insertFile(
            StoredFile(id: id, owner: owner, filename: filename, purpose: .batchOutput, bytes: bytes.count, createdAt: Date().timeIntervalSince1970),
            content: bytes)
        return id
    }

    func allows(keyID: String, model: String) async -> Bool {
        guard let directory else { return true }
        guard case .success(let principal) = directory.principal(keyID: keyID) else { return false }
        return principal.key.allows(model: model)
    }
}
