import Foundation
import NIOConcurrencyHelpers
import SluiceCore

/// One vector store's chunks in this replica's memory: an HNSW graph over their embeddings, and
/// which file each chunk came from (for filters). Built from the store on first use and kept
/// current by `sync`: new chunks (by seq) are added, removed ones taken out of results; past a
/// third removed, the graph is rebuilt. Every replica keeps its own, so all see every file.
public final class VectorIndex: Sendable {
    struct State: Sendable {
        /// Made with the first chunk (its vector length is the model's).
        var graph = HNSWGraph(dimensions: 0)
        var seqs: [Int64] = []
        var nodes: [Int64: Int32] = [:]
        /// File number per node, into `files`.
        var fileOfNode: [Int32] = []
        var files: [String] = []
        var fileNumbers: [String: Int32] = [:]
        var maxSeq: Int64 = 0
        /// The store's generation the index last caught up with.
        var generation: Int64 = -1
    }

    public let storeID: String
    private let state = NIOLockedValueBox(State())
    /// The catch-up under way, if any.
    private let running = NIOLockedValueBox<Task<Void, any Error>?>(nil)

    public init(storeID: String) { self.storeID = storeID }

    /// Live chunks indexed.
    public var count: Int { state.withLockedValue { $0.graph.liveCount } }

    /// Bytes the vectors and links take, roughly (for the memory report).
    public var approximateBytes: Int {
        state.withLockedValue { s in s.graph.count * (s.graph.dimensions * 4 + s.graph.m * 2 * 4 + 8 + 16 + 4) }
    }

    /// Adds chunks (with vectors) just written by this replica, ahead of the next sync.
    public func add(_ chunks: [StoredChunk]) {
        state.withLockedValue { s in
            for chunk in chunks where s.nodes[chunk.seq] == nil && !chunk.vector.isEmpty {
                if s.graph.count == 0 && s.graph.dimensions != chunk.vector.count { s.graph = HNSWGraph(dimensions: chunk.vector.count) }
                guard chunk.vector.count == s.graph.dimensions else { continue }
                Self.insert(chunk, into: &s)
            }
        }
    }

    /// Takes a file's chunks out of results (they are gone from the store).
    public func remove(fileID: String) {
        state.withLockedValue { s in
            guard let number = s.fileNumbers[fileID] else { return }
            for (node, file) in s.fileOfNode.enumerated() where file == number { s.graph.remove(Int32(node)) }
        }
    }

    private static func insert(_ chunk: StoredChunk, into s: inout State) {
        let number: Int32
        if let n = s.fileNumbers[chunk.fileID] {
            number = n
        } else {
            number = Int32(s.files.count)
            s.files.append(chunk.fileID)
            s.fileNumbers[chunk.fileID] = number
        }
        let node = s.graph.insert(chunk.vector)
        s.seqs.append(chunk.seq)
        s.nodes[chunk.seq] = node
        s.fileOfNode.append(number)
        s.maxSeq = max(s.maxSeq, chunk.seq)
    }

    /// Brings the index up to the store: adds chunks written since (by any replica), drops
    /// removed ones. One key lookup when nothing changed. One catch-up runs at a time: a caller
    /// that finds one running waits for it and looks again — unless the index already holds
    /// chunks, when it searches what is there rather than wait for a long build.
    public func sync(_ store: any RetrievalStore) async throws {
        while true {
            let generation = try await store.generation(storeID: storeID)
            if state.withLockedValue({ $0.generation == generation }) { return }
            let (task, started) = running.withLockedValue { running -> (Task<Void, any Error>, Bool) in
                if let task = running { return (task, false) }
                let task = Task { try await self.catchUp(store, generation: generation) }
                running = task
                return (task, true)
            }
            if started {
                defer { running.withLockedValue { $0 = nil } }
                try await task.value
                return
            }
            if count > 0 { return }
            try? await task.value
        }
    }

    private func catchUp(_ store: any RetrievalStore, generation: Int64) async throws {
        var after = state.withLockedValue { $0.maxSeq }
        while true {
            try Task.checkCancellation()
            let batch = try await store.chunks(storeID: storeID, after: after, limit: 2000)
            guard let last = batch.last else { break }
            add(batch)
            after = last.seq
        }
        let version = try await store.chunkVersion(storeID: storeID)
        if state.withLockedValue({ $0.graph.liveCount }) != version.count {
            // Some were removed, or committed out of seq order on another replica: compare seqs.
            let present = try await store.chunkSeqs(storeID: storeID)
            let presentSet = Set(present)
            let missing = state.withLockedValue { s -> [Int64] in
                for (node, seq) in s.seqs.enumerated() where !presentSet.contains(seq) { s.graph.remove(Int32(node)) }
                return present.filter { s.nodes[$0] == nil }
            }
            if !missing.isEmpty { add(try await store.chunks(seqs: missing, vectors: true)) }
            rebuildIfSparse()
        }
        // Changes made while this ran have a later generation: the next search catches up again.
        state.withLockedValue { $0.generation = generation }
    }

    /// Rebuilds the graph without removed nodes once they are a third of it.
    private func rebuildIfSparse() {
        state.withLockedValue { s in
            guard s.graph.removedCount * 3 > s.graph.count, s.graph.count > 0 else { return }
            let dimensions = s.graph.dimensions
            var fresh = State(graph: HNSWGraph(dimensions: dimensions))
            for node in 0..<s.graph.count where !s.graph.removed[node] {
                let vector = Array(s.graph.vectors[(node * dimensions)..<((node + 1) * dimensions)])
                Self.insert(
                    StoredChunk(seq: s.seqs[node], storeID: storeID, fileID: s.files[Int(s.fileOfNode[node])], position: 0, heading: "", page: nil, text: "", vector: vector),
                    into: &fresh)
            }
            fresh.maxSeq = s.maxSeq
            fresh.generation = s.generation
            s = fresh
        }
    }

    /// The chunks most similar to `vector` (seq and cosine similarity), best first, from the
    /// files `allow` admits (all when nil). A filter that admits few chunks is searched exactly.
    public func nearest(_ vector: [Float], k: Int, ef: Int = 96, allowFiles: Set<String>? = nil) -> [(seq: Int64, similarity: Float)] {
        state.withLockedValue { s in
            guard vector.count == s.graph.dimensions else { return [] }
            var found: [(similarity: Float, node: Int32)]
            if let allowFiles {
                let numbers = Set(allowFiles.compactMap { s.fileNumbers[$0] })
                let files = s.fileOfNode
                let admitted = files.indices.filter { numbers.contains(files[$0]) }
                let share = Double(admitted.count) / Double(max(1, files.count))
                if share < 0.2 {
                    found = s.graph.exhaustive(vector, k: k, among: admitted.map { Int32($0) })
                } else {
                    found = s.graph.search(vector, k: k, ef: Int(Double(max(ef, k)) / share), allow: { numbers.contains(files[Int($0)]) })
                }
            } else {
                found = s.graph.search(vector, k: k, ef: max(ef, k))
            }
            return found.map { (seq: s.seqs[Int($0.node)], similarity: $0.similarity) }
        }
    }

    /// The exact `k` nearest (every live chunk compared): what the graph's answers are checked against.
    public func nearestExactly(_ vector: [Float], k: Int) -> [Int64] {
        state.withLockedValue { s in
            guard vector.count == s.graph.dimensions else { return [] }
            return s.graph.exhaustive(vector, k: k, among: (0..<Int32(s.graph.count))).map { s.seqs[Int($0.node)] }
        }
    }

    /// Cosine similarity of `vector` to each chunk named (nil for one this index does not hold).
    public func similarities(_ vector: [Float], seqs: [Int64]) -> [Int64: Float] {
        state.withLockedValue { s in
            var out: [Int64: Float] = [:]
            guard vector.count == s.graph.dimensions else { return out }
            for seq in seqs { if let node = s.nodes[seq], !s.graph.removed[Int(node)] { out[seq] = s.graph.similarity(vector, to: node) } }
            return out
        }
    }

    /// The file a chunk came from.
    public func file(of seq: Int64) -> String? {
        state.withLockedValue { s in s.nodes[seq].map { s.files[Int(s.fileOfNode[Int($0)])] } }
    }
}

/// Every store's index in this replica, made on first use.
public final class VectorIndexes: Sendable {
    private let indexes = NIOLockedValueBox<[String: VectorIndex]>([:])

    public init() {}

    public func index(for storeID: String) -> VectorIndex {
        indexes.withLockedValue { all in
            if let index = all[storeID] { return index }
            let index = VectorIndex(storeID: storeID)
            all[storeID] = index
            return index
        }
    }

    public func drop(storeID: String) { _ = indexes.withLockedValue { $0.removeValue(forKey: storeID) } }

    public func dropFile(_ fileID: String, stores: [String]) {
        let found = indexes.withLockedValue { all in stores.compactMap { all[$0] } }
        for index in found { index.remove(fileID: fileID) }
    }

    /// Chunks and approximate bytes across every index held.
    public var footprint: (chunks: Int, bytes: Int) {
        let all = indexes.withLockedValue { Array($0.values) }
        return all.reduce((0, 0)) { ($0.0 + $1.count, $0.1 + $1.approximateBytes) }
    }
}
