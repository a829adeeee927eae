import Foundation
import Logging
import Metrics
import ServiceLifecycle
import SluiceCore
import SluiceStore
import Synchronization

/// Runs one line of a batch: the server's pipeline, as the batch's key.
public protocol BatchExecutor: Sendable {
    func run(_ batch: BatchRecord, _ line: BatchLine, requestID: String) async -> BatchExecution
}

/// Where a batch's input comes from and its output files go, and who may use which model.
public protocol BatchFiles: Sendable {
    /// The input file's text, if it exists and belongs to `owner`.
    func input(id: String, owner: String) async throws -> String?
    /// Stores an output or error file for `owner` and answers its id (the same id if written again).
    func write(id: String, owner: String, filename: String, lines: [String]) async throws -> String
    /// Whether the key `keyID` may use `model` (a model entry, alias or `flow:NAME`).
    func allows(keyID: String, model: String) async -> Bool
}

/// The batch worker of one replica: validates new batches, claims due lines (leased, renewed
/// while they run), runs each through the pipeline at most `max_concurrency` per model, retries
/// upstream failures with backoff, waits out Sluice's own limits, and finalizes, cancels or
/// expires batches — writing their output and error files once, whichever replica gets there.
public final class BatchRunner: Service, Sendable {
    let store: any BatchStore
    let files: any BatchFiles
    let executor: any BatchExecutor
    let config: BatchConfig
    let logger: Logger
    /// This process's name in the lines it claims.
    public let worker: String
    /// How often the runner reads the open batches (new ones, finished ones, cancellations) and
    /// looks for due lines when it found none: a new batch starts within this time.
    let idle: Duration
    /// Live requests being served: while there are, at most `live_rate` lines start per second.
    let live: LiveTraffic?
    private let modelSlots: ModelSlots
    private let lineCounter = Counter(label: "sluice_batch_lines_total", dimensions: [("status", "completed")])
    private let failedCounter = Counter(label: "sluice_batch_lines_total", dimensions: [("status", "failed")])
    private let retriedCounter = Counter(label: "sluice_batch_lines_total", dimensions: [("status", "retried")])
    /// Lines of in-progress batches not answered yet (every replica reports the same figure).
    private let queueDepth = Gauge(label: "sluice_batch_queue_depth")
    /// Lines this replica is running now.
    private let inFlightGauge = Gauge(label: "sluice_batch_lines_in_flight")
    /// The open batches as housekeeping last read them: a line's batch without a query per line.
    private let open = Mutex<[String: BatchRecord]>([:])

    public init(
        store: any BatchStore, files: any BatchFiles, executor: any BatchExecutor, config: BatchConfig, live: LiveTraffic? = nil,
        idle: Duration = .seconds(1), logger: Logger
    ) {
        self.store = store
        self.files = files
        self.executor = executor
        self.config = config
        self.idle = idle
        self.live = live
        self.modelSlots = ModelSlots(limit: config.maxConcurrency)
        self.logger = logger
        self.worker = "w-" + UUID().uuidString.prefix(8).lowercased()
    }

    public func run() async throws {
        let inFlight = InFlight()
        await withDiscardingTaskGroup { group in
            var lastRenewal = ContinuousClock.now
            var lastHousekeeping = ContinuousClock.now - idle
            var running = false
            var pacer = LinePacer(rate: config.liveRate, now: Self.uptime)
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                var allowance = Int.max
                do {
                    // Once per `idle` at most, however fast lines finish: a read of the open batches.
                    if ContinuousClock.now - lastHousekeeping >= idle {
                        running = try await housekeeping()
                        lastHousekeeping = .now
                        inFlightGauge.record(inFlight.count.load(ordering: .relaxed))
                    }
                    if ContinuousClock.now - lastRenewal > .seconds(config.leaseSeconds / 3) {
                        try await store.renewLeases(worker: worker, until: Self.now + config.leaseSeconds)
                        lastRenewal = .now
                    }
                    allowance = pacer.allowance(now: Self.uptime, live: live?.isActive == true)
                    let free = min(allowance, config.workers - inFlight.count.load(ordering: .relaxed))
                    // No batch in progress: no claim (on SQLite a claim takes the write lock).
                    let lines = free > 0 && running ? try await store.claimLines(limit: free, worker: worker, now: Self.now, leaseUntil: Self.now + config.leaseSeconds) : []
                    pacer.spend(lines.count)
                    for line in lines {
                        inFlight.count.add(1, ordering: .relaxed)
                        group.addTask { [self] in
                            await self.perform(line)
                            inFlight.count.subtract(1, ordering: .relaxed)
                            inFlight.finished.store(true, ordering: .relaxed)
                        }
                    }
                    if !lines.isEmpty { continue }
                } catch {
                    logger.warning("batch runner: the store did not answer", metadata: ["error": "\(error)"])
                }
                // Until a line finishes (a slot is free) or `idle` passes: no store query meanwhile.
                // With nothing in flight nothing can finish, so the wait wakes less often.
                // Paced beside live traffic: the next token is at most a few milliseconds away.
                let paced = running && allowance < config.workers
                guard inFlight.count.load(ordering: .relaxed) > 0 || paced else {
                    // Nothing in flight can finish: one sleep until the next look at the store (an
                    // idle server wakes once per `idle` here, not every few milliseconds).
                    do { try await gracefulShutdownSleep(for: idle) } catch {}
                    continue
                }
                let step: Duration = .milliseconds(5)
                var waited = Duration.zero
                let limit = paced ? min(idle, .milliseconds(Int64(max(5, 1000 / config.liveRate)))) : idle
                while waited < limit && !inFlight.finished.exchange(false, ordering: .relaxed) && !Task.isShuttingDownGracefully {
                    do { try await Task.sleep(for: min(step, idle)) } catch { break }
                    waited += step
                }
            }
            // Lines in flight finish (and are recorded); nothing new is claimed.
        }
    }

    static var now: Double { Date().timeIntervalSince1970 }
    static var uptime: Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    static let expiredCode = "batch_expired"
    static let expiredMessage = "This request could not be executed before the completion window expired."


    /// Validates new batches, and finalizes, cancels or expires the ones whose time has come;
    /// answers whether any batch is in progress afterwards (has lines to claim).
    @discardableResult
    func housekeeping() async throws -> Bool {
        let batches = try await store.openBatches()
        open.withLock { open in open = Dictionary(batches.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }) }
        queueDepth.record(batches.filter { $0.status == .inProgress }.reduce(0) { $0 + max(0, $1.total - $1.completed - $1.failed) })
        for batch in batches {
            switch batch.status {
            case .validating:
                try await validate(batch)
            case .inProgress:
                if Self.now >= batch.expiresAt {
                    // Claims stop (only in-progress batches are claimed); what is left is closed as expired.
                    if try await store.transition(batchID: batch.id, from: [.inProgress], to: .finalizing, at: Self.now) {
                        try await close(batch, code: Self.expiredCode, message: Self.expiredMessage, final: .expired)
                    }
                } else {
                    // A line's outcome and the batch's counts are written together: all counted, none left.
                    if batch.completed + batch.failed >= batch.total,
                        try await store.transition(batchID: batch.id, from: [.inProgress], to: .finalizing, at: Self.now)
                    {
                        try await finish(batch.id, final: .completed)
                    }
                }
            case .cancelling:
                try await close(batch, code: "batch_cancelled", message: "This request was not executed because the batch was cancelled.", final: .cancelled)
            case .finalizing:
                if Self.now >= batch.expiresAt {
                    // Expiring: waits for the lines in flight, then writes what there is.
                    try await close(batch, code: Self.expiredCode, message: Self.expiredMessage, final: .expired)
                } else if let at = batch.finalizingAt, Self.now - at > config.leaseSeconds {
                    // A finalizer that went away: the files are written again (the same ids) and the batch ends.
                    try await finish(batch.id, final: .completed)
                }
            default:
                break
            }
        }
        // A batch validated just now is in progress too.
        return batches.contains { $0.status == .inProgress || $0.status == .validating }
    }

    func validate(_ batch: BatchRecord) async throws {
        guard let text = try await files.input(id: batch.inputFileID, owner: batch.owner) else {
            var failed = batch
            failed.errors = [.init(code: "invalid_file", message: "The input file \(batch.inputFileID) does not exist or is not yours.", param: "input_file_id")]
            try await fail(failed)
            return
        }
        var allowed: [String: Bool] = [:]
        var models: Set<String> = []
        let probe = BatchInput(batchID: batch.id, text: text, endpoint: batch.endpoint) { models.insert($0); return true }
        for model in models { allowed[model] = await files.allows(keyID: batch.keyID, model: model) }
        let input = probe.errors.isEmpty && allowed.values.allSatisfy({ $0 })
            ? probe : BatchInput(batchID: batch.id, text: text, endpoint: batch.endpoint) { allowed[$0] ?? false }
        if !input.errors.isEmpty {
            var failed = batch
            failed.errors = input.errors
            try await fail(failed)
            return
        }
        try await store.start(batchID: batch.id, lines: input.lines, at: Self.now)
        logger.info("batch started", metadata: ["batch_id": "\(batch.id)", "lines": "\(input.lines.count)"])
    }

    func fail(_ batch: BatchRecord) async throws {
        // The errors first, then the status: whoever reads `failed` reads why.
        guard var failing = try await store.batch(id: batch.id), failing.status == .validating else { return }
        failing.errors = batch.errors
        try await store.updateBatch(failing)
        guard try await store.transition(batchID: batch.id, from: [.validating], to: .failed, at: Self.now) else { return }
        logger.info("batch failed validation", metadata: ["batch_id": "\(batch.id)", "errors": "\(batch.errors.count)"])
    }

    /// Cancelled or expired: lines still waiting (or left by a dead worker) are answered as not
    /// run; once no line is in flight any more, the files are written.
    func close(_ batch: BatchRecord, code: String, message: String, final: BatchRecord.Status) async throws {
        _ = try await store.closePending(batchID: batch.id, now: Self.now) { BatchOutput.notRun($0, code: code, message: message) }
        let counts = try await store.lineCounts(batchID: batch.id)
        guard counts.claimed == 0, counts.pending == 0 else { return }
        if final == .cancelled {
            guard try await store.transition(batchID: batch.id, from: [.cancelling], to: .finalizing, at: Self.now) else { return }
        }
        try await finish(batch.id, final: final)
    }

    /// Writes the output and error files (only the replica that moved the batch to finalizing) and ends the batch.
    func finish(_ id: String, final: BatchRecord.Status) async throws {
        guard var batch = try await store.batch(id: id) else { return }
        let successes = try await store.outputs(batchID: id, success: true)
        let failures = try await store.outputs(batchID: id, success: false)
        if !successes.isEmpty {
            batch.outputFileID = try await files.write(id: "file-\(id)-output", owner: batch.owner, filename: "\(id)_output.jsonl", lines: successes)
        }
        if !failures.isEmpty {
            batch.errorFileID = try await files.write(id: "file-\(id)-errors", owner: batch.owner, filename: "\(id)_error.jsonl", lines: failures)
        }
        try await store.updateBatch(batch)
        _ = try await store.transition(batchID: id, from: [.finalizing], to: final, at: Self.now)
        logger.info(
            "batch ended", metadata: ["batch_id": "\(id)", "status": "\(final.rawValue)", "completed": "\(successes.count)", "failed": "\(failures.count)"])
    }

    func perform(_ line: BatchLine) async {
        let model = Self.model(of: line)
        guard await acquire(model) else {
            // Stopping before the line started: it goes back for whoever runs next (or, if even
            // that fails, to whoever takes it over when its lease runs out).
            try? await store.releaseLine(batchID: line.batchID, index: line.index, worker: worker, retryAt: Self.now, countAttempt: false)
            return
        }
        defer { release(model) }
        do {
            guard let batch = try await batch(line.batchID) else { return }
            let outcome = await executor.run(batch, line, requestID: BatchOutput.requestID(line))
            switch outcome {
            case .answered(let status, let body):
                let ok = (200..<300).contains(status)
                if try await store.finishLine(batchID: line.batchID, index: line.index, worker: worker, success: ok, output: BatchOutput.answered(line, statusCode: status, body: body)) {
                    (ok ? lineCounter : failedCounter).increment()
                }
            case .retryable(let status, let body):
                if line.attempts + 1 >= config.maxAttempts {
                    if try await store.finishLine(batchID: line.batchID, index: line.index, worker: worker, success: false, output: BatchOutput.answered(line, statusCode: status, body: body)) {
                        failedCounter.increment()
                    }
                } else {
                    retriedCounter.increment()
                    let wait = min(60, Double(config.backoffMs) / 1000 * pow(2, Double(line.attempts)))
                    try await store.releaseLine(batchID: line.batchID, index: line.index, worker: worker, retryAt: Self.now + wait, countAttempt: true)
                }
            case .paused:
                // A limit or budget of Sluice's own: the batch waits rather than failing its lines.
                try await store.releaseLine(batchID: line.batchID, index: line.index, worker: worker, retryAt: Self.now + 5, countAttempt: false)
            }
        } catch {
            logger.warning("batch line not recorded; it will run again", metadata: ["batch_id": "\(line.batchID)", "line": "\(line.index)", "error": "\(error)"])
        }
    }

    /// A line's batch: as housekeeping last read it, or from the store (claimed before housekeeping saw it).
    func batch(_ id: String) async throws -> BatchRecord? {
        if let cached = open.withLock({ $0[id] }) { return cached }
        return try await store.batch(id: id)
    }

    static func model(of line: BatchLine) -> String {
        guard let body = Array(line.body.utf8).withUnsafeBytes({ JSONParser.parse($0) }) else { return "" }
        return body["model"]?.stringValue ?? ""
    }

    /// Waits for one of the model's `max_concurrency` slots; false when the task is cancelled first.
    func acquire(_ model: String) async -> Bool { await modelSlots.acquire(model) }

    func release(_ model: String) { modelSlots.release(model) }
}

/// Each model's `max_concurrency` slots. A line waits for one suspended, not polling: a
/// released slot goes straight to the longest waiter.
final class ModelSlots: Sendable {
    struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Bool, Never>
    }
    struct State {
        var used: [String: Int] = [:]
        var waiting: [String: [Waiter]] = [:]
        var nextID: UInt64 = 0
    }
    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) { self.limit = max(1, limit) }

    func acquire(_ model: String) async -> Bool {
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                let now: Bool? = state.withLock { s in
                    // Cancelled before waiting: the handler below found no waiter to wake.
                    if Task.isCancelled { return false }
                    if s.used[model, default: 0] < limit {
                        s.used[model, default: 0] += 1
                        return true
                    }
                    s.waiting[model, default: []].append(Waiter(id: id, continuation: c))
                    return nil
                }
                if let now { c.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { s -> Waiter? in
                guard let i = s.waiting[model]?.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiting[model]?.remove(at: i)
            }
            waiter?.continuation.resume(returning: false)
        }
    }

    func release(_ model: String) {
        let next = state.withLock { s -> Waiter? in
            if let first = s.waiting[model]?.first {
                s.waiting[model]?.removeFirst()
                return first  // the slot passes to it: `used` stays
            }
            s.used[model, default: 1] -= 1
            return nil
        }
        next?.continuation.resume(returning: true)
    }

    /// Lines holding a slot of `model` (for tests).
    func used(_ model: String) -> Int { state.withLock { $0.used[model, default: 0] } }
}

/// Lines this replica is running now.
final class InFlight: Sendable {
    let count = Atomic<Int>(0)
    /// Set when a line finishes: the loop claims again at once.
    let finished = Atomic<Bool>(false)
}
