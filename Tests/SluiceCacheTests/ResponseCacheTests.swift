import Logging
import NIOCore
import ServiceLifecycle
import SluiceCore
import SluiceStore
import Synchronization
import Testing
@testable import SluiceCache

/// The response cache over its store: a store only this process writes is loaded whole and a miss
/// never reads it; a shared one is read on every miss; new entries reach the store in batches,
/// all of them by graceful shutdown.
@Suite struct ResponseCacheTests {
    /// A store that counts what the cache asks of it.
    final class CountingStore: ResponseCacheStore {
        let inner: InMemoryResponseCacheStore
        let lookups = Atomic<Int>(0)
        let batches = Mutex<[Int]>([])
        var isShared: Bool { inner.isShared }

        init(isShared: Bool) { inner = InMemoryResponseCacheStore(isShared: isShared) }

        func entry(key: String, now: Double) async throws -> CacheEntry? {
            lookups.add(1, ordering: .relaxed)
            return try await inner.entry(key: key, now: now)
        }
        func put(_ entries: [CacheEntry]) async throws {
            batches.withLock { $0.append(entries.count) }
            try await inner.put(entries)
        }
        func entries(now: Double, limit: Int, createdAfter: Double, embeddedOnly: Bool) async throws -> [CacheEntry] {
            try await inner.entries(now: now, limit: limit, createdAfter: createdAfter, embeddedOnly: embeddedOnly)
        }
        func prune(now: Double, keep: Int) async throws -> Int { try await inner.prune(now: now, keep: keep) }
    }

    static func entry(_ key: String, created: Double = 1) -> CacheEntry {
        CacheEntry(
            key: key, partition: nil, embedding: nil, answer: .completion(ByteBuffer(string: #"{"id":"\#(key)"}"#)), promptTokens: 1,
            completionTokens: 1, createdAt: created, expiresAt: 1e12)
    }

    static func cache(_ store: CountingStore, maxEntries: Int = 100) -> ResponseCache {
        ResponseCache(config: CacheConfig(maxEntries: maxEntries), store: store, embedder: nil, logger: Logger(label: "test"))
    }

    @Test func aStoreOnlyThisProcessWritesIsLoadedWholeAndNeverReadOnAMiss() async throws {
        let store = CountingStore(isShared: false)
        try await store.inner.put([Self.entry("old", created: 1), Self.entry("new", created: 2)])
        let cache = Self.cache(store)
        try await cache.load()
        #expect(cache.count == 2)
        #expect(await cache.exact("old") != nil)
        #expect(await cache.exact("absent") == nil)
        #expect(store.lookups.load(ordering: .relaxed) == 0, "answered from memory, hit and miss alike")
    }

    @Test func loadingKeepsTheNewestWhenTheStoreHoldsMoreThanFits() async throws {
        let store = CountingStore(isShared: false)
        try await store.inner.put((0..<5).map { Self.entry("e\($0)", created: Double($0)) })
        let cache = Self.cache(store, maxEntries: 3)
        try await cache.load()
        #expect(cache.count == 3)
        #expect(await cache.exact("e4") != nil)
        #expect(await cache.exact("e1") == nil)
        // The oldest of those loaded is the first out.
        cache.put(Self.entry("e5", created: 5))
        #expect(await cache.exact("e2") == nil)
        #expect(await cache.exact("e3") != nil)
    }

    @Test func aSharedStoreIsReadOnAMiss() async throws {
        let store = CountingStore(isShared: true)
        let cache = Self.cache(store)
        try await cache.load()
        // Another replica stores an entry after this one started.
        try await store.inner.put([Self.entry("theirs")])
        #expect(await cache.exact("theirs") != nil)
        #expect(store.lookups.load(ordering: .relaxed) == 1)
        #expect(await cache.exact("theirs") != nil, "kept in memory once read")
        #expect(store.lookups.load(ordering: .relaxed) == 1)
        #expect(await cache.exact("absent") == nil)
        #expect(store.lookups.load(ordering: .relaxed) == 2)
    }

    @Test func newEntriesReachTheStoreInBatchesAndAllByShutdown() async throws {
        let store = CountingStore(isShared: false)
        let cache = Self.cache(store, maxEntries: 1_000)
        try await cache.load()
        // Queued before the writer runs: they gather into batches.
        for i in 0..<600 { cache.put(Self.entry("k\(i)")) }
        let group = ServiceGroup(configuration: .init(services: [cache], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let batches = store.batches.withLock { $0 }
        #expect(batches.reduce(0, +) == 600)
        #expect(batches.count < 600 / 100, "written many to a transaction, not one by one")
        #expect(try await store.inner.entries(now: 0, limit: 10_000, createdAfter: -1, embeddedOnly: false).count == 600)
    }
}
