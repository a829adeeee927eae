import Foundation
import SluiceCore

/// Scores how much a chat request needs a strong model, in 0...1, from two sources: features of
/// the text (length, code, maths, multi-step instructions, reasoning words, constraints,
/// conversation depth) and its embedding — the labels of the nearest labelled examples when
/// there are some, else the trained `ComplexityHead`. A request at or above `threshold` goes to
/// the strong deployment.
public struct ComplexityClassifier: Sendable {
    /// A decision and what it came from.
    public struct Decision: Sendable, Hashable {
        public var score: Double
        public var featureScore: Double
        /// The embedding's score: the neighbours' share of `strong` labels (weighted by
        /// similarity), or the trained head's; nil without an embedding model.
        public var exampleScore: Double?
        public var strong: Bool

        /// The score with three decimals, for logs.
        public var rounded: Double { (score * 1000).rounded() / 1000 }
    }

    /// Embeds texts (the same model for examples and requests); nil disables the neighbours.
    public typealias Embedder = @Sendable ([String]) async throws -> [[Float]]

    let threshold: Double
    let exampleWeight: Double
    let neighbours: Int
    let embedder: Embedder?
    /// Unit-length example vectors, with 1 for `strong` and 0 for `simple`.
    let examples: [(vector: [Float], strong: Double)]
    /// What scores the embedding when there are no examples.
    let head: ComplexityHead?

    /// A classifier over `examples`, embedded once here.
    public init(
        threshold: Double, exampleWeight: Double, examples: [ComplexityRoutingConfig.LabelledExample], embedder: Embedder?, neighbours: Int = 7,
        head: ComplexityHead? = .trained
    ) async throws {
        self.threshold = threshold
        self.neighbours = neighbours
        self.embedder = embedder
        self.exampleWeight = embedder == nil ? 0 : exampleWeight
        if let embedder, !examples.isEmpty {
            let vectors = try await embedder(examples.map(\.text))
            self.examples = zip(vectors, examples).map { (Self.normalised($0.0), $0.1.label == "strong" ? 1 : 0) }
            self.head = nil
        } else {
            self.examples = []
            self.head = embedder == nil ? nil : head
        }
    }

    /// The decision for one request. An embedding failure falls back to the features alone.
    public func decide(_ request: ChatCompletionRequest) async -> Decision {
        let text = Self.promptText(request)
        let features = ComplexityFeatures(text: text, turns: request.messages.count).score
        var exampleScore: Double?
        if let embedder, !examples.isEmpty || head != nil, let vector = try? await embedder([text]).first {
            exampleScore = examples.isEmpty ? head?.score(Self.normalised(vector)) : vote(Self.normalised(vector))
        }
        let score = exampleScore.map { exampleWeight * $0 + (1 - exampleWeight) * features } ?? features
        return Decision(score: score, featureScore: features, exampleScore: exampleScore, strong: score >= threshold)
    }

    /// The similarity-weighted share of `strong` among the nearest examples.
    func vote(_ query: [Float]) -> Double {
        var best: [(Float, Double)] = []
        for example in examples {
            var dot: Float = 0
            for i in 0..<min(query.count, example.vector.count) { dot += query[i] * example.vector[i] }
            if best.count < neighbours {
                best.append((dot, example.strong))
                best.sort { $0.0 > $1.0 }
            } else if dot > best[best.count - 1].0 {
                best[best.count - 1] = (dot, example.strong)
                best.sort { $0.0 > $1.0 }
            }
        }
        let total = best.reduce(0.0) { $0 + Double(max($1.0, 0)) }
        guard total > 0 else { return 0.5 }
        return best.reduce(0.0) { $0 + Double(max($1.0, 0)) * $1.1 } / total
    }

    /// The text that decides: the last user message, with the system prompt's length counted.
    static func promptText(_ request: ChatCompletionRequest) -> String {
        request.messages.last(where: { $0.role == .user })?.text ?? request.messages.last?.text ?? ""
    }

    static func normalised(_ v: [Float]) -> [Float] {
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? v.map { $0 / norm } : v
    }
}

/// The text features of a request and the score they add up to.
public struct ComplexityFeatures: Sendable, Hashable {
    public var words = 0
    public var codeSignals = 0
    public var mathSignals = 0
    public var stepSignals = 0
    public var reasoningSignals = 0
    public var constraintSignals = 0
    public var turns = 0

    static let codeWords: Set<String> = [
        "code", "function", "implement", "implementation", "refactor", "debug", "bug", "compile", "compiler", "algorithm", "class",
        "api", "sql", "query", "regex", "script", "python", "swift", "javascript", "typescript", "rust", "java", "golang", "c++",
        "kubernetes", "dockerfile", "concurrency", "thread", "async", "recursion", "complexity", "optimize", "unit", "tests",
        "endpoint", "schema", "database", "migration", "parser", "interpreter", "stack", "trace", "exception", "memory", "leak",
        "regular", "expression", "regex", "tests", "property-based", "race", "deadlock",
    ]
    static let mathWords: Set<String> = [
        "prove", "proof", "theorem", "lemma", "integral", "derivative", "equation", "equations", "solve", "probability",
        "matrix", "eigenvalue", "eigenvalues", "limit", "series", "converge", "converges", "induction", "polynomial", "optimize",
        "expected", "variance", "bayes", "statistics", "statistical", "calculate", "compute", "derive", "estimate", "modulo",
        "prime", "primes", "geometry", "combinatorics", "inequality", "logarithm", "derivation", "irrational", "diverges", "undecidable",
        "theorem", "recurrence", "integral", "probability", "forecast", "confidence", "interval",
    ]
    static let reasoningWords: Set<String> = [
        "why", "explain", "analyze", "analyse", "compare", "contrast", "evaluate", "assess", "justify", "argue", "critique",
        "tradeoffs", "trade-offs", "tradeoff", "design", "architecture", "strategy", "plan", "recommend", "implications",
        "consequences", "reasoning", "hypothesis", "pros", "cons", "weigh", "diagnose", "investigate", "synthesize", "review",
        "propose", "detailed", "thorough", "in-depth", "comprehensive", "nuanced", "threat", "threat-model", "attackers", "attack", "mitigations",
        "risks", "mechanism", "arguments", "competing", "liability", "misconceptions", "invariants", "rank", "advise", "root", "causes",
    ]
    static let stepWords: Set<String> = ["first", "then", "next", "finally", "afterwards", "second", "third", "step", "steps", "stage", "phases"]
    static let constraintWords: Set<String> = [
        "must", "should", "exactly", "without", "only", "ensure", "avoid", "never", "always", "limit", "maximum", "minimum",
        "least", "most", "within", "constraint", "constraints", "requirement", "requirements", "format", "include", "cite",
    ]

    public init(text: String, turns: Int) {
        self.turns = turns
        var lineStarts = 0
        for line in text.split(separator: "\n") {
            let t = line.drop { $0 == " " || $0 == "\t" }
            if t.hasPrefix("- ") || t.hasPrefix("* ") || (t.first?.isNumber == true && (t.dropFirst().hasPrefix(".") || t.dropFirst().hasPrefix(")"))) {
                lineStarts += 1
            }
        }
        stepSignals += lineStarts
        if text.contains("```") { codeSignals += 3 }
        for symbol in ["{", "}", "();", "=>", "->", "==", "!=", "&&", "||", "def ", "func ", "return ", "import ", "#include", "SELECT "] where text.contains(symbol) {
            codeSignals += 1
        }
        for symbol in ["∫", "∑", "√", "^", "\\frac", "\\int", "≤", "≥", "=", "²"] where text.contains(symbol) { mathSignals += 1 }
        for raw in text.lowercased().split(whereSeparator: { $0.isWhitespace || ",.;:!?()[]\"'".contains($0) }) {
            let word = String(raw)
            words += 1
            if Self.codeWords.contains(word) { codeSignals += 1 }
            if Self.mathWords.contains(word) { mathSignals += 1 }
            if Self.reasoningWords.contains(word) { reasoningSignals += 1 }
            if Self.stepWords.contains(word) { stepSignals += 1 }
            if Self.constraintWords.contains(word) { constraintSignals += 1 }
        }
    }

    /// A weighted sum of saturating features, squashed into 0...1 (0.5 at the boundary).
    public var score: Double {
        func sat(_ x: Int, _ scale: Double) -> Double { 1 - 1 / (1 + Double(x) / scale) }
        let length = words <= 8 ? 0 : min(1, (Double(words).squareRoot() - 2.8) / 8)
        let z =
            -1.5
            + 2.2 * length
            + 1.8 * sat(codeSignals, 1.5)
            + 2.0 * sat(mathSignals, 1.5)
            + 1.6 * sat(reasoningSignals, 1.0)
            + 1.0 * sat(stepSignals, 2.0)
            + 1.0 * sat(constraintSignals, 2.0)
            + 0.6 * sat(max(0, turns - 2), 4.0)
        return 1 / (1 + exp(-z))
    }
}
