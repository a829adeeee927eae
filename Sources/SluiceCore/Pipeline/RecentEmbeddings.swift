import Metrics
import Synchronization

/// The vectors of the texts an embedding deployment embedded last, for Sluice's own use: the
/// input check's denied topics and injection classifier, the semantic cache and complexity
/// routing all embed a request's last user message, and one encoder pass serves them all.
/// Exact text only; first in, first out; short texts only (a long prompt's key would cost more
/// memory than its vector, and such texts are rarely repeated).
public final class RecentEmbeddings: Sendable {
    /// Texts kept at most.
    public let capacity: Int
    /// The longest text kept, in UTF-8 bytes.
    public let maxTextBytes: Int

    private struct State {
        var vectors: [String: [Float]] = [:]
        var order: [String] = []
        var next = 0
    }
    private let state = Mutex(State())
    /// `sluice_internal_embeddings_total{model, result}`: texts whose vector was kept (`shared`)
    /// or had to be computed (`computed`), when a model name is given.
    private let shared: Counter?
    private let computed: Counter?

    public init(capacity: Int = 256, maxTextBytes: Int = 2_048, model: String? = nil) {
        self.capacity = max(1, capacity)
        self.maxTextBytes = maxTextBytes
        shared = model.map { Counter(label: "sluice_internal_embeddings_total", dimensions: [("model", $0), ("result", "shared")]) }
        computed = model.map { Counter(label: "sluice_internal_embeddings_total", dimensions: [("model", $0), ("result", "computed")]) }
    }

    /// The vector of each text, embedding only those not kept (in one call, in their order).
    public func vectors(for texts: [String], embed: ([String]) async throws -> [[Float]]) async throws -> [[Float]] {
        var out: [[Float]?] = state.withLock { s in texts.map { s.vectors[$0] } }
        let missing = out.indices.filter { out[$0] == nil }
        shared?.increment(by: Int64(texts.count - missing.count))
        guard !missing.isEmpty else { return out.map { $0! } }
        let vectors = try await embed(missing.map { texts[$0] })
        computed?.increment(by: Int64(missing.count))
        guard vectors.count == missing.count else { return try await embed(texts) }
        for (i, v) in zip(missing, vectors) { out[i] = v }
        state.withLock { s in
            for (i, v) in zip(missing, vectors) where texts[i].utf8.count <= maxTextBytes && !v.isEmpty {
                let text = texts[i]
                guard s.vectors[text] == nil else { continue }
                if s.order.count < capacity {
                    s.order.append(text)
                } else {
                    s.vectors.removeValue(forKey: s.order[s.next])
                    s.order[s.next] = text
                    s.next = (s.next + 1) % capacity
                }
                s.vectors[text] = v
            }
        }
        return out.map { $0! }
    }

    /// Texts kept now.
    public var count: Int { state.withLock { $0.vectors.count } }
}
