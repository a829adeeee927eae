import Logging
import SluiceCore
import SluiceStore
import Testing

/// The flow version store, the same on SQLite and PostgreSQL.
@Suite struct FlowVersionStoreTests {
    func stores() async throws -> [(String, any FlowVersionStore)] {
        var out: [(String, any FlowVersionStore)] = [("sqlite", SQLiteFlowVersionStore(database: try SQLiteDatabase(path: ":memory:")))]
        if let url = try await PostgresTestDatabase.fresh() {
            out.append(("postgres", PostgresFlowVersionStore(database: try await PostgresDatabase(url: url, logger: Logger(label: "test")))))
        }
        return out
    }

    @Test func versionsAreNumberedFromTwoAndActivationsKept() async throws {
        for (name, store) in try await stores() {
            let g0 = try await store.flowGeneration()
            #expect(try await store.addVersion(flow: "triage", definition: #"{"model":"a"}"#, at: 10) == 2, "\(name)")
            #expect(try await store.addVersion(flow: "triage", definition: #"{"model":"b"}"#, at: 11) == 3, "\(name)")
            #expect(try await store.addVersion(flow: "summarize", definition: #"{"model":"c"}"#, at: 12) == 2, "\(name)")
            #expect(try await store.flowGeneration() > g0, "\(name)")
            let versions = try await store.versions()
            #expect(versions.map { "\($0.flow)/\($0.version)" } == ["summarize/2", "triage/2", "triage/3"], "\(name)")
            #expect(versions.first { $0.flow == "triage" && $0.version == 3 }?.definition == #"{"model":"b"}"#, "\(name)")
            #expect(try await store.activeVersions().isEmpty, "\(name)")
            let g1 = try await store.flowGeneration()
            try await store.activate(flow: "triage", version: 3)
            try await store.activate(flow: "triage", version: 2)
            #expect(try await store.activeVersions() == ["triage": 2], "\(name)")
            #expect(try await store.flowGeneration() > g1, "\(name)")
        }
    }

    @Test func concurrentPushesTakeDistinctNumbers() async throws {
        for (name, store) in try await stores() {
            let numbers = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<20 { group.addTask { try await store.addVersion(flow: "f", definition: "{\"i\":\(i)}", at: Double(i)) } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(numbers.sorted() == Array(2...21), "\(name)")
        }
    }
}
