import Foundation
import Logging
import SluiceCore
import SluiceStore
import Synchronization
import Testing

@testable import SluiceBatch

@Suite struct BatchInputTests {
    let endpoint = "/v1/chat/completions"

    func line(_ id: String, model: String = "small", url: String = "/v1/chat/completions", method: String = "POST", extra: String = "") -> String {
        #"{"custom_id":"\#(id)","method":"\#(method)","url":"\#(url)","body":{"model":"\#(model)","messages":[{"role":"user","content":"hi"}]\#(extra)}}"#
    }

    @Test func aGoodFileBecomesLinesInOrder() {
        let text = [line("a"), "", line("b"), line("c") + "\r"].joined(separator: "\n")
        let input = BatchInput(batchID: "batch_1", text: text, endpoint: endpoint) { _ in true }
        #expect(input.errors.isEmpty)
        #expect(input.lines.map(\.customID) == ["a", "b", "c"] && input.lines.map(\.index) == [0, 1, 2])
        #expect(input.lines[0].body.contains(#""model":"small""#))
    }

    @Test func everyProblemIsNamedByItsLine() {
        let text = [
            line("a"), "not json", #"{"method":"POST","url":"/v1/chat/completions","body":{"model":"small"}}"#, line("a"), line("m", method: "GET"),
            line("u", url: "/v1/embeddings"), line("x", model: "forbidden"), line("s", extra: #","stream":true"#), #"{"custom_id":"nb","method":"POST","url":"/v1/chat/completions"}"#,
        ].joined(separator: "\n")
        let input = BatchInput(batchID: "batch_1", text: text, endpoint: endpoint) { $0 != "forbidden" }
        #expect(input.errors.map(\.line) == [2, 3, 4, 5, 6, 7, 8, 9])
        #expect(input.errors.map(\.code) == [
            "invalid_json", "missing_required_parameter", "duplicate_custom_id", "invalid_method", "invalid_url", "model_not_allowed", "invalid_value",
            "missing_required_parameter",
        ])
        #expect(BatchInput(batchID: "b", text: "\n\n", endpoint: endpoint) { _ in true }.errors.first?.code == "empty_file")
        let flows = BatchInput(batchID: "b", text: #"{"custom_id":"f","method":"POST","url":"/v1/flows/t/run","body":{"input":{"x":1}}}"#, endpoint: "/v1/flows/t/run") { _ in true }
        #expect(flows.errors.isEmpty && flows.lines.count == 1)
    }

    /// The shapes of OpenAI's documented examples: an answered line, and one the batch never ran.
    @Test func outputLinesHaveOpenAIsShape() throws {
        let l = BatchLine(batchID: "batch_abc", index: 2, customID: "request-2", body: "{}")
        let answered = try #require(Array(BatchOutput.answered(l, statusCode: 200, body: .object(["id": "chatcmpl-1", "object": "chat.completion"])).utf8)
            .withUnsafeBytes { JSONParser.parse($0) })
        #expect(answered["custom_id"]?.stringValue == "request-2" && answered["error"] == .null)
        #expect(answered["id"]?.stringValue?.hasPrefix("batch_req_") == true)
        #expect(answered["response"]?["status_code"] == .int(200) && answered["response"]?["request_id"]?.stringValue == "batch_abc-2")
        #expect(answered["response"]?["body"]?["object"]?.stringValue == "chat.completion")
        let expired = try #require(Array(BatchOutput.notRun(l, code: "batch_expired", message: "m").utf8).withUnsafeBytes { JSONParser.parse($0) })
        #expect(expired["response"] == .null && expired["error"]?["code"]?.stringValue == "batch_expired")
        #expect(Set((expired.objectValue ?? [:]).keys) == ["id", "custom_id", "response", "error"])
    }
}

/// A runner over SQLite with a scripted executor.
@Suite struct BatchRunnerTests {
    final class Files: BatchFiles {
        let text: String
        let written = Mutex<[String: [String]]>([:])
        init(_ text: String) { self.text = text }
        func input(id: String, owner: String) async throws -> String? { id == "file-in" ? text : nil }
        func write(id: String, owner: String, filename: String, lines: [String]) async throws -> String {
            written.withLock { $0[id] = lines }
            return id
        }
        func allows(keyID: String, model: String) async -> Bool { model != "forbidden" }
    }

    /// Answers lines by custom id: `flaky-*` fail twice with a 503, `bad-*` get a 400, `hang-*`
    /// never return on the executor named `hangs`; each run is counted.
    final class Script: BatchExecutor {
        let hangs: Bool
        let runs = Mutex<[String: Int]>([:])
        init(hangs: Bool = false) { self.hangs = hangs }
        func run(_ batch: BatchRecord, _ line: BatchLine, requestID: String) async -> BatchExecution {
            let n = runs.withLock { r -> Int in
                r[line.customID, default: 0] += 1
                return r[line.customID]!
            }
            if hangs && line.customID.hasPrefix("hang-") {
                while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(20)) }
                return .retryable(statusCode: 499, body: .null)
            }
            if line.customID.hasPrefix("flaky-") && n <= 2 { return .retryable(statusCode: 503, body: .object(["error": "busy"])) }
            if line.customID.hasPrefix("bad-") { return .answered(statusCode: 400, body: .object(["error": .object(["message": "no"])])) }
            return .answered(statusCode: 200, body: .object(["echo": .string(line.customID)]))
        }
    }

    func file(_ ids: [String]) -> String {
        ids.map { #"{"custom_id":"\#($0)","method":"POST","url":"/v1/chat/completions","body":{"model":"small","messages":[]}}"# }.joined(separator: "\n")
    }

    func config(lease: Double = 30) -> BatchConfig {
        var c = BatchConfig()
        c.backoffMs = 10
        c.leaseSeconds = lease
        c.maxAttempts = 3
        return c
    }

    func waitFor(_ store: any BatchStore, _ id: String, _ statuses: Set<BatchRecord.Status>, seconds: Double = 20) async throws -> BatchRecord {
        let end = Date().timeIntervalSince1970 + seconds
        while Date().timeIntervalSince1970 < end {
            if let b = try await store.batch(id: id), statuses.contains(b.status) { return b }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw SluiceError(.upstreamTimeout, "batch \(id) did not reach \(statuses)")
    }

    func newBatch(_ store: any BatchStore, _ id: String, expiresIn: Double = 86_400) async throws {
        let now = Date().timeIntervalSince1970
        try await store.createBatch(
            BatchRecord(id: id, owner: "team:a", keyID: "k", endpoint: "/v1/chat/completions", inputFileID: "file-in", createdAt: now, expiresAt: now + expiresIn))
    }

    @Test func linesRunRetryAndEndInTheRightFile() async throws {
        let store = SQLiteBatchStore(database: try SQLiteDatabase(path: ":memory:"))
        let ids = (0..<20).map { "ok-\($0)" } + ["flaky-1", "bad-1"]
        let files = Files(file(ids))
        let script = Script()
        let runner = BatchRunner(store: store, files: files, executor: script, config: config(), idle: .milliseconds(10), logger: Logger(label: "t"))
        try await newBatch(store, "batch_r")
        let task = Task { try await runner.run() }
        defer { task.cancel() }
        let done = try await waitFor(store, "batch_r", [.completed, .failed])
        #expect(done.status == .completed && done.total == 22 && done.completed == 21 && done.failed == 1)
        #expect(script.runs.withLock { $0["flaky-1"] } == 3, "two 503s, then the answer")
        let output = try #require(files.written.withLock { $0["file-batch_r-output"] })
        let errors = try #require(files.written.withLock { $0["file-batch_r-errors"] })
        #expect(output.count == 21 && errors.count == 1 && errors[0].contains(#""custom_id":"bad-1""#))
        #expect(done.outputFileID == "file-batch_r-output" && done.errorFileID == "file-batch_r-errors" && done.completedAt != nil)
    }

    @Test func aBadFileFailsWithoutRunningAnything() async throws {
        let store = SQLiteBatchStore(database: try SQLiteDatabase(path: ":memory:"))
        let files = Files(file(["a"]) + "\n" + #"{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"forbidden","messages":[]}}"#)
        let script = Script()
        let runner = BatchRunner(store: store, files: files, executor: script, config: config(), idle: .milliseconds(10), logger: Logger(label: "t"))
        try await newBatch(store, "batch_f")
        let task = Task { try await runner.run() }
        defer { task.cancel() }
        let failed = try await waitFor(store, "batch_f", [.failed, .completed])
        #expect(failed.status == .failed && failed.errors.map(\.code) == ["model_not_allowed"] && failed.errors.first?.line == 2)
        #expect(script.runs.withLock { $0.isEmpty })
    }

    /// A worker that stops in the middle (its lines claimed, never answered) loses them to
    /// another after its lease: every custom id is answered exactly once.
    @Test func anotherWorkerFinishesWhatAStoppedOneHeld() async throws {
        let store = SQLiteBatchStore(database: try SQLiteDatabase(path: ":memory:"))
        let ids = (0..<10).map { "hang-\($0)" } + (0..<30).map { "ok-\($0)" }
        let files = Files(file(ids))
        let first = BatchRunner(store: store, files: files, executor: Script(hangs: true), config: config(lease: 1), idle: .milliseconds(10), logger: Logger(label: "a"))
        try await newBatch(store, "batch_k")
        let a = Task { try await first.run() }
        // Let the first worker claim the hanging lines, then stop it without a word (as kill -9 would).
        try await Task.sleep(for: .milliseconds(300))
        a.cancel()
        let script = Script()
        let second = BatchRunner(store: store, files: files, executor: script, config: config(lease: 1), idle: .milliseconds(10), logger: Logger(label: "b"))
        let b = Task { try await second.run() }
        defer { b.cancel() }
        let done = try await waitFor(store, "batch_k", [.completed])
        let output = try #require(files.written.withLock { $0["file-batch_k-output"] })
        let answered = output.compactMap { Array($0.utf8).withUnsafeBytes { JSONParser.parse($0) }?["custom_id"]?.stringValue }
        #expect(answered.count == 40 && Set(answered) == Set(ids), "every custom id once")
        #expect(done.completed == 40 && done.failed == 0)
    }

    @Test func cancellingAnswersWhatDidNotRun() async throws {
        let store = SQLiteBatchStore(database: try SQLiteDatabase(path: ":memory:"))
        let ids = (0..<300).map { "ok-\($0)" }
        let files = Files(file(ids))
        var slow = config()
        slow.workers = 2
        slow.maxConcurrency = 1
        let runner = BatchRunner(store: store, files: files, executor: Script(), config: slow, idle: .milliseconds(10), logger: Logger(label: "t"))
        try await newBatch(store, "batch_c")
        let task = Task { try await runner.run() }
        defer { task.cancel() }
        _ = try await waitFor(store, "batch_c", [.inProgress])
        let cancelling = try await store.cancel(try #require(try await store.batch(id: "batch_c")))
        #expect(cancelling.status == .cancelling && cancelling.cancellingAt != nil)
        let done = try await waitFor(store, "batch_c", [.cancelled])
        // Cancelled again: answered as it is. An ended batch cannot be cancelled: 409.
        #expect(try await store.cancel(done).status == .cancelled)
        #expect(done.completed + done.failed == 300 && done.failed > 0 && done.cancelledAt != nil)
        let errors = try #require(files.written.withLock { $0["file-batch_c-errors"] })
        #expect(errors.allSatisfy { $0.contains(#""code":"batch_cancelled""#) } && errors.count == done.failed)
    }

    @Test func anExpiredBatchEndsExpired() async throws {
        let store = SQLiteBatchStore(database: try SQLiteDatabase(path: ":memory:"))
        let files = Files(file((0..<5).map { "ok-\($0)" }))
        try await newBatch(store, "batch_e", expiresIn: -1)
        let runner = BatchRunner(store: store, files: files, executor: Script(), config: config(), idle: .milliseconds(10), logger: Logger(label: "t"))
        let task = Task { try await runner.run() }
        defer { task.cancel() }
        let done = try await waitFor(store, "batch_e", [.expired, .completed])
        #expect(done.status == .expired && done.expiredAt != nil)
        #expect(done.completed + done.failed == 5)
        await #expect(throws: SluiceError.self) { try await store.cancel(done) }
        do { _ = try await store.cancel(done) } catch let e as SluiceError { #expect(e.httpStatus == 409 && e.message.contains("expired")) }
    }
}

@Suite struct BatchProgressTests {
    func batch(_ status: BatchRecord.Status, total: Int, completed: Int, failed: Int, started: Double?) -> BatchRecord {
        var b = BatchRecord(id: "batch_x", owner: "o", keyID: "k", endpoint: "/v1/chat/completions", inputFileID: "f", createdAt: 0, expiresAt: 86_400)
        b.status = status
        b.total = total
        b.completed = completed
        b.failed = failed
        b.inProgressAt = started
        return b
    }

    @Test func rateAndETAFollowTheLinesAnswered() {
        let p = BatchProgress(batch(.inProgress, total: 1000, completed: 180, failed: 20, started: 100), now: 150)
        #expect(p.done == 200 && p.fraction == 0.2)
        #expect(p.rate == 4 && p.eta == 200)
        // Not started, or nothing answered yet: no rate, no ETA.
        #expect(BatchProgress(batch(.validating, total: 0, completed: 0, failed: 0, started: nil), now: 150).rate == nil)
        #expect(BatchProgress(batch(.inProgress, total: 10, completed: 0, failed: 0, started: 100), now: 150).eta == nil)
        // Ended: the rate is over the time it ran, and there is no ETA.
        var ended = batch(.completed, total: 10, completed: 10, failed: 0, started: 100)
        ended.finalizingAt = 105
        let q = BatchProgress(ended, now: 10_000)
        #expect(q.rate == 2 && q.eta == nil && q.fraction == 1)
        #expect(BatchProgress.duration(42) == "42 s" && BatchProgress.duration(200) == "3 min 20 s" && BatchProgress.duration(3900) == "1 h 05 min")
    }
}

/// An executor that takes 10 ms a line and records how many ran at once.
final class Overlap: BatchExecutor {
    let state = Mutex((now: 0, most: 0, runs: 0))
    func run(_ batch: BatchRecord, _ line: BatchLine, requestID: String) async -> BatchExecution {
        state.withLock {
            $0.now += 1
            $0.most = max($0.most, $0.now)
        }
        try? await Task.sleep(for: .milliseconds(10))
        state.withLock {
            $0.now -= 1
            $0.runs += 1
        }
        return .answered(statusCode: 200, body: .object([:]))
    }
}

@Suite struct LiveTrafficTests {
    @Test func linesStartAtTheLiveRateBesideLiveTraffic() {
        var pacer = LinePacer(rate: 200, now: 100)
        #expect(pacer.allowance(now: 100, live: false) == .max, "no live traffic: no pacing")
        #expect(pacer.allowance(now: 100, live: true) == 10, "a burst of 50 ms of lines at most")
        pacer.spend(10)
        #expect(pacer.allowance(now: 100.001, live: true) == 0)
        #expect(pacer.allowance(now: 100.010, live: true) == 2, "200 lines/s: one every 5 ms")
        pacer.spend(2)
        // A long pause refills only the burst.
        #expect(pacer.allowance(now: 160, live: true) == 10)
        var slow = LinePacer(rate: 1, now: 0)
        #expect(slow.allowance(now: 0, live: true) == 1, "at least one line")
        slow.spend(1)
        #expect(slow.allowance(now: 0.5, live: true) == 0 && slow.allowance(now: 1.0, live: true) == 1)
    }

    @Test func aLiveRequestCountsWhileInFlightAndJustAfter() async throws {
        let live = LiveTraffic(window: .milliseconds(50))
        try await Task.sleep(for: .milliseconds(60))
        #expect(!live.isActive)
        live.started()
        try await Task.sleep(for: .milliseconds(60))
        #expect(live.isActive, "in flight")
        live.ended()
        #expect(live.isActive, "just ended")
        try await Task.sleep(for: .milliseconds(80))
        #expect(!live.isActive)
    }

    @Test func aBatchBesideLiveTrafficIsPacedAndStillFinishes() async throws {
        let store = SQLiteBatchStore(database: try SQLiteDatabase(path: ":memory:"))
        let runner = BatchRunnerTests()
        let live = LiveTraffic(window: .milliseconds(50))
        var config = runner.config()
        config.workers = 8
        config.maxConcurrency = 8
        config.liveRate = 100
        let executor = Overlap()
        let worker = BatchRunner(
            store: store, files: BatchRunnerTests.Files(runner.file((0..<30).map { "ok-\($0)" })), executor: executor, config: config, live: live,
            idle: .milliseconds(10), logger: Logger(label: "t"))
        try await runner.newBatch(store, "batch_l")
        live.started()  // a live request in flight for the whole batch
        defer { live.ended() }
        let task = Task { try await worker.run() }
        defer { task.cancel() }
        let done = try await runner.waitFor(store, "batch_l", [.completed])
        #expect(done.completed == 30 && executor.state.withLock { $0.runs } == 30)
        // 100 lines/s with a burst of 5: a line every 10 ms, each taking 10 ms — never all 8 at once.
        #expect(executor.state.withLock { $0.most } < 8)
    }
}

@Suite struct ModelSlotsTests {
    @Test func aReleasedSlotGoesToAWaiterAndACancelledWaiterHoldsNone() async throws {
        let slots = ModelSlots(limit: 2)
        #expect(await slots.acquire("m"))
        #expect(await slots.acquire("m"))
        #expect(await slots.acquire("other"), "models have slots of their own")
        let third = Task { await slots.acquire("m") }
        try await Task.sleep(for: .milliseconds(30))
        let fourth = Task { await slots.acquire("m") }
        try await Task.sleep(for: .milliseconds(30))
        #expect(slots.used("m") == 2)
        slots.release("m")
        #expect(await third.value, "the released slot went to a waiter")
        #expect(slots.used("m") == 2)
        fourth.cancel()
        #expect(await fourth.value == false)
        slots.release("m")
        slots.release("m")
        #expect(slots.used("m") == 0, "the cancelled waiter took no slot")
    }
}
