import Foundation
import SluiceCore

/// One piece of a document as it is indexed and cited.
public struct DocumentChunk: Sendable, Hashable {
    /// Its place in the file, from 0.
    public var position: Int
    /// The headings it sits under, outermost first.
    public var headings: [String]
    public var text: String
    /// The PDF page (or JSON Lines line) it starts on.
    public var page: Int?
    /// Its length in the embedding model's tokens (without the heading line).
    public var tokens: Int

    /// What is embedded and matched by keywords: the heading path, then the text.
    public var indexedText: String {
        headings.isEmpty ? text : headings.joined(separator: " › ") + "\n" + text
    }
}

/// Cuts documents along their structure: a chunk never spans two sections; within a section
/// whole paragraphs are packed up to the size, a paragraph too long for one chunk is cut between
/// sentences (and a sentence too long, between words), and consecutive chunks of one section
/// share up to `overlapTokens` of trailing sentences. Sizes are in the embedding model's tokens.
public struct Chunker: Sendable {
    public var maxTokens: Int
    public var overlapTokens: Int
    /// Tokens of a piece of text in the embedding model's vocabulary.
    public var countTokens: @Sendable (String) -> Int

    public init(maxTokens: Int, overlapTokens: Int, countTokens: @escaping @Sendable (String) -> Int) {
        self.maxTokens = max(8, maxTokens)
        self.overlapTokens = max(0, min(overlapTokens, maxTokens / 2))
        self.countTokens = countTokens
    }

    struct Unit {
        var text: String
        var tokens: Int
        /// Starts a paragraph (joined with a blank line rather than a space).
        var opensParagraph: Bool
        var page: Int?
    }

    public func chunks(_ blocks: [TextBlock]) -> [DocumentChunk] {
        var out: [DocumentChunk] = []
        var start = 0
        while start < blocks.count {
            var end = start + 1
            while end < blocks.count, blocks[end].headings == blocks[start].headings { end += 1 }
            section(blocks[start..<end], into: &out)
            start = end
        }
        return out
    }

    private func section(_ blocks: ArraySlice<TextBlock>, into out: inout [DocumentChunk]) {
        let headings = blocks.first?.headings ?? []
        let headingTokens = headings.isEmpty ? 0 : countTokens(headings.joined(separator: " › "))
        // The heading line is embedded with every chunk: it takes its share of the window.
        let budget = max(maxTokens / 2, maxTokens - headingTokens)
        var units: [Unit] = []
        for block in blocks {
            let tokens = countTokens(block.text)
            if tokens <= budget {
                units.append(Unit(text: block.text, tokens: tokens, opensParagraph: true, page: block.page))
                continue
            }
            var first = true
            for sentence in Self.sentences(block.text) {
                let t = countTokens(sentence)
                if t <= budget {
                    units.append(Unit(text: sentence, tokens: t, opensParagraph: first, page: block.page))
                } else {
                    for (i, piece) in words(sentence, budget: budget).enumerated() {
                        units.append(Unit(text: piece.text, tokens: piece.tokens, opensParagraph: first && i == 0, page: block.page))
                    }
                }
                first = false
            }
        }
        var current: [Unit] = []
        var currentTokens = 0
        var carried = 0
        func emit() {
            guard current.count > carried else { return }
            var text = ""
            for (i, unit) in current.enumerated() {
                if i > 0 { text += unit.opensParagraph ? "\n\n" : " " }
                text += unit.text
            }
            out.append(DocumentChunk(position: out.count, headings: headings, text: text, page: current.first?.page, tokens: currentTokens))
        }
        for unit in units {
            if !current.isEmpty, currentTokens + unit.tokens > budget {
                emit()
                // Carry trailing units (up to the overlap) into the next chunk.
                var keep: [Unit] = []
                var kept = 0
                if overlapTokens > 0 {
                    for previous in current.reversed() {
                        guard kept + previous.tokens <= overlapTokens, kept + previous.tokens + unit.tokens <= budget else { break }
                        keep.insert(previous, at: 0)
                        kept += previous.tokens
                    }
                }
                current = keep
                currentTokens = kept
                carried = keep.count
            }
            current.append(unit)
            currentTokens += unit.tokens
        }
        emit()
    }

    /// Sentences: cut after `.`, `!` or `?` (and closing quotes or brackets) before whitespace,
    /// unless the word before is an initial or a common abbreviation; and at line ends.
    public static func sentences(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            current.append(c)
            if c == "\n" {
                let t = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !t.isEmpty { out.append(t) }
                current = ""
            } else if c == "." || c == "!" || c == "?" || c == "。" {
                var j = i + 1
                while j < chars.count, "\"'”’)]".contains(chars[j]) {
                    current.append(chars[j])
                    j += 1
                }
                if j >= chars.count || chars[j].isWhitespace, c != "." || !endsWithAbbreviation(current) {
                    let t = current.trimmingCharacters(in: .whitespacesAndNewlines)
                    if !t.isEmpty { out.append(t) }
                    current = ""
                }
                i = j
                continue
            }
            i += 1
        }
        let t = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !t.isEmpty { out.append(t) }
        return out
    }

    static let abbreviations: Set<String> = ["mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "no", "fig", "inc", "ltd", "jr", "sr", "approx", "u.s"]

    static func endsWithAbbreviation(_ s: String) -> Bool {
        let word = s.dropLast().split(whereSeparator: { $0.isWhitespace }).last.map { $0.lowercased() } ?? ""
        if word.count == 1, word.first?.isLetter == true { return true }
        return abbreviations.contains(word.trimmingCharacters(in: CharacterSet(charactersIn: "(\"'")))
    }

    /// A sentence longer than a chunk, in word windows that fit.
    private func words(_ sentence: String, budget: Int) -> [(text: String, tokens: Int)] {
        var out: [(String, Int)] = []
        var current: [Substring] = []
        var tokens = 0
        var pieces: [(Substring, Int)] = []
        for word in sentence.split(whereSeparator: { $0.isWhitespace }) {
            let t = countTokens(String(word))
            guard t > budget else {
                pieces.append((word, t))
                continue
            }
            // A "word" longer than a chunk (a URL, base64) is cut by characters.
            let step = max(1, word.count * budget / (t + 1))
            var rest = word
            while !rest.isEmpty {
                let piece = rest.prefix(step)
                pieces.append((piece, countTokens(String(piece))))
                rest = rest.dropFirst(step)
            }
        }
        for (word, t) in pieces {
            if tokens + t > budget, !current.isEmpty {
                out.append((current.joined(separator: " "), tokens))
                current = []
                tokens = 0
            }
            current.append(word)
            tokens += t
        }
        if !current.isEmpty { out.append((current.joined(separator: " "), tokens)) }
        return out
    }
}
