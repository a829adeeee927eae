import Dispatch
import Logging
import ServiceLifecycle
import SluiceCore
import Synchronization

/// Writes audit-log rows in the background: `submit` never waits; rows gather for
/// `flush_interval_ms` after the first one and are written in transactions of up to
/// `batch_size`; the queue is bounded, and what does not fit is dropped and counted (the last
/// resort). On graceful shutdown everything queued is flushed before `run` returns.
public final class RequestLogWriter: Service, RequestRecordSink {
    struct State {
        var queue: [RequestRecord] = []
        var dropped = 0
        var written = 0
        var failed = 0
    }

    let store: any RequestLogStore
    let capacity: Int
    let batchSize: Int
    let flushInterval: Duration
    let logger: Logger
    /// Applied to each batch before it is written, off the request path (bodies are encoded and redacted here).
    let prepare: (@Sendable (RequestRecord) -> RequestRecord)?
    private let state = Mutex(State())
    private let wake: AsyncStream<Void>
    private let wakeContinuation: AsyncStream<Void>.Continuation

    public init(store: any RequestLogStore, config: AuditLogConfig, logger: Logger, prepare: (@Sendable (RequestRecord) -> RequestRecord)? = nil) {
        self.store = store
        self.prepare = prepare
        self.capacity = config.queueCapacity
        self.batchSize = config.batchSize
        self.flushInterval = .milliseconds(config.flushIntervalMs)
        self.logger = logger
        (wake, wakeContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    public func submit(_ record: RequestRecord) {
        let accepted = state.withLock { state in
            guard state.queue.count < capacity else {
                state.dropped += 1
                return false
            }
            state.queue.append(record)
            return true
        }
        if accepted { wakeContinuation.yield() }
    }

    /// Rows waiting to be written.
    public var backlog: Int { state.withLock { $0.queue.count } }
    /// Rows dropped because the queue was full.
    public var dropped: Int { state.withLock { $0.dropped } }
    /// Rows written so far.
    public var written: Int { state.withLock { $0.written } }

    public func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in wake {
                // Let more rows arrive, unless the batch is already full. On shutdown the loop
                // ends after at most one more interval, and the final drain below writes all.
                if flushInterval > .zero && backlog < batchSize {
                    try? await Task.sleep(for: flushInterval)
                }
                await drain()
            }
        } onGracefulShutdown: {
            self.wakeContinuation.finish()
        }
        await drain()
        logger.debug("audit log flushed", metadata: ["written": "\(written)", "dropped": "\(dropped)"])
    }

    /// Swift concurrency's global executor is the event loops, which also serve requests: a
    /// batch's bodies (decode, encode, PII redaction: milliseconds for a thousand rows) are
    /// prepared on a thread of their own so that requests on a loop never queue behind them.
    private static let preparation = DispatchQueue(label: "sluice.audit-log.prepare")

    private func prepareOffTheEventLoops(_ batch: [RequestRecord]) async -> [RequestRecord] {
        guard let prepare else { return batch }
        return await withCheckedContinuation { continuation in
            Self.preparation.async { continuation.resume(returning: batch.map(prepare)) }
        }
    }

    /// Writes everything queued now, in batches.
    public func drain() async {
        while true {
            let batch = state.withLock { state -> [RequestRecord] in
                let n = min(batchSize, state.queue.count)
                guard n > 0 else { return [] }
                let out = Array(state.queue.prefix(n))
                state.queue.removeFirst(n)
                return out
            }
            if batch.isEmpty { return }
            let prepared = await prepareOffTheEventLoops(batch)
            do {
                try await store.append(prepared)
                state.withLock { $0.written += batch.count }
            } catch {
                state.withLock { $0.failed += batch.count }
                logger.error("audit log write failed", metadata: ["rows": "\(batch.count)", "error": "\(error)"])
            }
        }
    }
}
