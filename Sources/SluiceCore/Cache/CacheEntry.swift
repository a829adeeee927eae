import NIOCore

/// An answer kept for reuse: the upstream's bytes, exactly as the client first received them.
public enum CachedAnswer: Sendable, Hashable {
    /// A whole completion's JSON.
    case completion(ByteBuffer)
    /// A stream's `data:` payloads, in order (usage chunk included).
    case stream([ByteBuffer])

    /// The kind, as stored.
    public var kind: String {
        switch self {
        case .completion: "completion"
        case .stream: "stream"
        }
    }

    /// The payload as stored: the completion's JSON, or the chunks one per line (a compact JSON
    /// chunk never holds a raw newline).
    public var storedText: String {
        switch self {
        case .completion(let bytes): String(buffer: bytes)
        case .stream(let chunks): chunks.map { String(buffer: $0) }.joined(separator: "\n")
        }
    }

    /// An answer read back from the store; nil for an unknown kind.
    public init?(kind: String, storedText: String) {
        switch kind {
        case "completion": self = .completion(ByteBuffer(string: storedText))
        case "stream": self = .stream(storedText.split(separator: "\n", omittingEmptySubsequences: true).map { ByteBuffer(string: String($0)) })
        default: return nil
        }
    }
}

/// One cached answer and what finds it.
public struct CacheEntry: Sendable, Hashable {
    /// Hex SHA-256 of the tenant scope and the normalised request: the exact-match key.
    public var key: String
    /// For the semantic cache: hex SHA-256 of the scope and everything but the last user
    /// message; a semantic hit needs the same partition. Nil when not semantically indexed.
    public var partition: String?
    /// The last user message's embedding (semantic entries only).
    public var embedding: [Float]?
    /// The last user message itself (semantic entries only): what a candidate hit's question is
    /// checked against beyond the embedding's similarity.
    public var question: String?
    public var answer: CachedAnswer
    /// The usage of the call that produced the answer: what a hit saves.
    public var promptTokens: Int
    public var completionTokens: Int
    /// Unix seconds.
    public var createdAt: Double
    public var expiresAt: Double

    public init(
        key: String, partition: String?, embedding: [Float]?, question: String? = nil, answer: CachedAnswer, promptTokens: Int, completionTokens: Int,
        createdAt: Double, expiresAt: Double
    ) {
        self.key = key
        self.partition = partition
        self.embedding = embedding
        self.question = question
        self.answer = answer
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }

    /// The embedding as stored: little-endian float32s.
    public static func encode(_ vector: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(vector.count * 4)
        for x in vector {
            let bits = x.bitPattern.littleEndian
            withUnsafeBytes(of: bits) { out.append(contentsOf: $0) }
        }
        return out
    }

    /// An embedding read back from the store.
    public static func decode(_ bytes: [UInt8]) -> [Float] {
        stride(from: 0, to: bytes.count - bytes.count % 4, by: 4).map { i in
            let bits = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
            return Float(bitPattern: bits)
        }
    }
}

/// Where cached answers persist, so that a restart or another replica finds them. The cache
/// itself lives in memory; this is its backing.
public protocol ResponseCacheStore: Sendable {
    /// Whether other processes write to it (PostgreSQL, shared by replicas). A store only this
    /// process writes (SQLite) is mirrored in memory whole, so a miss in memory is a miss and the
    /// request path never reads it.
    var isShared: Bool { get }
    /// The entry under `key`, unless it has expired by `now`.
    func entry(key: String, now: Double) async throws -> CacheEntry?
    /// Adds or replaces entries, in one transaction.
    func put(_ entries: [CacheEntry]) async throws
    /// The newest unexpired entries made after `createdAfter`, at most `limit`, newest first; with
    /// `embeddedOnly` those with an embedding only (to fill the semantic index at start-up, and to
    /// add other replicas' since), else all (to mirror a store that is not shared).
    func entries(now: Double, limit: Int, createdAfter: Double, embeddedOnly: Bool) async throws -> [CacheEntry]
    /// Deletes expired entries and all but the newest `keep`; returns how many went.
    func prune(now: Double, keep: Int) async throws -> Int
}

/// Cached answers in memory only, for tests and for `cache.persist: false`.
public actor InMemoryResponseCacheStore: ResponseCacheStore {
    private var entries: [String: CacheEntry] = [:]

    /// Shared or not, as a test needs (a shared one is read through on every miss).
    public nonisolated let isShared: Bool

    public init(isShared: Bool = false) { self.isShared = isShared }

    public func entry(key: String, now: Double) async throws -> CacheEntry? {
        guard let e = entries[key], e.expiresAt > now else { return nil }
        return e
    }

    public func put(_ entries: [CacheEntry]) async throws {
        for entry in entries { self.entries[entry.key] = entry }
    }

    public func entries(now: Double, limit: Int, createdAfter: Double, embeddedOnly: Bool) async throws -> [CacheEntry] {
        Array(
            entries.values.filter { (!embeddedOnly || $0.embedding != nil) && $0.expiresAt > now && $0.createdAt > createdAfter }
                .sorted { $0.createdAt > $1.createdAt }.prefix(limit))
    }

    public func prune(now: Double, keep: Int) async throws -> Int {
        let before = entries.count
        entries = entries.filter { $0.value.expiresAt > now }
        if entries.count > keep {
            let survivors = entries.values.sorted { $0.createdAt > $1.createdAt }.prefix(keep)
            entries = Dictionary(uniqueKeysWithValues: survivors.map { ($0.key, $0) })
        }
        return before - entries.count
    }
}
