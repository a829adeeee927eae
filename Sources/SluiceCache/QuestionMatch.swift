/// The semantic cache's second check on a candidate hit. Cosine similarity over MiniLM cannot
/// tell "a is b's friend" from "b is a's friend", "near Mercer County" from "near Union County",
/// or "how was it built" from "why was it built": two questions close in the embedding space
/// match only when their numbers, negation and question word agree, each one's names (capitalised
/// words, acronyms, words with digits) occur in the other, and the content words they share come
/// in the same order.
public enum QuestionMatch {
    /// Whether a stored question `a` may answer a new question `b`.
    public static func matches(_ a: String, _ b: String) -> Bool {
        let x = Question(a)
        let y = Question(b)
        guard x.numbers == y.numbers, x.negated == y.negated, x.questionWord == y.questionWord else { return false }
        // Each side's names must occur on the other side, in whatever case the user typed them.
        guard x.names.isSubset(of: y.vocabulary), y.names.isSubset(of: x.vocabulary) else { return false }
        return outOfOrder(x.content, y.content) == 0
    }

    /// How many content words both questions use are out of order: those words (the k-th use
    /// of a word in one matched with its k-th use in the other) minus the longest run of them in
    /// the same relative order.
    static func outOfOrder(_ a: [String], _ b: [String]) -> Int {
        struct Use: Hashable {
            var word: String
            var n: Int
        }
        func uses(_ words: [String]) -> [Use] {
            var seen: [String: Int] = [:]
            return words.map { w in
                seen[w, default: 0] += 1
                return Use(word: w, n: seen[w]!)
            }
        }
        var positionB: [Use: Int] = [:]
        for (i, use) in uses(b).enumerated() { positionB[use] = i }
        let positions = uses(a).compactMap { positionB[$0] }
        // Longest increasing subsequence, patience sorting.
        var tails: [Int] = []
        for p in positions {
            var lo = 0
            var hi = tails.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if tails[mid] < p { lo = mid + 1 } else { hi = mid }
            }
            if lo == tails.count { tails.append(p) } else { tails[lo] = p }
        }
        return positions.count - tails.count
    }

    /// What the check compares of one question.
    struct Question {
        /// Words other than function words and negations, lower-cased, in order.
        var content: [String] = []
        /// Numbers as written (sorted).
        var numbers: [String] = []
        var negated = false
        /// The first question word (`which` counts as `what`).
        var questionWord: String?
        /// Capitalised words not starting a sentence, acronyms and words with digits, lower-cased.
        var names: Set<String> = []
        /// Every word and name, lower-cased.
        var vocabulary: Set<String> = []

        init(_ text: String) {
            // PAWS-style quote marks (`` and '') are not words.
            let text = text.replacingOccurrences(of: "``", with: " ").replacingOccurrences(of: "''", with: " ")
            var numbers: [String] = []
            for word in Self.words(text) {
                if word.first?.isNumber == true {
                    numbers.append(word)
                    continue
                }
                if Self.negations.contains(word) {
                    negated = true
                    continue
                }
                if questionWord == nil, let wh = Self.questionWords[word] { questionWord = wh }
                if !Self.functionWords.contains(word) { content.append(word) }
            }
            self.numbers = numbers.sorted()
            self.names = Self.names(text)
            self.vocabulary = Set(Self.words(text)).union(names)
        }

        /// Lower-cased runs of letters, and numbers (digits with inner points or commas); "n't"
        /// reads as "not" and "cannot" as "can not".
        static func words(_ text: String) -> [String] {
            var out: [String] = []
            var current = ""
            var numeric = false
            func flush() {
                guard !current.isEmpty else { return }
                while let last = current.last, last == "." || last == "," { current.removeLast() }
                out.append(current)
                current = ""
            }
            let lowered = Array(text.lowercased().replacingOccurrences(of: "’", with: "'"))
            var i = 0
            while i < lowered.count {
                let ch = lowered[i]
                if ch == "n", i + 2 < lowered.count, lowered[i + 1] == "'", lowered[i + 2] == "t", i + 3 == lowered.count || !lowered[i + 3].isLetter {
                    flush()
                    out.append("not")
                    i += 3
                    continue
                }
                if ch.isLetter {
                    if numeric { flush() }
                    numeric = false
                    current.append(ch)
                } else if ch.isNumber {
                    if !numeric { flush() }
                    numeric = true
                    current.append(ch)
                } else if numeric && (ch == "." || ch == ",") && i + 1 < lowered.count && lowered[i + 1].isNumber {
                    current.append(ch)
                } else {
                    flush()
                    numeric = false
                }
                i += 1
            }
            flush()
            return out.flatMap { $0 == "cannot" ? ["can", "not"] : [$0] }
        }

        /// Capitalised words not starting a sentence, acronyms and words with digits, lower-cased.
        static func names(_ text: String) -> Set<String> {
            var out: Set<String> = []
            var current = ""
            var startsSentence = true
            var atStart = true
            func flush() {
                guard !current.isEmpty else { return }
                var word = current
                while let last = word.last, last == "." || last == "'" || last == "-" || last == "," { word.removeLast() }
                if word.hasSuffix("'s") { word.removeLast(2) }
                let capitalised = word.first?.isUppercase == true
                let acronym = word.count > 1 && word.allSatisfy { !$0.isLetter || $0.isUppercase } && word.contains(where: \.isLetter)
                // "I" and a sentence's first word are capitalised whatever they are.
                if word.contains(where: \.isNumber) || acronym || (capitalised && !atStart && word.count > 1) { out.insert(word.lowercased()) }
                current = ""
            }
            for ch in text {
                if ch.isLetter || ch.isNumber || (!current.isEmpty && "+#'.-".contains(ch)) {
                    if current.isEmpty {
                        atStart = startsSentence
                        startsSentence = false
                    }
                    current.append(ch)
                } else {
                    let ended = current.last == "."
                    flush()
                    if ch == "?" || ch == "!" || ch == "." || ended { startsSentence = true }
                }
            }
            flush()
            return out
        }

        static let negations: Set<String> = ["not", "no", "never", "nor", "without", "nothing", "none", "neither"]

        static let questionWords: [String: String] = [
            "how": "how", "why": "why", "where": "where", "who": "who", "whom": "who", "when": "when", "what": "what", "which": "what",
        ]

        static let functionWords: Set<String> = [
            "a", "an", "the", "of", "to", "in", "on", "for", "at", "by", "with", "from", "about", "as", "into", "over", "under", "and", "or",
            "but", "if", "then", "so", "than", "that", "this", "these", "those", "is", "are", "was", "were", "be", "been", "being", "am",
            "do", "does", "did", "doing", "have", "has", "had", "having", "i", "me", "my", "we", "our", "you", "your", "he", "him", "his",
            "she", "her", "it", "its", "they", "them", "their", "what", "which", "who", "whom", "whose", "how", "why", "when", "where", "can",
            "could", "should", "would", "will", "shall", "may", "might", "must", "there", "here", "just", "also", "very", "more", "most",
            "some", "any", "s", "t", "get",
        ]
    }
}
