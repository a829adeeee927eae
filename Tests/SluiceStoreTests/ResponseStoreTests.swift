import Logging
import SluiceCore
import SluiceStore
import Testing

/// The stored-response store, the same on SQLite and PostgreSQL.
@Suite struct ResponseStoreTests {
    func stores() async throws -> [(String, any ResponseStore)] {
        var out: [(String, any ResponseStore)] = [("sqlite", SQLiteResponseStore(database: try SQLiteDatabase(path: ":memory:")))]
        if let url = try await PostgresTestDatabase.fresh() {
            out.append(("postgres", PostgresResponseStore(database: try await PostgresDatabase(url: url, logger: Logger(label: "test")))))
        }
        return out
    }

    @Test func savesReadsReplacesDeletesAndPurges() async throws {
        for (name, store) in try await stores() {
            let old = StoredResponse(id: "resp_old", owner: "key:a", createdAt: 100, response: #"{"id":"resp_old"}"#, messages: "[]")
            let new = StoredResponse(id: "resp_new", owner: "team:t", createdAt: 200, response: #"{"id":"resp_new"}"#, messages: #"[{"role":"user","content":"hi"}]"#)
            try await store.save(old)
            try await store.save(new)
            let read = try await store.response(id: "resp_new")
            #expect(read == new, "\(name)")
            var changed = new
            changed.response = #"{"id":"resp_new","status":"completed"}"#
            try await store.save(changed)
            let reread = try await store.response(id: "resp_new")
            #expect(reread?.response == changed.response, "\(name)")
            let purged = try await store.purge(createdBefore: 150)
            #expect(purged == 1, "\(name)")
            let gone = try await store.response(id: "resp_old")
            #expect(gone == nil, "\(name)")
            let deleted = try await store.delete(id: "resp_new")
            let deletedAgain = try await store.delete(id: "resp_new")
            #expect(deleted && !deletedAgain, "\(name)")
        }
    }
}
