import Logging
import SluiceCore
import SluiceStore
import Testing

/// The batch queue's contract on SQLite and PostgreSQL: leases, exactly-once outcomes, retries,
/// closing what is left, and (PostgreSQL) workers that claim at the same time.
@Suite struct BatchStoreTests {
    func stores() async throws -> [(String, any BatchStore)] {
        var out: [(String, any BatchStore)] = [("sqlite", SQLiteBatchStore(database: try SQLiteDatabase(path: ":memory:")))]
        if let url = try await PostgresTestDatabase.fresh() {
            out.append(("postgres", PostgresBatchStore(database: try await PostgresDatabase(url: url, logger: Logger(label: "test")))))
        }
        return out
    }

    func batch(_ id: String, owner: String = "team:a", at time: Double = 1) -> BatchRecord {
        BatchRecord(
            id: id, owner: owner, keyID: "key_1", endpoint: "/v1/chat/completions", inputFileID: "file-in", createdAt: time, expiresAt: time + 86_400,
            metadata: ["job": "nightly"])
    }

    func lines(_ id: String, _ n: Int) -> [BatchLine] {
        (0..<n).map { BatchLine(batchID: id, index: $0, customID: "req-\($0)", body: #"{"model":"m","messages":[]}"#) }
    }

    @Test func aLineIsAnsweredOnceByWhoeverHoldsIt() async throws {
        for (name, store) in try await stores() {
            try await store.createBatch(batch("batch_1"))
            #expect(try await store.claimLines(limit: 10, worker: "a", now: 10, leaseUntil: 20).isEmpty, "\(name): validating batches are not claimed")
            try await store.start(batchID: "batch_1", lines: lines("batch_1", 5), at: 2)
            let started = try #require(try await store.batch(id: "batch_1"), "\(name)")
            #expect(started.status == .inProgress && started.total == 5 && started.inProgressAt == 2 && started.metadata == ["job": "nightly"], "\(name)")
            let a = try await store.claimLines(limit: 3, worker: "a", now: 10, leaseUntil: 20)
            #expect(a.map(\.index) == [0, 1, 2] && a.first?.customID == "req-0", "\(name)")
            // Worker a went quiet; after its lease b takes its lines and the two that were left.
            #expect(try await store.claimLines(limit: 10, worker: "b", now: 15, leaseUntil: 30).map(\.index) == [3, 4], "\(name)")
            let b = try await store.claimLines(limit: 10, worker: "b", now: 21, leaseUntil: 40)
            #expect(b.map(\.index) == [0, 1, 2], "\(name)")
            #expect(try await store.finishLine(batchID: "batch_1", index: 0, worker: "a", success: true, output: "late a") == false, "\(name)")
            for i in 0..<5 {
                #expect(try await store.finishLine(batchID: "batch_1", index: i, worker: "b", success: i != 3, output: "out \(i)"), "\(name)")
            }
            #expect(try await store.finishLine(batchID: "batch_1", index: 1, worker: "b", success: true, output: "again") == false, "\(name): once")
            let done = try #require(try await store.batch(id: "batch_1"), "\(name)")
            #expect(done.completed == 4 && done.failed == 1, "\(name)")
            #expect(try await store.outputs(batchID: "batch_1", success: true) == ["out 0", "out 1", "out 2", "out 4"], "\(name)")
            #expect(try await store.outputs(batchID: "batch_1", success: false) == ["out 3"], "\(name)")
            #expect(try await store.lineCounts(batchID: "batch_1") == BatchLineCounts(completed: 4, failed: 1), "\(name)")
        }
    }

    @Test func releasedLinesWaitForTheirRetryAndClosingAnswersTheRest() async throws {
        for (name, store) in try await stores() {
            try await store.createBatch(batch("batch_2"))
            try await store.start(batchID: "batch_2", lines: lines("batch_2", 4), at: 1)
            let claimed = try await store.claimLines(limit: 2, worker: "w", now: 10, leaseUntil: 100)
            try await store.releaseLine(batchID: "batch_2", index: claimed[0].index, worker: "w", retryAt: 50, countAttempt: true)
            // Not before its retry time.
            #expect(try await store.claimLines(limit: 10, worker: "w", now: 20, leaseUntil: 100).map(\.index) == [2, 3], "\(name)")
            let again = try await store.claimLines(limit: 10, worker: "w", now: 60, leaseUntil: 100)
            #expect(again.map(\.index) == [0] && again.first?.attempts == 1, "\(name)")
            #expect(try await store.finishLine(batchID: "batch_2", index: 0, worker: "w", success: true, output: "ok"), "\(name)")
            // Cancelled: in-flight lines (1, 2, 3 under a live lease) are left to finish; nothing pending is left.
            var cancelled = try #require(try await store.batch(id: "batch_2"))
            cancelled.status = .cancelling
            cancelled.cancellingAt = 70
            try await store.updateBatch(cancelled)
            #expect(try await store.claimLines(limit: 10, worker: "x", now: 200, leaseUntil: 300).isEmpty, "\(name): a cancelling batch is not claimed")
            #expect(try await store.closePending(batchID: "batch_2", now: 80) { "cancelled \($0.customID)" } == 0, "\(name)")
            // Past the lease, the lines of a worker that went away are closed too.
            #expect(try await store.closePending(batchID: "batch_2", now: 150) { "cancelled \($0.customID)" } == 3, "\(name)")
            #expect(try await store.outputs(batchID: "batch_2", success: false) == ["cancelled req-1", "cancelled req-2", "cancelled req-3"], "\(name)")
            let b = try #require(try await store.batch(id: "batch_2"))
            #expect(b.status == .cancelling && b.cancellingAt == 70 && b.completed == 1 && b.failed == 3, "\(name)")
        }
    }

    @Test func batchesPageAndKeepTheirErrors() async throws {
        for (name, store) in try await stores() {
            for i in 0..<5 { try await store.createBatch(batch("batch_p\(i)", owner: i == 4 ? "team:b" : "team:a", at: Double(i))) }
            let first = try await store.batches(owner: "team:a", page: ListPage(limit: 2))
            #expect(first.map(\.id) == ["batch_p3", "batch_p2", "batch_p1"], "\(name): limit + 1, newest first")
            #expect(try await store.batches(owner: "team:a", page: ListPage(limit: 2, after: "batch_p2")).map(\.id) == ["batch_p1", "batch_p0"], "\(name)")
            // Every owner's (the dashboard and `sluice batches list`).
            #expect(try await store.batches(owner: nil, page: ListPage(limit: 10)).map(\.id) == (0..<5).reversed().map { "batch_p\($0)" }, "\(name)")
            #expect(try await store.batches(owner: nil, page: ListPage(limit: 1, after: "batch_p4")).map(\.id) == ["batch_p3", "batch_p2"], "\(name)")
            var failed = try #require(try await store.batch(id: "batch_p0"))
            failed.status = .failed
            failed.failedAt = 9
            failed.errors = [.init(code: "invalid_json", message: "Line 3 is not JSON.", line: 3), .init(code: "missing_custom_id", message: "x", param: "custom_id")]
            try await store.updateBatch(failed)
            let back = try #require(try await store.batch(id: "batch_p0"))
            #expect(back.errors == failed.errors && back.status == .failed && back.failedAt == 9, "\(name)")
            #expect(!(try await store.openBatches()).contains { $0.id == "batch_p0" }, "\(name)")
        }
    }

    /// Two workers claiming from one batch at the same time never take the same line.
    @Test func concurrentClaimsAreDisjoint() async throws {
        for (name, store) in try await stores() {
            try await store.createBatch(batch("batch_c"))
            try await store.start(batchID: "batch_c", lines: lines("batch_c", 200), at: 1)
            let taken = try await withThrowingTaskGroup(of: [Int].self) { group in
                for w in 0..<4 {
                    group.addTask {
                        var mine: [Int] = []
                        while true {
                            let got = try await store.claimLines(limit: 7, worker: "w\(w)", now: 10, leaseUntil: 1000)
                            if got.isEmpty { return mine }
                            mine += got.map(\.index)
                        }
                    }
                }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            #expect(taken.count == 200 && Set(taken).count == 200, "\(name): \(taken.count) claims of \(Set(taken).count) lines")
        }
    }
}
