import Foundation
import GRDB
import GRDBSQLite
import Logging
import ServiceLifecycle
import SluiceCore
import Synchronization
import Testing
@testable import SluiceStore

@Suite struct AuditLogTests {
    func record(_ i: Int) -> AuditRecord {
        AuditRecord(
            id: "req-\(i)", time: 1_700_000_000 + Double(i), endpoint: "chat.completions", modelRequested: "m", deployment: "d",
            status: 200, errorCode: nil, latencyMs: 1.5, ttftMs: i % 2 == 0 ? 0.5 : nil, tokensIn: 10, tokensOut: 5, costUSD: 0.001,
            cacheStatus: "none", stream: i % 2 == 0, attempts: 1)
    }

    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("sluice-test-\(UUID().uuidString)/sluice.db").path
    }

    @Test func sqliteRoundTripsRows() async throws {
        let store = try SQLiteAuditLogStore(path: temporaryPath())
        try await store.append([record(1), record(2)])
        #expect(try await store.count() == 2)
        let recent = try await store.recent(limit: 10)
        #expect(recent == [record(2), record(1)])
        try await store.ping()
    }

    @Test func sqliteKeepsEveryColumnAsWritten() async throws {
        // Rows are bound through SQLite's C API: empty strings stay empty (not NULL), NULLs stay
        // NULL, and text that is not ASCII comes back byte for byte.
        let store = try SQLiteAuditLogStore(path: temporaryPath())
        let full = AuditRecord(
            id: "req-é", time: 1_700_000_000.125, endpoint: "chat.completions", keyID: "key_1", modelRequested: "模型",
            deployment: "openai/gpt-4o-mini", status: 502, errorCode: "upstream_error", latencyMs: 12.75, ttftMs: 3.5, tokensIn: 1 << 40,
            tokensOut: 0, costUSD: 0.000012345, cacheStatus: "semantic-hit", stream: true, attempts: 3, teamID: "team_9",
            details: AuditDetails(guardrailPolicy: "strict", routingScore: 0.25, traceID: "0af7651916cd43dd8448eb211c80319c"),
            requestBody: "[{\"role\":\"user\",\"content\":\"<EMAIL> 👋\"}]", responseBody: "")
        let sparse = AuditRecord(
            id: "", time: 0, endpoint: "", modelRequested: "", deployment: nil, status: 400, errorCode: nil, latencyMs: 0, ttftMs: nil,
            tokensIn: 0, tokensOut: 0, costUSD: 0, cacheStatus: "", stream: false, attempts: 0)
        try await store.append([full, sparse])
        #expect(try await store.record(id: full.id) == full)
        #expect(try await store.record(id: "") == sparse)
        let empty = try await store.record(id: full.id)?.responseBody
        #expect(empty == "")
        // A reused id replaces its row rather than failing the batch.
        var again = sparse
        again.status = 200
        try await store.append([again])
        #expect(try await store.count() == 2)
        #expect(try await store.record(id: "")?.status == 200)
    }

    @Test func aValueSQLiteRefusesFailsTheBatchInsteadOfStoringNull() async throws {
        // A body over SQLite's length limit (lowered here to 1,000 bytes) must not be written as
        // NULL as if the row had none: the batch fails, is rolled back, and nothing is kept.
        let store = try SQLiteAuditLogStore(path: temporaryPath())
        try await store.writer.write { db in _ = sqlite3_limit(db.sqliteConnection, SQLITE_LIMIT_LENGTH, 1_000) }
        var big = record(1)
        big.responseBody = String(repeating: "x", count: 5_000)
        await #expect(throws: DatabaseError.self) { try await store.append([record(2), big]) }
        #expect(try await store.count() == 0)
        // The statement is left ready: the next batch is written.
        try await store.append([record(3)])
        #expect(try await store.recent(limit: 10) == [record(3)])
    }

    @Test func reopeningKeepsRowsAndMigrationsRunOnce() async throws {
        let path = temporaryPath()
        do {
            let store = try SQLiteAuditLogStore(path: path)
            try await store.append([record(1)])
        }
        let again = try SQLiteAuditLogStore(path: path)
        #expect(try await again.count() == 1)
    }

    @Test func writerFlushesEveryRowOnShutdown() async throws {
        let store = try SQLiteAuditLogStore(path: temporaryPath())
        let writer = AuditLogWriter(store: store, config: AuditLogConfig(queueCapacity: 20_000, batchSize: 500), logger: Logger(label: "t"))
        let group = ServiceGroup(configuration: .init(services: [writer], logger: Logger(label: "t")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Submitted from many tasks at once, as requests do.
            await withTaskGroup(of: Void.self) { submitters in
                for t in 0..<10 {
                    submitters.addTask {
                        for i in 0..<1_000 { writer.submit(record(t * 1_000 + i)) }
                    }
                }
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(try await store.count() == 10_000)
        #expect(writer.dropped == 0)
        #expect(writer.backlog == 0)
    }

    @Test func batchesArePreparedAndWrittenOnTheWritersOwnThread() async throws {
        let store = InMemoryAuditLogStore()
        let threads = Mutex<Set<String>>([])
        let executor = BackgroundThreadExecutor(name: "audit-test", niceness: 0)
        let writer = AuditLogWriter(
            store: store, config: AuditLogConfig(queueCapacity: 1_000, batchSize: 100, flushIntervalMs: 1), logger: Logger(label: "t"),
            executor: executor,
            prepare: { record in
                let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?"
                threads.withLock { _ = $0.insert(name) }
                record.requestBody = "prepared"
            })
        let group = ServiceGroup(configuration: .init(services: [writer], logger: Logger(label: "t")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for i in 0..<250 { writer.submit(record(i)) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(threads.withLock { $0 } == ["audit-test\n"])
        let rows = try await store.recent(limit: 1_000)
        #expect(rows.count == 250)
        #expect(rows.allSatisfy { $0.requestBody == "prepared" })
    }

    @Test func fullQueueDropsAndCounts() async throws {
        let store = InMemoryAuditLogStore()
        let writer = AuditLogWriter(store: store, config: AuditLogConfig(queueCapacity: 10, batchSize: 4), logger: Logger(label: "t"))
        for i in 0..<15 { writer.submit(record(i)) }
        #expect(writer.dropped == 5)
        #expect(writer.backlog == 10)
        await writer.drain()
        #expect(try await store.count() == 10)
        #expect(writer.written == 10)
    }
}
