import Foundation
import Testing
@testable import SluiceEmbeddings

/// The Swift encoder against a numpy BERT forward pass (`scripts/minilm-reference.py`).
@Suite(.enabled(if: MiniLMFiles.available, "needs SLUICE_MINILM_DIR and SLUICE_MINILM_REFERENCE (make test sets them)"))
struct MiniLMEncoderTests {
    struct Case: Decodable {
        let text: String
        let ids: [Int32]
        let embedding: [Float]
    }

    static let encoder = Result { try MiniLMEncoder(directory: MiniLMFiles.directory!) }
    static let cases = Result { try JSONDecoder().decode([Case].self, from: Data(contentsOf: MiniLMFiles.reference!)) }

    static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for i in a.indices {
            dot += a[i] * b[i]
            na += a[i] * a[i]
            nb += b[i] * b[i]
        }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    @Test func everyVectorMatchesTheReference() throws {
        let encoder = try Self.encoder.get()
        let cases = try Self.cases.get()
        // In batches of 32, as the provider runs them.
        var worst: (Float, String) = (1, "")
        for start in stride(from: 0, to: cases.count, by: 32) {
            let batch = Array(cases[start..<min(start + 32, cases.count)])
            let vectors = encoder.embed(batch.map(\.text))
            for (c, v) in zip(batch, vectors) {
                #expect(v.count == 384)
                let cos = Self.cosine(v, c.embedding)
                if cos < worst.0 { worst = (cos, c.text) }
            }
        }
        #expect(worst.0 >= 0.999, "worst cosine \(worst.0) for \(worst.1.prefix(60).debugDescription)")
    }

    /// The injection classifier embeds a one-window message as given rather than its window
    /// (words joined by single spaces), so that other stages share the vector: the tokenizer must
    /// read both as the same pieces.
    @Test func whitespaceRunsTokenizeAsOneSpace() throws {
        let tokenizer = try Self.encoder.get().tokenizer
        #expect(tokenizer.encode("  Summarise this e-mail,\n\n\tplease.\u{00A0}Thanks\u{3000}a lot\r\n") == tokenizer.encode("Summarise this e-mail, please. Thanks a lot"))
    }

    @Test func aBatchGivesWhatSingleInputsGive() throws {
        let encoder = try Self.encoder.get()
        let texts = ["the cat sat on the mat", "", "東京は日本の首都です。", String(repeating: "long ", count: 300)]
        let together = encoder.embed(texts)
        for (i, text) in texts.enumerated() {
            let alone = encoder.embed([text])[0]
            #expect(Self.cosine(alone, together[i]) > 0.99999)
        }
        let norm = together[0].reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(abs(norm - 1) < 1e-5)
    }

    @Test func paraphrasesAreCloserThanUnrelatedPairs() throws {
        let encoder = try Self.encoder.get()
        let pairs = [
            ("How do I learn to play the guitar?", "What is the best way to learn guitar?", "How do I bake sourdough bread?"),
            ("The weather is lovely today.", "It is a beautiful day outside.", "The stock market fell sharply."),
            ("Where can I buy cheap flights?", "How do I find low-cost airline tickets?", "What is the capital of Peru?"),
        ]
        for (a, b, c) in pairs {
            let v = encoder.embed([a, b, c])
            #expect(Self.cosine(v[0], v[1]) > Self.cosine(v[0], v[2]) + 0.2, "\(a)")
        }
    }
}
