import Foundation
import SluiceCore
import SluiceGuardrails

/// A `[n]` mark in a flow's answer, resolved to the passage it points at.
public struct Citation: Sendable, Hashable {
    public var n: Int
    public var fileID: String
    public var filename: String
    /// The passage's sentence closest in wording to the answer sentence that cites it.
    public var quote: String
}

public enum Citations {
    /// Every distinct passage the answer cites (`[2]`, `[1, 3]`, `[1][2]`), in order of first
    /// mention; marks with no such passage are ignored.
    public static func extract(_ answer: String, passages: [RetrievedPassage]) -> [Citation] {
        let byNumber = Dictionary(passages.map { ($0.n, $0) }, uniquingKeysWith: { a, _ in a })
        var seen: Set<Int> = []
        var out: [Citation] = []
        for sentence in GroundingScorer.sentences(answer) {
            for n in marks(in: sentence) where seen.insert(n).inserted {
                guard let passage = byNumber[n] else { continue }
                out.append(Citation(n: n, fileID: passage.fileID, filename: passage.filename, quote: quote(from: passage.text, for: sentence)))
            }
        }
        return out
    }

    /// The numbers inside `[...]` groups of digits, commas and spaces.
    static func marks(in text: String) -> [Int] {
        var out: [Int] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "[") {
            rest = rest[rest.index(after: open)...]
            guard let close = rest.firstIndex(of: "]") else { break }
            let inside = rest[..<close]
            if !inside.isEmpty, inside.allSatisfy({ $0.isNumber || $0 == "," || $0 == " " }) {
                out += inside.split(whereSeparator: { $0 == "," || $0 == " " }).compactMap { Int($0) }
            }
            rest = rest[rest.index(after: close)...]
        }
        return out
    }

    static func quote(from passage: String, for sentence: String) -> String {
        let wanted = Set(GroundingScorer.words(sentence).filter { !GroundingScorer.stopwords.contains($0) }.map(GroundingScorer.stem))
        var best = ""
        var bestScore = -1
        for candidate in GroundingScorer.sentences(passage) {
            let score = Set(GroundingScorer.words(candidate).map(GroundingScorer.stem)).intersection(wanted).count
            if score > bestScore {
                best = candidate
                bestScore = score
            }
        }
        return best.count > 300 ? String(best.prefix(300)) + "…" : best
    }
}
