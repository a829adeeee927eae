import Foundation
import SluiceCore

/// The trained network's weights, decoded once from `EntityTagger+Weights.swift`.
enum EntityTaggerWeights {
    struct Network: Sendable {
        let w1: [Float]  // inputs × hidden
        let b1: [Float]
        let w2: [Float]  // hidden × tags
        let b2: [Float]
        let start: [Float]  // log P(first tag)
        let transition: [Float]  // tags × tags: log P(tag | previous tag)
    }

    static let network: Network = {
        let data = Data(base64Encoded: encoded)!
        var floats = [Float](repeating: 0, count: data.count / 4)
        _ = floats.withUnsafeMutableBytes { data.copyBytes(to: $0) }
        precondition(floats.count == inputs * hidden + hidden + hidden * tags + tags + tags + tags * tags, "EntityTagger+Weights.swift does not match its sizes")
        var at = 0
        func take(_ n: Int) -> [Float] {
            defer { at += n }
            return Array(floats[at..<(at + n)])
        }
        return Network(
            w1: take(inputs * hidden), b1: take(hidden), w2: take(hidden * tags), b2: take(tags), start: take(tags), transition: take(tags * tags))
    }()
}

/// Names, postal addresses and dates found by a model rather than cue words (`pii: {ner: …}`):
/// a small network over the MiniLM state of each word, plus eleven features of the word's shape
/// that the lower-cased encoder cannot see, gives every word's probability of being the beginning
/// or inside of a PERSON, a STREET_ADDRESS or a DATE_TIME, or none; the most likely tag sequence
/// under those and the tag transitions seen in training makes the spans. Trained offline by
/// `scripts/train-pii-tagger.py` on public NER corpora and synthetic sentences.
public struct EntityTagger: Sendable {
    static let types: [PIIType] = [.person, .streetAddress, .dateTime]
    static let shapeFeatures = 11

    let encoder: any WordEncoder

    public init(encoder: any WordEncoder) {
        self.encoder = encoder
    }

    /// The entities in each text, in order; scores are the mean probability of their words' tags.
    /// A text that is JSON (a tool's result) is read with its escapes blanked, as the detectors
    /// read it: `\nJohn Smith` is a line break and a name, not the word `nJohn`.
    public func findings(_ texts: [String]) async throws -> [[PIIFinding]] {
        guard !texts.isEmpty else { return [] }
        let texts = texts.map(JSONText.scannable)
        let states = try await encoder.wordStates(texts)
        return zip(texts, states).map { Self.tag(text: $0, states: $1) }
    }

    static func tag(text: String, states: WordStates) -> [PIIFinding] {
        let n = states.words.count
        guard n > 0 else { return [] }
        let net = EntityTaggerWeights.network
        let inputs = EntityTaggerWeights.inputs
        let hidden = EntityTaggerWeights.hidden
        let tags = EntityTaggerWeights.tags
        guard states.width + shapeFeatures == inputs else { return [] }
        let shapes = shape(Array(text.unicodeScalars), words: states.words)
        // The network's tag probabilities for every word.
        var probabilities = [Float](repeating: 0, count: n * tags)
        var h = [Float](repeating: 0, count: hidden)
        var z = [Float](repeating: 0, count: tags)
        for i in 0..<n {
            for k in 0..<hidden { h[k] = net.b1[k] }
            for j in 0..<inputs {
                let v = j < states.width ? states.states[i * states.width + j] : shapes[i * shapeFeatures + j - states.width]
                if v == 0 { continue }
                let row = j * hidden
                for k in 0..<hidden { h[k] += v * net.w1[row + k] }
            }
            for k in 0..<tags { z[k] = net.b2[k] }
            for k in 0..<hidden where h[k] > 0 {
                let row = k * tags
                for t in 0..<tags { z[t] += h[k] * net.w2[row + t] }
            }
            let top = z.max()!
            var total: Float = 0
            for t in 0..<tags { total += exp(z[t] - top) }
            for t in 0..<tags { probabilities[i * tags + t] = exp(z[t] - top) / total }
        }
        // The most likely tag sequence (Viterbi) under those and the tag transitions, so that a
        // span does not break on one uncertain word and a lone uncertain word is no span.
        var best = (0..<tags).map { net.start[$0] + log(max(probabilities[$0], 1e-9)) }
        var back = [Int](repeating: 0, count: n * tags)
        for i in 1..<max(n, 1) {
            var next = [Float](repeating: 0, count: tags)
            for t in 0..<tags {
                var from = 0
                var score = best[0] + net.transition[t]
                for p in 1..<tags where best[p] + net.transition[p * tags + t] > score {
                    score = best[p] + net.transition[p * tags + t]
                    from = p
                }
                back[i * tags + t] = from
                next[t] = score + log(max(probabilities[i * tags + t], 1e-9))
            }
            best = next
        }
        var path = [Int](repeating: 0, count: n)
        for t in 1..<tags where best[t] > best[path[n - 1]] { path[n - 1] = t }
        for i in stride(from: n - 1, to: 0, by: -1) { path[i - 1] = back[i * tags + path[i]] }

        // Spans of words: a B, or an I of another type than the word before, opens one.
        var spans: [(kind: Int, first: Int, last: Int)] = []
        for (i, tag) in path.enumerated() where tag > 0 {
            let kind = (tag - 1) / 2
            let inside = (tag - 1) % 2 == 1
            if inside, let last = spans.last, last.kind == kind, last.last == i - 1 {
                spans[spans.count - 1].last = i
            } else {
                spans.append((kind, i, i))
            }
        }
        var findings: [PIIFinding] = []
        for var span in spans {
            // An entity neither starts nor ends with punctuation ("6XE." is "6XE").
            func punctuation(_ word: Int) -> Bool { shapes[word * shapeFeatures + 5] > 0 }
            while span.first <= span.last && punctuation(span.first) { span.first += 1 }
            while span.last >= span.first && punctuation(span.last) { span.last -= 1 }
            guard span.first <= span.last else { continue }
            var sum: Double = 0
            for i in span.first...span.last { sum += Double(probabilities[i * tags + path[i]]) }
            findings.append(
                PIIFinding(
                    type: types[span.kind], start: states.words[span.first].lowerBound, end: states.words[span.last].upperBound,
                    score: sum / Double(span.last - span.first + 1)))
        }
        return findings
    }

    /// Eleven features per word from the original, cased text (`shape_features` in the training
    /// script): initial capital, all capitals, all lower case, has a digit, all digits,
    /// punctuation only, starts a sentence or line, the previous and next words' initial
    /// capitals, whether the text has (almost) no capitals at all, four digits or more.
    static func shape(_ scalars: [Unicode.Scalar], words: [Range<Int>]) -> [Float] {
        func isLetter(_ c: Unicode.Scalar) -> Bool {
            switch c.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
            default: false
            }
        }
        var letters = 0
        var uppers = 0
        for c in scalars where isLetter(c) {
            letters += 1
            if c.properties.isUppercase { uppers += 1 }
        }
        let caseless: Float = letters == 0 || Double(uppers) / Double(letters) < 0.02 ? 1 : 0
        let initialCaps: [Float] = words.map { scalars[$0.lowerBound].properties.isUppercase ? 1 : 0 }
        var out = [Float](repeating: 0, count: words.count * shapeFeatures)
        for (i, range) in words.enumerated() {
            var hasLetter = false
            var allUpper = true
            var allLower = true
            var wordLetters = 0
            var digits = 0
            for c in scalars[range] {
                if isLetter(c) {
                    hasLetter = true
                    wordLetters += 1
                    if !c.properties.isUppercase { allUpper = false }
                    if !c.properties.isLowercase { allLower = false }
                }
                if c.properties.numericType == .decimal { digits += 1 }
            }
            var sentenceStart = i == 0
            if i > 0 {
                let previous = words[i - 1]
                if previous.count == 1, [".", "!", "?", ":"].contains(scalars[previous.lowerBound]) { sentenceStart = true }
                if scalars[previous.upperBound..<range.lowerBound].contains("\n") { sentenceStart = true }
            }
            let f = [
                initialCaps[i],
                wordLetters >= 2 && allUpper ? 1 : 0,
                hasLetter && allLower ? 1 : 0,
                digits > 0 ? 1 : 0,
                digits == range.count ? 1 : 0,
                !hasLetter && digits == 0 ? 1 : 0,
                sentenceStart ? 1 : 0,
                i > 0 ? initialCaps[i - 1] : 0,
                i + 1 < words.count ? initialCaps[i + 1] : 0,
                caseless,
                digits >= 4 ? 1 : 0,
            ] as [Float]
            for k in 0..<shapeFeatures { out[i * shapeFeatures + k] = f[k] }
        }
        return out
    }
}
