import Foundation
import SluiceCore

/// A logistic regression over the all-MiniLM-L6-v2 sentence embedding that scores how much a
/// stretch of text reads as an injected instruction. Trained offline by
/// `scripts/train-injection-head.py` on `injection/train_extra.jsonl`; its weights are compiled in
/// (`InjectionHead+Weights.swift`).
public struct InjectionHead: Sendable {
    let weights: [Float]
    let bias: Float

    public init(weights: [Float], bias: Float) {
        self.weights = weights
        self.bias = bias
    }

    /// The head `make` shipped, for all-MiniLM-L6-v2's 384 dimensions.
    public static let trained = InjectionHead(weights: trainedWeights, bias: trainedBias)

    /// The threshold the training script chose: at most 2% of benign texts flagged, judged on
    /// scores from heads that never saw the text's source.
    public static let defaultThreshold: Double = trainedThreshold

    /// The probability that a window with this unit-length embedding is an injection; nil for an
    /// embedding of another size (another model).
    public func score(_ embedding: [Float]) -> Double? {
        guard embedding.count == weights.count else { return nil }
        var z = bias
        for i in 0..<weights.count { z += weights[i] * embedding[i] }
        return 1 / (1 + exp(-Double(z)))
    }
}

/// The learned half of the injection check: a text is cut into windows of at most
/// `windowChars` code points at word boundaries (an instruction hidden in the middle of a long
/// document is not averaged away), each window is embedded and scored by the head, and the
/// text's score is its highest window's. Texts longer than `maxWindows` windows are scored on
/// their first and last windows, where inserted instructions sit most often.
public struct InjectionClassifier: Sendable {
    public typealias Embed = @Sendable ([String]) async throws -> [[Float]]

    public static let windowChars = 480

    let embed: Embed
    let head: InjectionHead
    public let threshold: Double
    public let maxWindows: Int

    public init(embed: @escaping Embed, head: InjectionHead = .trained, threshold: Double = InjectionHead.defaultThreshold, maxWindows: Int = 8) {
        self.embed = embed
        self.head = head
        self.threshold = threshold
        self.maxWindows = maxWindows
    }

    /// The classifier's verdict on one text.
    public struct Verdict: Sendable, Hashable {
        /// The highest window's probability.
        public var score: Double
        /// Which window scored it (0-based) and how many were scored.
        public var window: Int
        public var windows: Int

        public var reason: String {
            let s = (score * 1000).rounded() / 1000
            return windows > 1 ? "classifier \(s) (window \(window + 1) of \(windows))" : "classifier \(s)"
        }
    }

    public func score(_ text: String) async throws -> Verdict { try await score([text])[0] }

    /// The finding a verdict on `text` makes under `action`, or nil below the threshold.
    public func finding(_ verdict: Verdict, text: String, action: GuardrailAction) -> GuardrailFinding? {
        guard verdict.score >= threshold else { return nil }
        return GuardrailFinding(check: "injection", type: "PROMPT_INJECTION", start: 0, end: text.unicodeScalars.count, score: verdict.score, action: action)
    }

    /// The verdicts on several texts, their windows embedded in one call (one batch for the encoder).
    public func score(_ texts: [String]) async throws -> [Verdict] {
        let windows = texts.map { Self.embeddedWindows($0, maxWindows: maxWindows) }
        let vectors = try await embed(windows.flatMap { $0 })
        var verdicts: [Verdict] = []
        var next = 0
        for w in windows {
            var best = Verdict(score: 0, window: 0, windows: w.count)
            for i in 0..<w.count {
                let v = next < vectors.count ? vectors[next] : []
                next += 1
                guard let s = head.score(v) else {
                    throw SluiceError(.internalError, "The injection classifier needs all-MiniLM-L6-v2 embeddings (384 dimensions), got \(v.count).")
                }
                if i == 0 || s > best.score { best.score = s; best.window = i }
            }
            verdicts.append(best)
        }
        return verdicts
    }

    /// The windows a text is scored in: words (split at whitespace; a word longer than a window
    /// cut into window-sized pieces) packed greedily into windows of at most `windowChars` code
    /// points joined by single spaces. `scripts/train-injection-head.py` cuts its training texts
    /// the same way.
    public static func windows(_ text: String, maxWindows: Int) -> [String] {
        var windows: [String] = []
        var current: [Unicode.Scalar] = []
        var word: [Unicode.Scalar] = []
        func flushWord() {
            var start = 0
            while word.count - start > windowChars {
                if !current.isEmpty { windows.append(String(String.UnicodeScalarView(current))); current = [] }
                windows.append(String(String.UnicodeScalarView(word[start..<start + windowChars])))
                start += windowChars
            }
            let rest = word[start...]
            if !rest.isEmpty {
                if !current.isEmpty && current.count + 1 + rest.count > windowChars {
                    windows.append(String(String.UnicodeScalarView(current)))
                    current = []
                }
                if !current.isEmpty { current.append(" ") }
                current.append(contentsOf: rest)
            }
            word.removeAll(keepingCapacity: true)
        }
        for s in text.unicodeScalars {
            if isSplitSpace(s) { flushWord() } else { word.append(s) }
        }
        flushWord()
        if !current.isEmpty { windows.append(String(String.UnicodeScalarView(current))) }
        if windows.isEmpty { return [""] }
        guard windows.count > maxWindows else { return windows }
        let head = maxWindows / 2
        return Array(windows.prefix(head)) + Array(windows.suffix(maxWindows - head))
    }

    /// The texts embedded for `text`: its windows, except that a text that fits one window is
    /// embedded as given. MiniLM's tokenizer reads it as the same word pieces as its window
    /// (both split at the same whitespace), so the vector is the same, and it is the text the
    /// other stages that embed the message (topics, the semantic cache, routing) ask for.
    static func embeddedWindows(_ text: String, maxWindows: Int) -> [String] {
        let windows = windows(text, maxWindows: maxWindows)
        guard windows.count == 1, text.unicodeScalars.allSatisfy({ !isSplitSpace($0) || tokenizerSpace($0) }) else { return windows }
        return [text]
    }

    /// Whitespace MiniLM's tokenizer also splits at (space, tab, line breaks, Unicode spaces);
    /// the other characters Python's `str.split()` splits at, it drops or keeps inside a word.
    static func tokenizerSpace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }

    /// Whitespace as Python's `str.split()` sees it, so that training and serving cut alike.
    static func isSplitSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }
}
