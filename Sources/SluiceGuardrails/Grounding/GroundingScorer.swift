import Foundation

/// How well an answer is supported by the passages it was meant to come from (hallucination
/// mitigation for answers over retrieved text). Each sentence's support is the share of its
/// content words — stop words dropped, words reduced to a crude stem, numbers kept whole — that
/// occur in the passages; a name, number or claim that appears in no passage lowers it. A
/// sentence below `threshold` is unsupported. Lexical on purpose: fast (microseconds), and an
/// answer that copies its facts from the passages, as a grounded answer does, scores high.
public struct GroundingScorer: Sendable {
    public struct Report: Sendable, Hashable {
        /// Support of the whole answer: content words found over content words (1 when it has none).
        public var score: Double
        /// Sentences whose support is under the threshold, in answer order.
        public var unsupported: [String]
    }

    public var threshold: Double

    public init(threshold: Double = 0.6) { self.threshold = threshold }

    public func score(answer: String, passages: [String]) -> Report {
        var known: Set<String> = []
        for passage in passages { for word in Self.words(passage) { known.insert(Self.stem(word)) } }
        var found = 0
        var total = 0
        var unsupported: [String] = []
        for sentence in Self.sentences(answer) {
            let content = Self.words(sentence).filter { !Self.stopwords.contains($0) }.map(Self.stem)
            guard !content.isEmpty else { continue }
            let hits = content.filter { known.contains($0) }.count
            found += hits
            total += content.count
            if Double(hits) / Double(content.count) < threshold { unsupported.append(sentence) }
        }
        return Report(score: total == 0 ? 1 : Double(found) / Double(total), unsupported: unsupported)
    }

    /// Lower-cased runs of letters and digits; citation marks like `[2]` are not words.
    public static func words(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        var inBracket = false
        for ch in text.lowercased() {
            if ch == "[" { inBracket = true }
            if ch == "]" {
                inBracket = false
                current = ""
                continue
            }
            if (ch.isLetter || ch.isNumber) && !inBracket {
                current.append(ch)
            } else {
                if !current.isEmpty { out.append(current) }
                current = ""
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// A crude suffix-stripping stem, enough that "founded" meets "founder" and "cities" "city".
    public static func stem(_ word: String) -> String {
        guard word.count > 4, !word.first!.isNumber else { return word }
        for suffix in ["ations", "ation", "ingly", "ings", "ing", "edly", "ies", "ied", "ers", "er", "ed", "es", "ly", "s"] where word.hasSuffix(suffix) {
            let base = String(word.dropLast(suffix.count))
            if base.count >= 3 { return suffix == "ies" || suffix == "ied" ? base + "y" : base }
        }
        return word
    }

    /// Sentences: cut after `.`, `!`, `?` before whitespace, and at line ends.
    public static func sentences(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        let chars = Array(text)
        for (i, c) in chars.enumerated() {
            current.append(c)
            let end = c == "\n" || ((c == "." || c == "!" || c == "?") && (i + 1 == chars.count || chars[i + 1].isWhitespace))
            if end {
                let t = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !t.isEmpty { out.append(t) }
                current = ""
            }
        }
        let t = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !t.isEmpty { out.append(t) }
        return out
    }

    public static let stopwords: Set<String> = [
        "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "by", "for", "with", "from", "as", "is", "are", "was", "were", "be",
        "been", "being", "do", "does", "did", "it", "its", "this", "that", "these", "those", "there", "their", "they", "he", "she", "his",
        "her", "him", "we", "our", "you", "your", "i", "me", "my", "which", "who", "whom", "what", "when", "where", "why", "how", "not", "no",
        "yes", "so", "than", "then", "also", "has", "have", "had", "can", "could", "would", "should", "will", "may", "might", "about", "into",
        "both", "all", "any", "some", "more", "most", "other", "such", "only", "very", "just", "one", "s", "according", "passage", "passages",
        "based", "answer", "information", "provided", "context", "text", "mentioned", "stated", "source", "sources",
    ]
}
