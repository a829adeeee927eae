import Foundation

/// BERT's WordPiece tokenizer, read from a Hugging Face `tokenizer.json` (BertNormalizer,
/// BertPreTokenizer, WordPiece): cleaning, CJK splitting, accent stripping and lower-casing,
/// splitting on whitespace and punctuation, greedy longest-match word pieces, then
/// `[CLS] … [SEP]` with truncation. Matches the `tokenizers` library id for id (tested).
public struct WordPieceTokenizer: Sendable {
    let vocab: [String: Int32]
    let unknownID: Int32
    let clsID: Int32
    let sepID: Int32
    let continuingPrefix: String
    let maxInputCharsPerWord: Int
    let lowercase: Bool
    let stripAccents: Bool
    let cleanText: Bool
    let handleChineseChars: Bool

    /// Why a tokenizer file cannot be used.
    public struct FormatError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(tokenizerJSON data: Data) throws {
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let model = root["model"] as? [String: Any], (model["type"] as? String) == "WordPiece",
            let vocab = model["vocab"] as? [String: Any]
        else { throw FormatError(description: "tokenizer.json: not a WordPiece tokenizer") }
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(vocab.count)
        for (token, id) in vocab {
            guard let n = (id as? NSNumber)?.int32Value else { throw FormatError(description: "tokenizer.json: bad id for \(token)") }
            ids[token] = n
        }
        self.vocab = ids
        func special(_ name: String) throws -> Int32 {
            guard let id = ids[name] else { throw FormatError(description: "tokenizer.json: no \(name) token") }
            return id
        }
        self.unknownID = try special((model["unk_token"] as? String) ?? "[UNK]")
        self.clsID = try special("[CLS]")
        self.sepID = try special("[SEP]")
        self.continuingPrefix = (model["continuing_subword_prefix"] as? String) ?? "##"
        self.maxInputCharsPerWord = (model["max_input_chars_per_word"] as? Int) ?? 100
        let normalizer = root["normalizer"] as? [String: Any] ?? [:]
        self.lowercase = (normalizer["lowercase"] as? Bool) ?? true
        // BertNormalizer: strip_accents null means "as lowercase".
        self.stripAccents = (normalizer["strip_accents"] as? Bool) ?? lowercase
        self.cleanText = (normalizer["clean_text"] as? Bool) ?? true
        self.handleChineseChars = (normalizer["handle_chinese_chars"] as? Bool) ?? true
    }

    /// Reads `tokenizer.json` from a file.
    public init(contentsOf url: URL) throws {
        try self.init(tokenizerJSON: try Data(contentsOf: url))
    }

    /// The ids of `text`: `[CLS]`, at most `maxTokens - 2` word pieces, `[SEP]`.
    public func encode(_ text: String, maxTokens: Int = 256) -> [Int32] {
        var ids: [Int32] = [clsID]
        let limit = max(0, maxTokens - 2)
        for word in words(normalize(text)) {
            if ids.count - 1 >= limit { break }
            for piece in pieces(word) {
                if ids.count - 1 >= limit { break }
                ids.append(piece)
            }
        }
        ids.append(sepID)
        return ids
    }

    /// The words of `text` as `encode` splits them, each with its code-point range in `text`
    /// and its word pieces (no `[CLS]`/`[SEP]`, no truncation): what a token classifier needs to
    /// map tags back onto the text. The pieces are the ones `encode` gives.
    public func wordPieces(_ text: String) -> [(range: Range<Int>, pieces: [Int32])] {
        var out: [(range: Range<Int>, pieces: [Int32])] = []
        var current: [Unicode.Scalar] = []
        var start = 0
        var end = 0
        func flush() {
            if !current.isEmpty { out.append((start..<end, pieces(current))) }
            current.removeAll(keepingCapacity: true)
        }
        for (offset, original) in text.unicodeScalars.enumerated() {
            for c in normalize(scalar: original) {
                if Self.isWhitespace(c) {
                    flush()
                } else if Self.isPunctuation(c) {
                    flush()
                    out.append((offset..<(offset + 1), pieces([c])))
                } else {
                    if current.isEmpty { start = offset }
                    current.append(c)
                    end = offset + 1
                }
            }
        }
        flush()
        return out
    }

    /// `normalize` for one code point (accents stripped from its own decomposition).
    func normalize(scalar c: Unicode.Scalar) -> [Unicode.Scalar] {
        if c.isASCII {
            if cleanText {
                if c.value == 0 || Self.isControl(c) { return [] }
                if Self.isWhitespace(c) { return [" "] }
            }
            return lowercase && c.properties.isUppercase ? [Unicode.Scalar(c.value + 32)!] : [c]
        }
        return normalize(String(Character(c)))
    }

    // MARK: normalization (BertNormalizer)

    func normalize(_ text: String) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.unicodeScalars.count)
        for c in text.unicodeScalars {
            if cleanText {
                if c.value == 0 || c.value == 0xFFFD || Self.isControl(c) { continue }
                if Self.isWhitespace(c) {
                    out.append(" ")
                    continue
                }
            }
            if handleChineseChars && Self.isChinese(c) {
                out.append(" ")
                out.append(c)
                out.append(" ")
            } else {
                out.append(c)
            }
        }
        if stripAccents {
            var s = String.UnicodeScalarView()
            s.append(contentsOf: out)
            let decomposed = String(s).decomposedStringWithCanonicalMapping
            out = decomposed.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }
        }
        if lowercase {
            var lowered: [Unicode.Scalar] = []
            lowered.reserveCapacity(out.count)
            // Character by character, without context (as the Rust tokenizer does).
            for c in out { lowered.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars) }
            out = lowered
        }
        return out
    }

    static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        c == " " || c == "\t" || c == "\n" || c == "\r" || c.properties.generalCategory == .spaceSeparator
    }

    static func isControl(_ c: Unicode.Scalar) -> Bool {
        if c == "\t" || c == "\n" || c == "\r" { return false }
        switch c.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    static func isChinese(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F, 0x2B820...0x2CEAF,
            0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default: return false
        }
    }

    static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        if c.isASCII {
            let v = c.value
            return (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v)
        }
        switch c.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation, .finalPunctuation,
            .otherPunctuation:
            return true
        default: return false
        }
    }

    // MARK: pre-tokenization (BertPreTokenizer)

    func words(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var out: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for c in scalars {
            if Self.isWhitespace(c) {
                if !current.isEmpty { out.append(current); current = [] }
            } else if Self.isPunctuation(c) {
                if !current.isEmpty { out.append(current); current = [] }
                out.append([c])
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    // MARK: WordPiece

    func pieces(_ word: [Unicode.Scalar]) -> [Int32] {
        if word.count > maxInputCharsPerWord { return [unknownID] }
        var out: [Int32] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32?
            while start < end {
                var piece = start > 0 ? continuingPrefix : ""
                piece.unicodeScalars.append(contentsOf: word[start..<end])
                if let id = vocab[piece] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else { return [unknownID] }
            out.append(id)
            start = end
        }
        return out
    }
}
