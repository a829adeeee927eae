import Logging
import SluiceCore
import SluiceStore
import Testing

/// The conversation store, the same on SQLite and PostgreSQL.
@Suite struct ConversationStoreTests {
    func stores() async throws -> [(String, any ConversationStore)] {
        var out: [(String, any ConversationStore)] = [("sqlite", SQLiteConversationStore(database: try SQLiteDatabase(path: ":memory:")))]
        if let url = try await PostgresTestDatabase.fresh() {
            out.append(("postgres", PostgresConversationStore(database: try await PostgresDatabase(url: url, logger: Logger(label: "test")))))
        }
        return out
    }

    func item(_ id: String, _ role: ChatMessage.Role = .user) -> ConversationItem { ConversationItem(id: id, role: role, text: "text \(id)", createdAt: 1) }

    @Test func itemsKeepOneOrderAndPage() async throws {
        for (name, store) in try await stores() {
            try await store.create(Conversation(id: "c1", owner: "team:t", createdAt: 5, metadata: ["topic": "tides"]), items: [item("m1"), item("m2", .assistant)])
            #expect(try await store.conversation(id: "c1") == Conversation(id: "c1", owner: "team:t", createdAt: 5, metadata: ["topic": "tides"]), "\(name)")
            #expect(try await store.conversation(id: "c1")?.summary == nil, "\(name)")
            let appended = try await store.append(id: "c1", [item("m3"), item("m4", .assistant)])
            #expect(appended.map(\.sequence) == [3, 4], "\(name)")
            #expect(try await store.items(id: "c1", after: nil, limit: 10, newestFirst: false).map(\.id) == ["m1", "m2", "m3", "m4"], "\(name)")
            #expect(try await store.items(id: "c1", after: nil, limit: 3, newestFirst: true).map(\.id) == ["m4", "m3", "m2"], "\(name)")
            #expect(try await store.items(id: "c1", after: "m2", limit: 10, newestFirst: false).map(\.id) == ["m3", "m4"], "\(name)")
            #expect(try await store.items(id: "c1", after: "m3", limit: 10, newestFirst: true).map(\.id) == ["m2", "m1"], "\(name)")
            #expect(try await store.items(id: "c1", after: nil, limit: 10, newestFirst: false).map(\.role) == [.user, .assistant, .user, .assistant], "\(name)")
            try await store.setSummary(id: "c1", "they met", through: 2)
            try await store.setSummary(id: "c1", "an older summary", through: 1)
            let summarized = try await store.conversation(id: "c1")
            #expect(summarized?.summary == "they met" && summarized?.summarizedThrough == 2, "\(name): a summary never goes back")
            try await store.updateMetadata(id: "c1", ["topic": "waves"])
            #expect(try await store.conversation(id: "c1")?.metadata == ["topic": "waves"], "\(name)")
            // Retention: items older than the cut-off go, newer ones stay.
            _ = try await store.append(id: "c1", [ConversationItem(id: "late", role: .user, text: "late", createdAt: 100)])
            #expect(try await store.purge(itemsBefore: 50) == 4, "\(name)")
            #expect(try await store.items(id: "c1", after: nil, limit: 10, newestFirst: false).map(\.id) == ["late"], "\(name)")
            #expect(try await store.delete(id: "c1"), "\(name)")
            #expect(try await store.conversation(id: "c1") == nil, "\(name)")
            #expect(try await store.items(id: "c1", after: nil, limit: 10, newestFirst: false).isEmpty, "\(name)")
            #expect(try await store.delete(id: "c1") == false, "\(name)")
        }
    }

    /// 50 turns at once: none lost, one order, each turn's question and answer side by side.
    @Test func concurrentTurnsStayWholeAndOrdered() async throws {
        for (name, store) in try await stores() {
            try await store.create(Conversation(id: "busy", owner: "", createdAt: 0, metadata: [:]), items: [])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<50 {
                    group.addTask { _ = try await store.append(id: "busy", [self.item("q\(i)"), self.item("a\(i)", .assistant)]) }
                }
                try await group.waitForAll()
            }
            let all = try await store.items(id: "busy", after: nil, limit: 1000, newestFirst: false)
            #expect(all.count == 100, "\(name)")
            #expect(all.map(\.sequence) == Array(1...100), "\(name)")
            for pair in stride(from: 0, to: all.count, by: 2) {
                #expect(all[pair].id.dropFirst() == all[pair + 1].id.dropFirst() && all[pair].id.hasPrefix("q"), "\(name): \(all[pair].id) \(all[pair + 1].id)")
            }
        }
    }
}
