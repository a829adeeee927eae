import ArgumentParser
import Foundation
import Logging
import SluiceCore
import SluiceEmbeddings
import SluiceRetrieval
import SluiceStore

/// `sluice eval retrieval`: recall@5 and MRR@10 of keyword, vector and hybrid search over a
/// passage corpus (each passage a file in one vector store, indexed by the same ingestion as the
/// API), beside plain BM25; and the search latency and memory at a given index size.
struct RetrievalEval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieval", abstract: "Recall@5 and MRR@10 of keyword, vector and hybrid search; search latency and memory at scale.")

    @Option(help: "Passages: {\"id\", \"title\", \"text\"} per line.")
    var corpus: String?

    @Option(help: "Questions: {\"question\", \"answerable\", \"passage_ids\": [...]} per line.")
    var questions: String?

    @Option(help: "all-MiniLM-L6-v2 directory.")
    var minilm: String?

    @Option(help: "Chunks in one store for the latency run (0 skips it).")
    var indexSize = 0

    @Option(help: "Searches timed.")
    var searches = 500

    @Option(help: "Chunks embedded to time ingestion (0 skips it).")
    var ingest = 0

    @Option(help: "SQLite file for the latency run (default: a temporary file).")
    var sqlite: String?

    func run() async throws {
        var logger = Logger(label: "sluice.eval")
        logger.logLevel = .warning
        if let corpus, let questions, let minilm {
            try await quality(corpus: corpus, questions: questions, minilm: minilm, logger: logger)
        }
        if ingest > 0, let minilm, let corpus {
            try await ingestion(corpus: corpus, minilm: minilm, logger: logger)
        }
        if indexSize > 0 { try await latency(logger: logger) }
    }

    static func minilmEmbedder(_ directory: String) throws -> ChunkEmbedder {
        let encoder = try MiniLMEncoder(directory: URL(fileURLWithPath: directory))
        return ChunkEmbedder(
            model: "all-minilm-l6-v2", window: encoder.maxTokens - 2, countTokens: { encoder.tokenizer.encode($0, maxTokens: 1 << 20).count - 2 },
            embed: { texts in encoder.embed(texts) })
    }

    func quality(corpus: String, questions: String, minilm: String, logger: Logger) async throws {
        let passages = try GuardrailsEval.lines(corpus).compactMap { row -> (String, String)? in
            guard let id = row["id"] as? String, let text = row["text"] as? String else { return nil }
            let title = row["title"] as? String ?? ""
            return (id, title.isEmpty ? text : "# \(title)\n\n\(text)")
        }
        let asked = try GuardrailsEval.lines(questions).compactMap { row -> (String, Set<String>)? in
            guard let q = row["question"] as? String, row["answerable"] as? Bool ?? true, let ids = row["passage_ids"] as? [String] else { return nil }
            return (q, Set(ids))
        }
        let embedder = try Self.minilmEmbedder(minilm)
        let database = try SQLiteDatabase(path: ":memory:")
        let store = SQLiteRetrievalStore(database: database)
        let indexes = VectorIndexes()
        let ingestion = VectorStoreIngestion(store: store, indexes: indexes, embedders: [embedder.model: embedder], logger: logger)
        let vectorStore = VectorStore(
            id: "vs_eval", owner: "eval", name: "eval", createdAt: 0, lastActiveAt: 0, metadata: [:], expiresAfterDays: nil,
            embeddingModel: embedder.model, chunking: .auto)
        try await store.createVectorStore(vectorStore)
        let started = ContinuousClock.now
        for (id, text) in passages {
            try await store.insertFile(StoredFile(id: id, owner: "eval", filename: "\(id).md", purpose: .assistants, bytes: text.utf8.count, createdAt: 0), content: Array(text.utf8))
            try await store.addFile(VectorStoreFile(storeID: vectorStore.id, fileID: id, status: .inProgress, attributes: [:], chunking: .auto, createdAt: 0))
            await ingestion.index(storeID: vectorStore.id, fileID: id)
        }
        let chunks = try await store.chunkVersion(storeID: vectorStore.id).count
        print("Retrieval on \(asked.count) answerable questions (\(questions)) over \(passages.count) passages, \(chunks) chunks; indexed in \(started.formattedElapsed)")
        let search = VectorStoreSearch(store: store, indexes: indexes, embedders: [embedder.model: embedder])
        print("  method            recall@5  MRR@10")
        for mode in SearchMode.allCases {
            var ranked: [[String]] = []
            for (question, _) in asked {
                let hits = try await search.search(vectorStore, SearchQuery(texts: [question], maxResults: 30, mode: mode))
                var files: [String] = []
                for hit in hits where !files.contains(hit.fileID) { files.append(hit.fileID) }
                ranked.append(files)
            }
            print(Self.row(mode.rawValue + " (Sluice)", ranked, asked.map(\.1)))
        }
        // The graph against exact search, on these real embeddings and questions.
        var agreed = 0
        let index = indexes.index(for: vectorStore.id)
        for vector in try await embedder.vectors(asked.map(\.0)) {
            let exact = Set(index.nearestExactly(vector, k: 10))
            agreed += index.nearest(vector, k: 10).filter { exact.contains($0.seq) }.count
        }
        print(String(format: "  HNSW recall@10 against exact search on these questions: %.3f", Double(agreed) / Double(max(1, asked.count * 10))))
        let bm25 = PlainBM25(passages.map(\.1))
        let baseline = asked.map { bm25.top($0.0, k: 10).map { passages[$0].0 } }
        print(Self.row("BM25 alone", baseline, asked.map(\.1)))
    }

    static func row(_ name: String, _ ranked: [[String]], _ relevant: [Set<String>]) -> String {
        var recall = 0.0
        var mrr = 0.0
        for (list, wanted) in zip(ranked, relevant) {
            if list.prefix(5).contains(where: wanted.contains) { recall += 1 }
            if let rank = list.prefix(10).firstIndex(where: wanted.contains) { mrr += 1 / Double(rank + 1) }
        }
        let n = Double(max(1, ranked.count))
        return String(format: "  %@ %.3f     %.3f", name.padding(toLength: 17, withPad: " ", startingAt: 0), recall / n, mrr / n)
    }

    func ingestion(corpus: String, minilm: String, logger: Logger) async throws {
        let texts = try GuardrailsEval.lines(corpus).compactMap { $0["text"] as? String }.prefix(ingest)
        let embedder = try Self.minilmEmbedder(minilm)
        let chunker = embedder.chunker(.auto)
        let started = ContinuousClock.now
        let chunks = texts.flatMap { chunker.chunks([TextBlock(text: $0)]) }
        let tokens = chunks.reduce(0) { $0 + $1.tokens }
        _ = try await embedder.vectors(chunks.map(\.indexedText))
        let seconds = (ContinuousClock.now - started).seconds
        print(
            String(
                format: "Ingestion (chunk + embed with all-MiniLM-L6-v2): %d chunks, %.0f tokens each on average, in %.1f s: %.0f chunks/s, %.0f tokens/s",
                chunks.count, Double(tokens) / Double(max(1, chunks.count)), seconds, Double(chunks.count) / seconds, Double(tokens) / seconds))
    }

    /// Search latency with `indexSize` chunks in one store: MiniLM-like random vectors (queries
    /// near stored ones), 60 words per chunk drawn from a 50,000-word vocabulary by Zipf's law
    /// (the 200 most frequent standing for stop words: a query's 6 words are the chunk's others),
    /// on SQLite on disk.
    func latency(logger: Logger) async throws {
        let path = sqlite ?? FileManager.default.temporaryDirectory.appendingPathComponent("sluice-retrieval-bench-\(getpid()).sqlite").path
        defer {
            if sqlite == nil { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        }
        let database = try SQLiteDatabase(path: path)
        let store = SQLiteRetrievalStore(database: database)
        let dimensions = 384
        var generator = SplitMix(seed: 7)
        let offset = (0..<dimensions).map { _ in Float(generator.unit() - 0.5) * 0.6 }
        func sample() -> [Float] { offset.map { $0 + Float(generator.unit() - 0.5) } }
        let vocabulary = (0..<50_000).map { "w\($0)" }
        // P(rank r) ∝ 1/r.
        func rank() -> Int { min(vocabulary.count - 1, Int(exp(generator.unit() * log(Double(vocabulary.count)))) - 1) }
        func word() -> String { vocabulary[rank()] }
        let vectorStore = VectorStore(
            id: "vs_bench", owner: "bench", name: nil, createdAt: 0, lastActiveAt: 0, metadata: [:], expiresAfterDays: nil, embeddingModel: "bench",
            chunking: .auto)
        try await store.createVectorStore(vectorStore)
        let files = 100
        var kept: [([Float], String)] = []
        let writeStart = ContinuousClock.now
        for f in 0..<files {
            let id = "file-\(f)"
            try await store.insertFile(StoredFile(id: id, owner: "bench", filename: "\(id).txt", purpose: .assistants, bytes: 1, createdAt: 0), content: [0x61])
            try await store.addFile(
                VectorStoreFile(storeID: vectorStore.id, fileID: id, status: .inProgress, attributes: ["group": .int(f % 10)], chunking: .auto, createdAt: 0))
            var chunks: [StoredChunk] = []
            for i in 0..<(indexSize / files) {
                let vector = sample()
                let text = (0..<60).map { _ in word() }.joined(separator: " ")
                if i % 97 == 0 { kept.append((vector, text)) }
                chunks.append(StoredChunk(storeID: vectorStore.id, fileID: id, position: i, heading: "", page: nil, text: text, vector: vector))
            }
            _ = try await store.completeFile(storeID: vectorStore.id, fileID: id, chunks: chunks, usageBytes: 0)
        }
        let written = writeStart.formattedElapsed
        let residentBefore = Self.residentBytes()
        let indexes = VectorIndexes()
        let buildStart = ContinuousClock.now
        try await indexes.index(for: vectorStore.id).sync(store)
        let built = buildStart.formattedElapsed
        let footprint = indexes.footprint
        let residentAfter = Self.residentBytes()
        // Queries are already vectors: the embedder is an identity on the kept ones.
        let queries = kept.map { v, t in
            let content = t.split(separator: " ").filter { (Int($0.dropFirst()) ?? 0) >= 200 }
            return (v.map { $0 + Float(generator.unit() - 0.5) * 0.1 }, content.prefix(6).joined(separator: " "))
        }
        let lookup = Dictionary(queries.map { ($0.1, $0.0) }, uniquingKeysWith: { a, _ in a })
        let fallback = offset
        let embedder = ChunkEmbedder(model: "bench", window: 512, countTokens: { $0.count / 4 }, embed: { texts in texts.map { lookup[$0] ?? fallback } })
        let search = VectorStoreSearch(store: store, indexes: indexes, embedders: ["bench": embedder])
        var exactHits = 0
        for mode in [SearchMode.hybrid, .vector, .keyword] {
            var times: [Double] = []
            for i in 0..<searches {
                let (vector, text) = queries[i % queries.count]
                let t0 = ContinuousClock.now
                let hits = try await search.search(vectorStore, SearchQuery(texts: [text], maxResults: 10, mode: mode))
                times.append((ContinuousClock.now - t0).seconds * 1000)
                // The query is a stored chunk's vector moved a little: that chunk must come first.
                if mode == .vector, i < 200, let first = hits.first {
                    let exact = indexes.index(for: vectorStore.id).nearestExactly(vector, k: 1)
                    if exact.first == first.seq { exactHits += 1 }
                }
            }
            times.sort()
            func pct(_ p: Double) -> Double { times[min(times.count - 1, Int(Double(times.count) * p))] }
            print(String(format: "Search (%@), %d chunks in one store, %d searches: p50 %.2f ms, p99 %.2f ms", mode.rawValue, indexSize, searches, pct(0.5), pct(0.99)))
        }
        print(String(format: "  the planted nearest chunk found first: %.3f of %d searches", Double(exactHits) / Double(min(200, searches)), min(200, searches)))
        print(
            "  chunks written to SQLite in \(written); index built from the store in \(built); vectors and links \(footprint.bytes / 1_048_576) MiB; resident memory grew \((residentAfter - residentBefore) / 1_048_576) MiB"
        )
    }

    static func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let parts = statm.split(separator: " ")
        return parts.count > 1 ? (Int(parts[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }
}

/// Okapi BM25 (k1 1.2, b 0.75) over lower-cased words, nothing else: the baseline.
struct PlainBM25 {
    let documents: [[String: Int]]
    let lengths: [Double]
    let average: Double
    let frequency: [String: Int]

    init(_ texts: [String]) {
        documents = texts.map { text in
            var counts: [String: Int] = [:]
            for w in Self.words(text) { counts[w, default: 0] += 1 }
            return counts
        }
        lengths = documents.map { Double($0.values.reduce(0, +)) }
        average = lengths.reduce(0, +) / Double(max(1, lengths.count))
        var df: [String: Int] = [:]
        for d in documents { for w in d.keys { df[w, default: 0] += 1 } }
        frequency = df
    }

    static func words(_ text: String) -> [String] {
        text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init)
    }

    func top(_ query: String, k: Int) -> [Int] {
        let n = Double(documents.count)
        var scores = [Double](repeating: 0, count: documents.count)
        for w in Set(Self.words(query)) {
            guard let df = frequency[w] else { continue }
            let idf = log(1 + (n - Double(df) + 0.5) / (Double(df) + 0.5))
            for (i, d) in documents.enumerated() {
                guard let tf = d[w] else { continue }
                let t = Double(tf)
                scores[i] += idf * t * 2.2 / (t + 1.2 * (0.25 + 0.75 * lengths[i] / average))
            }
        }
        return scores.indices.sorted { scores[$0] > scores[$1] }.prefix(k).map { $0 }
    }
}

extension ContinuousClock.Instant {
    var formattedElapsed: String { String(format: "%.1f s", (ContinuousClock.now - self).seconds) }
}
