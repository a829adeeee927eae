import Foundation
import Logging
import ServiceLifecycle
import SluiceCore
import Synchronization
import Testing
@testable import SluiceStore

@Suite struct RequestLogTests {
    func record(_ i: Int) -> RequestRecord {
        RequestRecord(
            id: "req-\(i)", time: 1_700_000_000 + Double(i), endpoint: "chat.completions", modelRequested: "m", deployment: "d",
            status: 200, errorCode: nil, latencyMs: 1.5, ttftMs: i % 2 == 0 ? 0.5 : nil, tokensIn: 10, tokensOut: 5, costUSD: 0.001,
            cacheStatus: "none", stream: i % 2 == 0, attempts: 1)
    }

    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("sluice-test-\(UUID().uuidString)/sluice.db").path
    }

    @Test func sqliteRoundTripsRows() async throws {
        let store = try SQLiteRequestLogStore(path: temporaryPath())
        try await store.append([record(1), record(2)])
        #expect(try await store.count() == 2)
        let recent = try await store.recent(limit: 10)
        #expect(recent == [record(2), record(1)])
        try await store.ping()
    }

    @Test func reopeningKeepsRowsAndMigrationsRunOnce() async throws {
        let path = temporaryPath()
        do {
            let store = try SQLiteRequestLogStore(path: path)
            try await store.append([record(1)])
        }
        let again = try SQLiteRequestLogStore(path: path)
        #expect(try await again.count() == 1)
    }

    @Test func writerFlushesEveryRowOnShutdown() async throws {
        let store = try SQLiteRequestLogStore(path: temporaryPath())
        let writer = RequestLogWriter(store: store, config: AuditLogConfig(queueCapacity: 20_000, batchSize: 500), logger: Logger(label: "t"))
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
        let store = InMemoryRequestLogStore()
        let threads = Mutex<Set<String>>([])
        let executor = BackgroundThreadExecutor(name: "audit-test", niceness: 0)
        let writer = RequestLogWriter(
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
        let store = InMemoryRequestLogStore()
        let writer = RequestLogWriter(store: store, config: AuditLogConfig(queueCapacity: 10, batchSize: 4), logger: Logger(label: "t"))
        for i in 0..<15 { writer.submit(record(i)) }
        #expect(writer.dropped == 5)
        #expect(writer.backlog == 10)
        await writer.drain()
        #expect(try await store.count() == 10)
        #expect(writer.written == 10)
    }
}
