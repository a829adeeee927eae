import Collections
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import SluiceCore
import SluiceRetrieval
import SluiceStore
import Synchronization

/// The response cache: exact entries by key and semantic entries by embedding, in memory and
/// bounded by `cache.max_entries` (oldest out first), backed by the store when `cache.persist`
/// is on so that a restart or another replica finds them. As a service it prunes expired
/// entries every minute.
///
/// A store only this process writes (SQLite) is loaded whole at start-up and then mirrored:
/// new entries go to memory and, in batches, to the store, and a miss in memory is a miss, so a
/// request never waits on the database. A shared store (PostgreSQL) is read on a miss, since
/// another replica may have stored the answer.
public final class ResponseCache: Service, Sendable {
    /// Embeds the texts the semantic cache compares; nil without `cache.embedding_model`.
    public typealias Embedder = @Sendable ([String]) async throws -> [[Float]]
    /// Whether a cached question and a new one ask the same thing (`verify: model`); nil when
    /// the cache's embedding model is not in process.
    public typealias Verifier = @Sendable (_ cached: String, _ asked: String) async throws -> Bool

    private struct Memory {
        var entries: [String: CacheEntry] = [:]
        var order: Deque<String> = []
        var index: SemanticIndex
    }

    let capacity: Int
    let store: (any ResponseCacheStore)?
    let embedder: Embedder?
    let verifier: Verifier?
    let logger: Logger
    private let memory: Mutex<Memory>
    private let pruneInterval: Duration
    /// How often semantic entries other replicas stored are added to this one's index.
    private let refreshInterval: Duration
    /// The newest `created_at` this replica has read from the store.
    private let readThrough = Mutex<Double>(0)
    /// Entries on their way to the store: bounded, written in batches by `run()`, drained at shutdown.
    public let writes: BackgroundWork<CacheEntry>
    /// Whether memory holds everything the store does (a store this process alone writes, once loaded).
    private let mirrorsStore = Atomic<Bool>(false)

    public init(
        config: CacheConfig, store: (any ResponseCacheStore)?, embedder: Embedder?, verifier: Verifier? = nil, logger: Logger,
        pruneInterval: Duration = .seconds(60), refreshInterval: Duration = .seconds(2)
    ) {
        self.capacity = config.maxEntries
        self.store = config.persist ? store : nil
        self.embedder = embedder
        self.verifier = verifier
        self.logger = logger
        self.pruneInterval = pruneInterval
        self.refreshInterval = refreshInterval
        self.memory = Mutex(Memory(index: SemanticIndex(capacity: config.maxEntries)))
        let persisted = self.store
        self.writes = BackgroundWork(name: "cache writes", capacity: config.maxEntries, batchSize: 256, gather: .milliseconds(100), logger: logger) { entries in
            do { try await persisted?.put(entries) } catch {
                logger.warning("cache write to the store failed", metadata: ["error": "\(error)", "entries": "\(entries.count)"])
            }
        }
    }

    /// Start-up: a store this process alone writes is loaded whole (its newest `max_entries`);
    /// from a shared one the semantic index is filled.
    public func load(now: Double = ResponseCache.now) async throws {
        guard let store else { return }
        guard !store.isShared else {
            let added = try await refresh(now: now)
            if added > 0 { logger.info("semantic cache loaded", metadata: ["entries": "\(added)"]) }
            return
        }
        let entries = try await store.entries(now: now, limit: capacity, createdAfter: -.infinity, embeddedOnly: false)
        memory.withLock { m in
            // Oldest first, so that the oldest are the first out; entries put since start-up stay.
            for e in entries.reversed() where m.entries[e.key] == nil { Self.add(e, to: &m, capacity: capacity) }
        }
        mirrorsStore.store(true, ordering: .releasing)
        if !entries.isEmpty { logger.info("response cache loaded", metadata: ["entries": "\(entries.count)"]) }
    }

    /// Adds the semantic entries stored since the last read (other replicas'; this one's are in
    /// memory already) and answers how many were new here. Reads back a few seconds before the
    /// newest seen, since replicas' clocks and write queues differ; entries held are skipped.
    @discardableResult
    public func refresh(now: Double = ResponseCache.now) async throws -> Int {
        guard let store, store.isShared, embedder != nil else { return 0 }
        let since = readThrough.withLock { $0 } - 3
        let entries = try await store.entries(now: now, limit: capacity, createdAfter: since, embeddedOnly: true)
        guard !entries.isEmpty else { return 0 }
        readThrough.withLock { $0 = max($0, entries.map(\.createdAt).max() ?? $0) }
        return memory.withLock { m in
            var added = 0
            for e in entries.reversed() where m.entries[e.key] == nil {
                Self.add(e, to: &m, capacity: capacity)
                added += 1
            }
            return added
        }
    }

    public static var now: Double { Date().timeIntervalSince1970 }

    /// The entry under `key`, from memory or else a shared store.
    func exact(_ key: String, now: Double = ResponseCache.now) async -> CacheEntry? {
        let local = memory.withLock { m -> CacheEntry? in
            guard let e = m.entries[key] else { return nil }
            return e.expiresAt > now ? e : nil
        }
        if let local { return local }
        guard let store, !mirrorsStore.load(ordering: .acquiring) else { return nil }
        do {
            guard let e = try await store.entry(key: key, now: now) else { return nil }
            memory.withLock { Self.add(e, to: &$0, capacity: capacity) }
            return e
        } catch {
            logger.warning("cache lookup in the store failed; treated as a miss", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// The most similar entry of `partition` at or above `threshold`, and its similarity.
    func nearest(_ vector: [Float], partition: String, threshold: Double, now: Double = ResponseCache.now) -> (CacheEntry, Double)? {
        memory.withLock { m -> (CacheEntry, Double)? in
            guard let match = m.index.nearest(to: vector, partition: partition, threshold: Float(threshold), now: now) else { return nil }
            return m.entries[match.key].map { ($0, Double(match.similarity)) }
        }
    }

    /// Keeps an entry: in memory now, in the store in the background.
    func put(_ entry: CacheEntry) {
        memory.withLock { Self.add(entry, to: &$0, capacity: capacity) }
        if store != nil { writes.submit(entry) }
    }

    /// Entries held in memory.
    public var count: Int { memory.withLock { $0.entries.count } }

    private static func add(_ entry: CacheEntry, to m: inout Memory, capacity: Int) {
        if m.entries.updateValue(entry, forKey: entry.key) == nil { m.order.append(entry.key) }
        if let vector = entry.embedding, let partition = entry.partition {
            m.index.insert(key: entry.key, partition: partition, vector: vector, expiresAt: entry.expiresAt)
        }
        while m.entries.count > capacity, let oldest = m.order.popFirst() {
            m.entries.removeValue(forKey: oldest)
            m.index.remove(key: oldest)
        }
    }

    /// Drops expired entries from memory and the store, and trims the store to `capacity`.
    public func prune(now: Double = ResponseCache.now) async {
        memory.withLock { m in
            let expired = m.entries.filter { $0.value.expiresAt <= now }.map(\.key)
            guard !expired.isEmpty else { return }
            for key in expired {
                m.entries.removeValue(forKey: key)
                m.index.remove(key: key)
            }
            let gone = Set(expired)
            m.order = Deque(m.order.filter { !gone.contains($0) })
        }
        guard let store else { return }
        do { _ = try await store.prune(now: now, keep: capacity) } catch {
            logger.warning("cache prune in the store failed", metadata: ["error": "\(error)"])
        }
    }

    /// Writes entries to the store, prunes every `pruneInterval` and adds other replicas'
    /// semantic entries every `refreshInterval`, until graceful shutdown; then finishes the writes
    /// already queued.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.writes.run() }
            if store?.isShared == true && embedder != nil {
                group.addTask {
                    while !Task.isShuttingDownGracefully && !Task.isCancelled {
                        do { try await gracefulShutdownSleep(for: self.refreshInterval) } catch { return }
                        do { try await self.refresh() } catch {
                            self.logger.warning("semantic cache refresh from the store failed", metadata: ["error": "\(error)"])
                        }
                    }
                }
            }
            group.addTask {
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    do { try await gracefulShutdownSleep(for: self.pruneInterval) } catch { return }
                    await self.prune()
                }
            }
        }
    }
}
