import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SluiceCore

/// Chat completions from a llama.cpp server that Sluice runs itself (`kind: llama-server`).
/// With `chat_format: gemma` Sluice renders the conversation in Gemma's turn format and calls
/// the server's `/v1/completions`, stopping at the end-of-turn marker; with `server` it
/// forwards to `/v1/chat/completions` and the model file's own template.
public struct LlamaServerProvider: ChatProvider {
    public let name: String
    public let supervisor: LlamaServerSupervisor
    let config: LlamaServerProviderConfig

    public init(name: String, config: LlamaServerProviderConfig, supervisor: LlamaServerSupervisor) {
        self.name = name
        self.config = config
        self.supervisor = supervisor
    }

    public func complete(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatResult {
        let (path, body) = try upstreamRequest(request, stream: false)
        let bytes = try await withDeadline(.now() + .milliseconds(Int64(config.timeouts.totalMs)), timeoutError: timeoutError) {
            try await withServer { instance in
                try await transport(instance).post(path, body: body, maxBodyBytes: 64 << 20, context: context)
            }
        }
        do {
            switch config.chatFormat {
            case .server: return try ChatResult(encoded: bytes)
            case .gemma: return ChatResult(completion: try LlamaCompletionTranslator.chatCompletion(from: bytes, model: request.model))
            }
        } catch {
            throw SluiceError(.upstreamBadResponse, "Local model server '\(name)' returned an answer Sluice cannot read: \(error)")
        }
    }

    public func stream(_ request: ChatCompletionRequest, context: InferenceContext) async throws -> ChatStream {
        let (path, body) = try upstreamRequest(request, stream: true)
        let deadline = ContinuousClock.now + .milliseconds(config.timeouts.totalMs)
        let (response, instance) = try await withServer { instance in
            (try await transport(instance).postStreaming(path, body: body, maxBodyBytes: 256 << 20, context: context), instance)
        }
        let events = ServerDeathAware(base: SSEEventSequence(response), process: instance.process, provider: name)
        switch config.chatFormat {
        case .server:
            return ChatStream(ChatEventSequence(events: events, provider: name, timeouts: config.timeouts, deadline: deadline))
        case .gemma:
            let chat = ChatEventSequence(
                events: LlamaCompletionTranslator.ChunkSequence(events: events, model: request.model), provider: name,
                timeouts: config.timeouts, deadline: deadline)
            return ChatStream(chat)
        }
    }

    /// Runs one exchange with the healthy server (waiting up to `connect_ms` while it restarts).
    /// If the server died during the exchange, it is tried once more on the restarted server:
    /// nothing has reached the client yet (a stream is handed over only after its head), and a
    /// completion has no side effect that repeating could double.
    private func withServer<T>(_ body: (LlamaServerSupervisor.Instance) async throws -> T) async throws -> T {
        let wait = Duration.milliseconds(config.timeouts.connectMs)
        var instance = try await supervisor.instance(waitingUpTo: wait)
        var retried = false
        while true {
            do {
                return try await body(instance)
            } catch {
                guard instance.process.hasExited else { throw UpstreamError.fromTransport(error, provider: name, timeouts: config.timeouts) }
                supervisor.reportUnreachable(instance)
                guard !retried else {
                    throw SluiceError(
                        .upstreamUnavailable, "Local model server '\(name)' died during the request; it is being restarted, retry shortly.",
                        retryAfter: 1)
                }
                retried = true
                instance = try await supervisor.instance(waitingUpTo: wait)
            }
        }
    }

    public func checkHealth() async -> ProviderHealth {
        supervisor.health()
    }

    private func upstreamRequest(_ request: ChatCompletionRequest, stream: Bool) throws -> (String, ByteBuffer) {
        switch config.chatFormat {
        case .gemma:
            return (
                "/v1/completions",
                try LlamaCompletionTranslator.completionRequest(from: request, stream: stream, defaultMaxTokens: config.defaultMaxTokens)
            )
        case .server:
            var request = request
            if request.outputTokenLimit == nil { request.maxTokens = config.defaultMaxTokens }
            request.stream = stream ? true : nil
            request.streamOptions = stream ? StreamOptions(includeUsage: true) : nil
            return ("/v1/chat/completions", try request.jsonBytes())
        }
    }

    /// The running server's pool as a transport (it changes when the server restarts).
    private func transport(_ instance: LlamaServerSupervisor.Instance) -> PooledTransport {
        var headers = HTTPHeaders()
        headers.add(name: "host", value: "127.0.0.1:\(instance.port)")
        headers.add(name: "content-type", value: "application/json")
        return PooledTransport(pool: instance.pool, basePath: "", headers: headers, provider: name, timeouts: config.timeouts, health: nil)
    }

    private func timeoutError() -> SluiceError {
        SluiceError(.upstreamTimeout, "Local model server '\(name)' did not finish within \(config.timeouts.totalMs) ms")
    }
}

/// A stream from the local server whose failure, when the server died mid-stream, says so.
struct ServerDeathAware<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == SSEEvent {
    typealias Element = SSEEvent
    let base: Base
    let process: ChildProcess
    let provider: String

    func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator(), owner: self) }

    struct Iterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let owner: ServerDeathAware

        mutating func next() async throws -> SSEEvent? {
            do {
                return try await base.next(isolation: #isolation)
            } catch {
                guard owner.process.hasExited else { throw error }
                throw SluiceError(.upstreamError, "Local model server '\(owner.provider)' died mid-stream; it is being restarted.")
            }
        }
    }
}
