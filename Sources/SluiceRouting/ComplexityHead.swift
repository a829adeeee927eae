import Foundation

/// A logistic regression over the MiniLM sentence embedding that scores how much a request
/// needs a strong model: what cheap-vs-strong routing uses with an embedding model and no
/// labelled examples of its own. Trained offline by `scripts/train-routing-head.py` on public
/// labelled requests; its weights are compiled in (`ComplexityHead+Weights.swift`).
public struct ComplexityHead: Sendable {
    let weights: [Float]
    let bias: Float

    public init(weights: [Float], bias: Float) {
        self.weights = weights
        self.bias = bias
    }

    /// The head `make` shipped: for all-MiniLM-L6-v2's 384 dimensions.
    public static let trained = ComplexityHead(weights: trainedWeights, bias: trainedBias)

    /// The probability that a request with this unit-length embedding needs the strong model;
    /// nil for an embedding of another size (another model).
    public func score(_ embedding: [Float]) -> Double? {
        guard embedding.count == weights.count else { return nil }
        var z = bias
        for i in 0..<weights.count { z += weights[i] * embedding[i] }
        return 1 / (1 + exp(-Double(z)))
    }
}

extension ComplexityHead {
    /// Fits a head as `scripts/train-routing-head.py` does (balanced classes, L2 1e-3, 400 full
    /// gradient steps of 0.5), for measuring on sources a head was not trained on.
    public static func train(vectors: [[Float]], strong: [Bool]) -> ComplexityHead {
        let n = vectors.count
        let dims = vectors.first?.count ?? 0
        let share = Double(strong.filter { $0 }.count) / Double(max(n, 1))
        let weightOf = strong.map { $0 ? 0.5 / max(share, 1e-9) : 0.5 / max(1 - share, 1e-9) }
        var w = [Double](repeating: 0, count: dims)
        var b = 0.0
        for _ in 0..<400 {
            var gradient = [Double](repeating: 0, count: dims)
            var gradientB = 0.0
            for (i, v) in vectors.enumerated() {
                var z = b
                for j in 0..<dims { z += w[j] * Double(v[j]) }
                let g = (1 / (1 + exp(-z)) - (strong[i] ? 1 : 0)) * weightOf[i]
                for j in 0..<dims { gradient[j] += g * Double(v[j]) }
                gradientB += g
            }
            for j in 0..<dims { w[j] -= 0.5 * (gradient[j] / Double(n) + 1e-3 * w[j]) }
            b -= 0.5 * gradientB / Double(n)
        }
        return ComplexityHead(weights: w.map { Float($0) }, bias: Float(b))
    }
}
