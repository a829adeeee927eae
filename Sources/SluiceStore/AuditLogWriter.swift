import Foundation
import Logging
import ServiceLifecycle
import SluiceCore
import Synchronization

/// Writes audit-log rows in the background: `submit` never waits; rows gather for
/// `flush_interval_ms` after the first one and are written in transactions of up to
/// `batch_size`; the queue is bounded, and what does not fit is dropped and counted (the last
/// resort). On graceful shutdown everything queued is flushed before `run` returns.
///
/// The loop runs on its own thread (`BackgroundThreadExecutor`): batches are taken, prepared,
/// written and freed there, never on an event loop that serves requests.
public final class AuditLogWriter: Service, AuditLogSink {
    struct State {
        var queue: [AuditRecord] = []
        /// What the queued rows hold, by `approximateBytes` at submission.
        var queuedBytes = 0
        var dropped = 0
        /// Rows queued without their bodies because the queue's bytes were at their bound.
        var bodiesDropped = 0
        var written = 0
        var failed = 0
        /// Batches taken from the queue and not yet written (by any drain).
        var writing = 0
    }

    let store: any AuditLogStore
    let capacity: Int
    let maxBytes: Int
    let batchSize: Int
    let flushInterval: Duration
    let logger: Logger
    /// Applied to each row before it is written, off the request path (bodies are encoded and redacted here).
    let prepare: (@Sendable (inout AuditRecord) -> Void)?
    let executor: BackgroundThreadExecutor
    private let state = Mutex(State())
    private let wake: AsyncStream<Void>
    private let wakeContinuation: AsyncStream<Void>.Continuation

    public init(
        store: any AuditLogStore, config: AuditLogConfig, logger: Logger, executor: BackgroundThreadExecutor = .auditLog,
        prepare: (@Sendable (inout AuditRecord) -> Void)? = nil
    ) {
        self.store = store
        self.prepare = prepare
        self.executor = executor
        self.capacity = config.queueCapacity
        self.maxBytes = config.queueMaxBytes
        self.batchSize = config.batchSize
        self.flushInterval = .milliseconds(config.flushIntervalMs)
        self.logger = logger
        (wake, wakeContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    public func submit(_ record: AuditRecord) {
        var record = record
        var bytes = record.approximateBytes
        // Only the first row after the queue was emptied wakes the loop: it drains until empty.
        let wasEmpty = state.withLock { state in
            guard state.queue.count < capacity else {
                state.dropped += 1
                return false
            }
            if state.queuedBytes + bytes > maxBytes && bytes > 512 {
                // The row is kept, its bodies are not: what a request did matters more than what it said.
                record.captured = nil
                record.requestBody = nil
                record.responseBody = nil
                bytes = record.approximateBytes
                state.bodiesDropped += 1
            }
            state.queuedBytes += bytes
            state.queue.append(record)
            return state.queue.count == 1
        }
        if wasEmpty { wakeContinuation.yield() }
    }

    /// Rows waiting to be written.
    public var backlog: Int { state.withLock { $0.queue.count } }
    /// Rows dropped because the queue was full.
    public var dropped: Int { state.withLock { $0.dropped } }
    /// Rows queued without their bodies because the queue held `queue_max_bytes`.
    public var bodiesDropped: Int { state.withLock { $0.bodiesDropped } }
    /// Bytes the queued rows hold.
    public var queuedBytes: Int { state.withLock { $0.queuedBytes } }
    /// Rows written so far.
    public var written: Int { state.withLock { $0.written } }

    /// About how many bytes of rows one batch takes when the queue holds more.
    static let batchBytes = 8 * 1024 * 1024

    public func run() async throws {
        await withTaskExecutorPreference(executor) { await loop() }
    }

    private func loop() async {
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

    /// Writes everything queued now, in batches, and returns once every row taken before it
    /// returns is written — the loop's batch in flight included, which a caller that just saw
    /// its requests answered expects in the store.
    public func drain() async {
        while true {
            var batch = state.withLock { state -> [AuditRecord] in
                // Usually the whole queue, taken without copying a row.
                guard state.queue.count > batchSize || state.queuedBytes > Self.batchBytes else {
                    var all: [AuditRecord] = []
                    swap(&all, &state.queue)
                    if !all.isEmpty { state.writing += 1 }
                    state.queuedBytes = 0
                    return all
                }
                // At most `batch_size` rows and about `batchBytes`: preparing a row (redacting,
                // encoding) takes several times its size, so large bodies go a few at a time.
                var count = 0
                var bytes = 0
                while count < min(batchSize, state.queue.count) && (count == 0 || bytes + state.queue[count].approximateBytes <= Self.batchBytes) {
                    bytes += state.queue[count].approximateBytes
                    count += 1
                }
                let out = Array(state.queue.prefix(count))
                state.queue.removeFirst(count)
                state.writing += 1
                state.queuedBytes -= bytes
                return out
            }
            if batch.isEmpty {
                // Another drain (the loop's) may still be writing what it took: wait for it.
                while state.withLock({ $0.writing > 0 && $0.queue.isEmpty }) {
                    do { try await Task.sleep(for: .milliseconds(2)) } catch { return }
                }
                if state.withLock({ $0.queue.isEmpty }) { return }
                continue
            }
            if let prepare {
                for i in batch.indices {
                    prepare(&batch[i])
                    if i % 64 == 63 { BackgroundThreadExecutor.yieldProcessor() }
                }
            }
            do {
                try await store.append(batch)
                state.withLock {
                    $0.written += batch.count
                    $0.writing -= 1
                }
            } catch {
                state.withLock {
                    $0.failed += batch.count
                    $0.writing -= 1
                }
                logger.error("audit log write failed", metadata: ["rows": "\(batch.count)", "error": "\(error)"])
            }
        }
    }
}
