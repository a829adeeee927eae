import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle
import SluiceCore

/// Indexes files added to vector stores, in the background and one file at a time (the
/// embedding model already uses every core): reads the file from the store, extracts its text,
/// chunks it, embeds the chunks in batches and writes them with the file's `completed` status in
/// one transaction — so a file is never half-indexed. Files still `in_progress` when Sluice
/// starts (it stopped mid-file) are indexed again from the start.
public final class VectorStoreIngestion: Service, Sendable {
    struct Job: Sendable, Hashable {
        var storeID: String
        var fileID: String
    }

    /// How far a file's embedding got.
    public struct Progress: Sendable, Hashable {
        public var chunksEmbedded: Int
        public var chunksTotal: Int
    }

    let store: any RetrievalStore
    let indexes: VectorIndexes
    let embedders: [String: ChunkEmbedder]
    let pdftotext: String
    let logger: Logger
    private let jobs: AsyncStream<Job>
    private let queue: AsyncStream<Job>.Continuation
    private let progress = NIOLockedValueBox<[Job: Progress]>([:])
    private let indexed = Counter(label: "sluice_retrieval_chunks_indexed_total")
    private let failedFiles = Counter(label: "sluice_retrieval_files_failed_total")

    public init(store: any RetrievalStore, indexes: VectorIndexes, embedders: [String: ChunkEmbedder], pdftotext: String = "pdftotext", logger: Logger) {
        self.store = store
        self.indexes = indexes
        self.embedders = embedders
        self.pdftotext = pdftotext
        self.logger = logger
        (jobs, queue) = AsyncStream.makeStream(of: Job.self)
    }

    /// Queues a file already recorded `in_progress` in the store.
    public func submit(storeID: String, fileID: String) {
        queue.yield(Job(storeID: storeID, fileID: fileID))
    }

    /// The file's progress while it is being embedded.
    public func progress(storeID: String, fileID: String) -> Progress? {
        progress.withLockedValue { $0[Job(storeID: storeID, fileID: fileID)] }
    }

    public func run() async throws {
        do {
            for entry in try await store.pendingFiles() { submit(storeID: entry.storeID, fileID: entry.fileID) }
        } catch {
            logger.error("cannot list the files left in progress", metadata: ["error": "\(error)"])
        }
        let queue = self.queue
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                // Every store's index is built at start, beside the queue, so that a first search
                // does not wait for it (a search meanwhile uses what is built so far).
                group.addTask { await self.warmIndexes() }
                for await job in jobs {
                    if Task.isCancelled || Task.isShuttingDownGracefully { break }
                    await index(job)
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            queue.finish()
        }
    }

    private func warmIndexes() async {
        do {
            for id in try await store.vectorStoreIDs() {
                if Task.isCancelled { return }
                let started = ContinuousClock.now
                try await indexes.index(for: id).sync(store)
                let seconds = (ContinuousClock.now - started).seconds
                if seconds > 1 {
                    logger.info("vector store index built", metadata: ["vector_store": "\(id)", "seconds": "\(String(format: "%.1f", seconds))"])
                }
            }
        } catch {
            logger.warning("vector store indexes not built at start (the first search builds its own)", metadata: ["error": "\(error)"])
        }
    }

    /// Runs one file to its end (tests and tools call it directly).
    public func index(storeID: String, fileID: String) async {
        await index(Job(storeID: storeID, fileID: fileID))
    }

    private func index(_ job: Job) async {
        let logger = self.logger.with(["vector_store": "\(job.storeID)", "file": "\(job.fileID)"])
        do {
            guard let entry = try await store.storeFile(storeID: job.storeID, fileID: job.fileID), entry.status == .inProgress else { return }
            guard let vectorStore = try await store.vectorStore(id: job.storeID) else { return }
            guard let file = try await store.file(id: job.fileID), let bytes = try await store.fileContent(id: job.fileID) else {
                return try await fail(job, "invalid_file", "The file was deleted before it was indexed.")
            }
            guard let format = DocumentFormat.detect(filename: file.filename, bytes: bytes) else {
                let ext = (file.filename as NSString).pathExtension
                return try await fail(
                    job, "unsupported_file",
                    "Files of type \(ext.isEmpty ? "'\(file.filename)' (no extension, not UTF-8 text)" : ".\(ext)") are not supported: text, Markdown, HTML, PDF, JSON and JSON Lines are."
                )
            }
            guard let embedder = embedders[vectorStore.embeddingModel] else {
                return try await fail(job, "server_error", "The store's embedding model '\(vectorStore.embeddingModel)' is not configured.")
            }
            let pdftotext = self.pdftotext
            let chunker = embedder.chunker(entry.chunking)
            let chunks: [DocumentChunk]
            do {
                chunks = try await NIOThreadPool.singleton.runIfActive {
                    chunker.chunks(try DocumentText.extract(bytes, format: format, pdftotext: pdftotext))
                }
            } catch let error as SluiceError {
                return try await fail(job, error.code == .unsupported ? "server_error" : "invalid_file", error.message)
            }
            guard !chunks.isEmpty else { return try await fail(job, "invalid_file", "The file has no text to index.") }
            progress.withLockedValue { $0[job] = Progress(chunksEmbedded: 0, chunksTotal: chunks.count) }
            defer { progress.withLockedValue { _ = $0.removeValue(forKey: job) } }
            let started = ContinuousClock.now
            let vectors: [[Float]]
            do {
                vectors = try await embedder.vectors(chunks.map(\.indexedText)) { [progress] done in
                    progress.withLockedValue { $0[job]?.chunksEmbedded = done }
                }
            } catch is CancellationError {
                return  // Shutting down: the file stays in progress and is indexed again at the next start.
            } catch {
                return try await fail(job, "server_error", "Embedding failed: \(error)")
            }
            let stored = zip(chunks, vectors).map { chunk, vector in
                StoredChunk(
                    storeID: job.storeID, fileID: job.fileID, position: chunk.position, heading: chunk.headings.joined(separator: " › "), page: chunk.page,
                    text: chunk.text, vector: vector)
            }
            let usage = chunks.reduce(0) { $0 + $1.text.utf8.count }
            if try await store.completeFile(storeID: job.storeID, fileID: job.fileID, chunks: stored, usageBytes: usage) {
                indexed.increment(by: Int64(stored.count))
                try? await indexes.index(for: job.storeID).sync(store)
                logger.info(
                    "file indexed",
                    metadata: ["chunks": "\(stored.count)", "seconds": "\(String(format: "%.2f", (ContinuousClock.now - started).seconds))"])
            }
        } catch {
            logger.error("indexing failed", metadata: ["error": "\(error)"])
            try? await fail(job, "server_error", "Indexing failed: \(error)")
        }
    }

    private func fail(_ job: Job, _ code: String, _ message: String) async throws {
        failedFiles.increment()
        logger.warning("file not indexed", metadata: ["vector_store": "\(job.storeID)", "file": "\(job.fileID)", "reason": "\(message)"])
        try await store.finishFile(storeID: job.storeID, fileID: job.fileID, status: .failed, code: code, message: message)
    }
}

extension Logger {
    func with(_ metadata: Logger.Metadata) -> Logger {
        var copy = self
        for (k, v) in metadata { copy[metadataKey: k] = v }
        return copy
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
