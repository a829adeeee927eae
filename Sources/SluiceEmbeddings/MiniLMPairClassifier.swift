import Foundation

/// all-MiniLM-L6-v2 read as a cross-encoder: two texts in one sequence (`[CLS] a [SEP] b
/// [SEP]`), so that every token of one attends to every token of the other, then a logistic head
/// on the mean-pooled last layer. The encoder's weights are the sentence model's with trained
/// low-rank adapters folded in (`scripts/train-cache-verifier.py`); only the adapters, the
/// second text's type embedding and the head ship with Sluice.
public final class MiniLMPairClassifier: Sendable {
    let encoder: MiniLMEncoder
    let head: [Float]
    let bias: Float
    /// The probability at or above which the two texts are taken to mean the same, as the
    /// training script chose it on rows it neither trained nor reported on.
    public let threshold: Double
    /// Tokens per pair at most, as in training.
    public let maxTokens: Int

    /// The adapters and head in `file` over `base` (the plain sentence encoder).
    public init(base: MiniLMEncoder, file: SafetensorsFile) throws {
        encoder = try base.adapted(by: file)
        head = try file.floats("head.weight", shape: [MiniLMEncoder.dimensions])
        bias = try file.floats("head.bias", shape: [1])[0]
        guard let threshold = file.metadata["threshold"].flatMap(Double.init), (0...1).contains(threshold),
            let maxTokens = file.metadata["max_tokens"].flatMap(Int.init), (8...MiniLMEncoder.maxPositions).contains(maxTokens)
        else { throw SafetensorsFile.FormatError(description: "the pair classifier's metadata needs threshold and max_tokens") }
        self.threshold = threshold
        self.maxTokens = maxTokens
    }

    /// The paraphrase verifier Sluice ships (`MiniLMPairClassifier+Paraphrase.swift`).
    public static func paraphrase(base: MiniLMEncoder) throws -> MiniLMPairClassifier {
        guard let data = Data(base64Encoded: ParaphraseVerifierWeights.encoded) else {
            throw SafetensorsFile.FormatError(description: "the shipped paraphrase verifier is not base64")
        }
        return try MiniLMPairClassifier(base: base, file: SafetensorsFile(data: data, name: "paraphrase verifier"))
    }

    /// The probability that each pair's two texts ask the same thing, in one batch.
    public func probabilities(_ pairs: [(String, String)]) -> [Double] {
        guard !pairs.isEmpty else { return [] }
        let d = MiniLMEncoder.dimensions
        let encoded = pairs.map { encoder.pairIDs($0.0, $0.1, maxTokens: maxTokens) }
        let x = encoder.states(ids: encoded.map(\.ids), secondStarts: encoded.map(\.secondStart))
        var out: [Double] = []
        out.reserveCapacity(pairs.count)
        var start = 0
        for pair in encoded {
            let n = pair.ids.count
            var logit: Float = 0
            for r in start..<(start + n) {
                for j in 0..<d { logit += x[r * d + j] * head[j] }
            }
            logit = logit / Float(n) + bias
            out.append(1 / (1 + Double(exp(-logit))))
            start += n
        }
        return out
    }
}
