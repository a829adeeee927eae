/// A batch as OpenAI's Batch API describes it (`/v1/batches`), with what Sluice needs to run it:
/// whose it is and which key its lines run as.
public struct BatchRecord: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable, CaseIterable {
        case validating, failed, finalizing, completed, expired, cancelling, cancelled
        case inProgress = "in_progress"

        /// No line will run any more.
        public var isFinal: Bool { [.failed, .completed, .expired, .cancelled].contains(self) }
    }

    /// One problem with the input file (the batch's `errors.data`).
    public struct LineError: Sendable, Hashable {
        public var code: String
        public var message: String
        public var param: String?
        /// The input file's line, from 1.
        public var line: Int?

        public init(code: String, message: String, param: String? = nil, line: Int? = nil) {
            self.code = code
            self.message = message
            self.param = param
            self.line = line
        }
    }

    public var id: String
    /// `Ownership.owner` of the key that made it: who may read and cancel it.
    public var owner: String
    /// The key its lines run as (empty with auth off).
    public var keyID: String
    /// `/v1/chat/completions`, `/v1/embeddings` or `/v1/flows/{name}/run`.
    public var endpoint: String
    public var inputFileID: String
    public var completionWindow: String
    public var status: Status
    public var createdAt: Double
    public var expiresAt: Double
    public var inProgressAt: Double?
    public var finalizingAt: Double?
    public var completedAt: Double?
    public var failedAt: Double?
    public var expiredAt: Double?
    public var cancellingAt: Double?
    public var cancelledAt: Double?
    public var total: Int
    public var completed: Int
    public var failed: Int
    public var outputFileID: String?
    public var errorFileID: String?
    public var errors: [LineError]
    public var metadata: [String: String]

    public init(
        id: String, owner: String, keyID: String, endpoint: String, inputFileID: String, completionWindow: String = "24h", status: Status = .validating,
        createdAt: Double, expiresAt: Double, metadata: [String: String] = [:]
    ) {
        self.id = id
        self.owner = owner
        self.keyID = keyID
        self.endpoint = endpoint
        self.inputFileID = inputFileID
        self.completionWindow = completionWindow
        self.status = status
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.total = 0
        self.completed = 0
        self.failed = 0
        self.errors = []
        self.metadata = metadata
    }
}

/// One request line of a batch, as the durable queue holds it.
public struct BatchLine: Sendable, Hashable {
    public var batchID: String
    /// The line's place in the input file, from 0 (outputs are written in this order).
    public var index: Int
    public var customID: String
    /// The request's `body`, as JSON text.
    public var body: String
    /// Attempts so far (a claim that ran the line counts one).
    public var attempts: Int

    public init(batchID: String, index: Int, customID: String, body: String, attempts: Int = 0) {
        self.batchID = batchID
        self.index = index
        self.customID = customID
        self.body = body
        self.attempts = attempts
    }
}

/// How a batch's lines stand.
public struct BatchLineCounts: Sendable, Hashable {
    public var pending: Int
    public var claimed: Int
    public var completed: Int
    public var failed: Int

    public init(pending: Int = 0, claimed: Int = 0, completed: Int = 0, failed: Int = 0) {
        self.pending = pending
        self.claimed = claimed
        self.completed = completed
        self.failed = failed
    }
}

/// Batches and their lines: a durable queue. Workers claim lines with a lease (on PostgreSQL
/// with `FOR UPDATE SKIP LOCKED`, so replicas share a batch); a line's outcome is recorded only
/// by the worker that still holds it, in the same transaction as the batch's counts, so a line is
/// answered exactly once however workers crash and take over.
public protocol BatchStore: Sendable {
    func createBatch(_ batch: BatchRecord) async throws
    /// The validated lines, and the batch moved to `in_progress` with its total, in one transaction.
    func start(batchID: String, lines: [BatchLine], at time: Double) async throws
    func batch(id: String) async throws -> BatchRecord?
    /// Newest first, of `owner` (every owner's when nil); `after` is a batch id of the previous page.
    func batches(owner: String?, page: ListPage) async throws -> [BatchRecord]
    /// Status, timestamps, files and errors (not the counts, which only line outcomes change).
    func updateBatch(_ batch: BatchRecord) async throws
    /// Batches not final, for the runner (oldest first).
    func openBatches() async throws -> [BatchRecord]
    /// Up to `limit` lines of in-progress batches that are due — pending and past their retry
    /// time, or claimed by a worker whose lease ran out — leased to `worker` until `leaseUntil`.
    func claimLines(limit: Int, worker: String, now: Double, leaseUntil: Double) async throws -> [BatchLine]
    /// Records a claimed line's output line (`success`: into the output file, else the error
    /// file) and counts it, if `worker` still holds it; false when it no longer does (the
    /// outcome is dropped: whoever holds it now answers it).
    func finishLine(batchID: String, index: Int, worker: String, success: Bool, output: String) async throws -> Bool
    /// Gives a claimed line back to be tried at `retryAt` (`countAttempt`: it ran and failed).
    func releaseLine(batchID: String, index: Int, worker: String, retryAt: Double, countAttempt: Bool) async throws
    /// Answers every line still pending — and every one claimed by a worker whose lease ran out
    /// before `now` — (a cancelled or expired batch) with the output `answer` gives it, into the
    /// error file, and counts them failed.
    func closePending(batchID: String, now: Double, answer: @Sendable (BatchLine) -> String) async throws -> Int
    func lineCounts(batchID: String) async throws -> BatchLineCounts
    /// The output lines of finished lines, in input order: the successes, or the failures.
    func outputs(batchID: String, success: Bool) async throws -> [String]
    /// Moves a batch from one of `from` to `to`, stamping the status's time, if it is still in one
    /// of them; false when another worker moved it first (only one replica finalizes a batch).
    func transition(batchID: String, from: [BatchRecord.Status], to: BatchRecord.Status, at time: Double) async throws -> Bool
    /// Extends the lease of every line `worker` holds (a live worker's lines are not taken over).
    func renewLeases(worker: String, until: Double) async throws
}

extension BatchRecord.Status {
    /// The column that records when a batch reached this status.
    public var timeColumn: String? {
        switch self {
        case .validating: nil
        case .inProgress: "in_progress_at"
        case .finalizing: "finalizing_at"
        case .completed: "completed_at"
        case .failed: "failed_at"
        case .expired: "expired_at"
        case .cancelling: "cancelling_at"
        case .cancelled: "cancelled_at"
        }
    }
}
