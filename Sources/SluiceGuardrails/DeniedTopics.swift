import SluiceCore

/// Denied topics, each described by a few example sentences: a text is on a topic when its
/// embedding's cosine similarity to one of the topic's examples reaches the threshold. The
/// examples are embedded once, on first use.
public actor DeniedTopics {
    /// Turns texts into vectors (the local MiniLM in practice).
    public typealias Embed = @concurrent @Sendable ([String]) async throws -> [[Float]]

    private let topics: [(name: String, examples: [String])]
    private let threshold: Double
    private let embed: Embed
    private var exampleVectors: [(name: String, vector: [Float])]?

    public init(denied: [String: [String]], threshold: Double, embed: @escaping Embed) {
        self.topics = denied.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        self.threshold = threshold
        self.embed = embed
    }

    /// The topic `text` is on and the similarity, or nil.
    public func match(_ text: String) async throws -> (topic: String, similarity: Double)? {
        guard !topics.isEmpty, !text.isEmpty else { return nil }
        let examples = try await vectors()
        guard let v = try await embed([text]).first else { return nil }
        var best: (String, Double)?
        for (name, e) in examples {
            let s = Self.cosine(v, e)
            if s >= threshold, s > (best?.1 ?? -1) { best = (name, s) }
        }
        return best.map { (topic: $0.0, similarity: $0.1) }
    }

    private func vectors() async throws -> [(name: String, vector: [Float])] {
        if let exampleVectors { return exampleVectors }
        let names = topics.flatMap { t in t.examples.map { _ in t.name } }
        let vectors = try await embed(topics.flatMap(\.examples))
        let pairs = Array(zip(names, vectors)).map { (name: $0.0, vector: $0.1) }
        exampleVectors = pairs
        return pairs
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot: Float = 0
        var na: Float = 0
        var nb: Float = 0
        for i in 0..<min(a.count, b.count) {
            dot += a[i] * b[i]
            na += a[i] * a[i]
            nb += b[i] * b[i]
        }
        return na == 0 || nb == 0 ? 0 : Double(dot / (na.squareRoot() * nb.squareRoot()))
    }
}
