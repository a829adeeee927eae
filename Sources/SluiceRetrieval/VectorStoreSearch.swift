import Foundation
import SluiceCore

/// What embeds a vector store's chunks and queries: an embedding model entry, the number of its
/// tokens it reads, and how it counts them (chunks are sized in them).
public struct ChunkEmbedder: Sendable {
    public var model: String
    /// Tokens the model reads; a longer chunk is embedded as the mean of window-sized pieces.
    public var window: Int
    public var countTokens: @Sendable (String) -> Int
    public var embed: @Sendable ([String]) async throws -> [[Float]]
    /// Texts per call.
    public var batchSize: Int

    public init(
        model: String, window: Int, batchSize: Int = 32, countTokens: @escaping @Sendable (String) -> Int,
        embed: @escaping @Sendable ([String]) async throws -> [[Float]]
    ) {
        self.model = model
        self.window = max(16, window)
        self.batchSize = max(1, batchSize)
        self.countTokens = countTokens
        self.embed = embed
    }

    /// The chunker a store's strategy means with this model: `auto` is OpenAI's 800 tokens with
    /// 400 overlap when the model reads that much; a smaller window makes chunks its size with a
    /// quarter of it overlapping (halving would embed every token twice).
    public func chunker(_ strategy: ChunkingStrategy) -> Chunker {
        switch strategy {
        case .auto:
            let size = min(800, window)
            return Chunker(maxTokens: size, overlapTokens: size >= 800 ? 400 : size / 4, countTokens: countTokens)
        case .fixed(let size, let overlap):
            return Chunker(maxTokens: size, overlapTokens: overlap, countTokens: countTokens)
        }
    }

    /// Embeds texts in batches; one longer than the window is the normalised mean of its pieces.
    public func vectors(_ texts: [String], progress: (@Sendable (Int) -> Void)? = nil) async throws -> [[Float]] {
        var pieces: [(text: String, owner: Int, tokens: Int)] = []
        let splitter = Chunker(maxTokens: window, overlapTokens: 0, countTokens: countTokens)
        for (i, text) in texts.enumerated() {
            let tokens = countTokens(text)
            if tokens <= window {
                pieces.append((text, i, tokens))
            } else {
                for chunk in splitter.chunks([TextBlock(text: text)]) { pieces.append((chunk.text, i, chunk.tokens)) }
            }
        }
        // Batches of similar lengths: a batch is padded to its longest text.
        pieces.sort { $0.tokens < $1.tokens }
        var sums = [[Float]](repeating: [], count: texts.count)
        var done = 0
        for start in stride(from: 0, to: pieces.count, by: batchSize) {
            try Task.checkCancellation()
            let end = min(start + batchSize, pieces.count)
            let vectors = try await embed(pieces[start..<end].map(\.text))
            guard vectors.count == end - start else {
                throw SluiceError(.upstreamBadResponse, "The embedding model \(model) answered \(vectors.count) vectors for \(end - start) texts.")
            }
            for (j, vector) in vectors.enumerated() {
                let i = pieces[start + j].owner
                let unit = VectorMath.normalised(vector)
                if sums[i].isEmpty { sums[i] = unit } else if sums[i].count == unit.count { for d in unit.indices { sums[i][d] += unit[d] } }
            }
            done = end
            progress?(done)
        }
        return sums.map { VectorMath.normalised($0) }
    }
}

/// How a search ranks: both retrievers fused (the default), embeddings alone, or BM25 alone.
public enum SearchMode: String, Sendable, CaseIterable {
    case hybrid, vector, keyword
}

/// A search of one vector store.
public struct SearchQuery: Sendable {
    /// One or more queries; their rankings are fused.
    public var texts: [String]
    public var maxResults: Int
    public var filter: AttributeFilter?
    /// Results below this cosine similarity are left out.
    public var scoreThreshold: Double?
    public var mode: SearchMode

    public init(texts: [String], maxResults: Int = 10, filter: AttributeFilter? = nil, scoreThreshold: Double? = nil, mode: SearchMode = .hybrid) {
        self.texts = texts
        self.maxResults = maxResults
        self.filter = filter
        self.scoreThreshold = scoreThreshold
        self.mode = mode
    }
}

/// One retrieved chunk.
public struct SearchHit: Sendable, Hashable {
    public var seq: Int64
    public var fileID: String
    public var filename: String
    /// Cosine similarity of the chunk to the (closest) query, whatever ranked it.
    public var score: Double
    public var attributes: [String: JSONValue]
    public var text: String
    public var heading: String
    public var position: Int
    public var page: Int?
}

/// Hybrid search over a vector store: the HNSW index in memory for meaning, the database's
/// full-text index (BM25) for words, fused by reciprocal rank. Every score reported is the
/// chunk's cosine similarity to the query, so `score_threshold` means one thing in every mode.
public struct VectorStoreSearch: Sendable {
    public let store: any RetrievalStore
    public let indexes: VectorIndexes
    public let embedders: [String: ChunkEmbedder]

    public init(store: any RetrievalStore, indexes: VectorIndexes, embedders: [String: ChunkEmbedder]) {
        self.store = store
        self.indexes = indexes
        self.embedders = embedders
    }

    public func search(_ vectorStore: VectorStore, _ query: SearchQuery) async throws -> [SearchHit] {
        guard let embedder = embedders[vectorStore.embeddingModel] else {
            throw SluiceError(
                .unsupported, "Vector store \(vectorStore.id) was embedded with '\(vectorStore.embeddingModel)', which is no longer configured.")
        }
        let texts = query.texts.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        guard !texts.isEmpty else { return [] }
        let index = indexes.index(for: vectorStore.id)
        try await index.sync(store)
        var allow: Set<String>?
        if let filter = query.filter {
            var admitted: Set<String> = []
            var page = ListPage(limit: 1000, ascending: true)
            while true {
                let entries = try await store.storeFiles(storeID: vectorStore.id, batchID: nil, status: .completed, page: page)
                for entry in entries.prefix(page.limit) where filter.matches(entry.attributes) { admitted.insert(entry.fileID) }
                guard entries.count > page.limit, let last = entries.prefix(page.limit).last else { break }
                page.after = last.fileID
            }
            allow = admitted
            if admitted.isEmpty { return [] }
        }
        let depth = max(query.maxResults * 4, 40)
        let vectors = try await embedder.vectors(texts)
        // The database ranks keywords while this thread walks the graph.
        let store = self.store
        let storeID = vectorStore.id
        async let keywordLists = Self.keywordLists(store, storeID: storeID, texts: query.mode == .vector ? [] : texts, limit: depth * 2)
        var lists: [[Int64]] = []
        if query.mode != .keyword {
            for vector in vectors { lists.append(index.nearest(vector, k: depth, allowFiles: allow).map(\.seq)) }
        }
        for found in try await keywordLists {
            // Only chunks this index holds (and so knows the file of) can pass a filter.
            lists.append(found.map(\.seq).filter { seq in index.file(of: seq).map { allow?.contains($0) ?? true } ?? false }.prefix(depth).map { $0 })
        }
        let fused = RankFusion.reciprocal(lists).map(\.id)
        var similarity: [Int64: Float] = [:]
        for vector in vectors {
            for (seq, s) in index.similarities(vector, seqs: fused) { similarity[seq] = max(similarity[seq] ?? -1, s) }
        }
        var chosen: [(Int64, Double)] = []
        for seq in fused {
            guard let s = similarity[seq] else { continue }
            if let threshold = query.scoreThreshold, Double(s) < threshold { continue }
            chosen.append((seq, Double(s)))
            if chosen.count == query.maxResults { break }
        }
        let chunks = Dictionary(uniqueKeysWithValues: try await store.chunks(seqs: chosen.map(\.0), vectors: false).map { ($0.seq, $0) })
        var hits: [SearchHit] = []
        for (seq, score) in chosen {
            // A chunk whose file was removed meanwhile has no name or entry: it is left out.
            guard let chunk = chunks[seq], let filename = chunk.filename, let attributes = chunk.attributes else { continue }
            hits.append(
                SearchHit(
                    seq: seq, fileID: chunk.fileID, filename: filename, score: score, attributes: attributes, text: chunk.text, heading: chunk.heading,
                    position: chunk.position, page: chunk.page))
        }
        return hits
    }

    static func keywordLists(_ store: any RetrievalStore, storeID: String, texts: [String], limit: Int) async throws -> [[(seq: Int64, score: Double)]] {
        var out: [[(seq: Int64, score: Double)]] = []
        for text in texts { out.append(try await store.keywordSearch(storeID: storeID, terms: terms(text), limit: limit)) }
        return out
    }

    static let stopwords: Set<String> = [
        "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "by", "for", "with", "from", "as", "is", "are", "was", "were",
        "be", "been", "being", "do", "does", "did", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "that", "this",
        "these", "those", "it", "its", "i", "you", "he", "she", "we", "they", "me", "my", "your", "his", "her", "our", "their", "there",
        "can", "could", "would", "should", "will", "shall", "may", "might", "must", "have", "has", "had", "not", "no", "so", "if", "than",
        "then", "into", "about", "over", "after", "before", "up", "down", "out", "off", "also", "just", "only", "very", "any", "some",
    ]

    /// The words of a query worth matching: letters and digits, lower-cased, stop words dropped.
    public static func terms(_ text: String) -> [String] {
        var seen: Set<String> = []
        var out: [String] = []
        for word in text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }) {
            let w = String(word)
            guard !stopwords.contains(w), seen.insert(w).inserted else { continue }
            out.append(w)
            if out.count == 32 { break }
        }
        return out
    }
}

extension VectorStoreSearch: PassageRetriever {
    /// A flow's passages: the best `top_k` chunks at or above `min_score`, numbered from 1.
    public func passages(_ spec: FlowConfig.Retrieval, query: String) async throws -> [RetrievedPassage] {
        guard let vectorStore = try await store.vectorStore(id: spec.vectorStore) else {
            throw SluiceError(.notFound, "The flow's vector store '\(spec.vectorStore)' does not exist (retrieval.vector_store).")
        }
        let hits = try await search(
            vectorStore,
            SearchQuery(texts: [query], maxResults: spec.topK, scoreThreshold: spec.minScore, mode: SearchMode(rawValue: spec.mode) ?? .hybrid))
        return hits.enumerated().map { i, hit in
            RetrievedPassage(n: i + 1, fileID: hit.fileID, filename: hit.filename, text: hit.text, score: hit.score)
        }
    }
}
