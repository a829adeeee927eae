import Foundation
import Testing
@testable import SluiceEmbeddings

/// Token ids against Hugging Face `tokenizers` on a few hundred varied sentences. `make test`
/// fetches the model (`scripts/minilm-model.sh`) and writes the reference
/// (`scripts/minilm-reference.py`); without them (a plain `swift test`) this is skipped.
@Suite(.enabled(if: MiniLMFiles.available, "needs SLUICE_MINILM_DIR and SLUICE_MINILM_REFERENCE (make test sets them)"))
struct WordPieceTokenizerTests {
    struct Case: Decodable {
        struct Word: Decodable {
            let start: Int
            let end: Int
            let pieces: [Int32]
        }
        let text: String
        let ids: [Int32]
        let words: [Word]?
    }

    @Test func idsMatchTheReferenceTokenizer() throws {
        let tokenizer = try WordPieceTokenizer(contentsOf: MiniLMFiles.directory!.appendingPathComponent("tokenizer.json"))
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: MiniLMFiles.reference!))
        #expect(cases.count >= 300)
        var mismatches = 0
        for c in cases {
            let ids = tokenizer.encode(c.text)
            if ids != c.ids {
                mismatches += 1
                if mismatches <= 5 { Issue.record("\(c.text.prefix(60).debugDescription): \(ids.prefix(20)) != \(c.ids.prefix(20))") }
            }
        }
        #expect(mismatches == 0)
    }

    /// The words a token classifier reads: the same pieces as `encode`, and each word's
    /// code-point range in the original text as `tokenizers` gives it (accents, CJK, emoji,
    /// control characters and ligatures included).
    @Test func wordRangesMatchTheReferenceOffsets() throws {
        let tokenizer = try WordPieceTokenizer(contentsOf: MiniLMFiles.directory!.appendingPathComponent("tokenizer.json"))
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: MiniLMFiles.reference!))
        var mismatches = 0
        var checked = 0
        for c in cases {
            guard let expected = c.words else { continue }
            checked += 1
            let words = tokenizer.wordPieces(c.text)
            let same = words.count == expected.count
                && zip(words, expected).allSatisfy { $0.range == $1.start..<$1.end && $0.pieces == $1.pieces }
            if !same {
                mismatches += 1
                if mismatches <= 5 {
                    Issue.record("\(c.text.prefix(60).debugDescription): \(words.prefix(6).map { "\($0.range)" }) != \(expected.prefix(6).map { "\($0.start)..<\($0.end)" })")
                }
            }
        }
        #expect(checked >= 300)
        #expect(mismatches == 0)
    }

    @Test func truncatesTo256WithTheSpecialTokens() throws {
        let tokenizer = try WordPieceTokenizer(contentsOf: MiniLMFiles.directory!.appendingPathComponent("tokenizer.json"))
        let ids = tokenizer.encode(String(repeating: "word ", count: 1000))
        #expect(ids.count == 256)
        #expect(ids.first == 101 && ids.last == 102)
        #expect(tokenizer.encode("") == [101, 102])
    }

    @Test func refusesAFileThatIsNotWordPiece() {
        #expect(throws: WordPieceTokenizer.FormatError.self) { try WordPieceTokenizer(tokenizerJSON: Data(#"{"model":{"type":"BPE"}}"#.utf8)) }
    }
}

enum MiniLMFiles {
    static let directory = ProcessInfo.processInfo.environment["SLUICE_MINILM_DIR"].map { URL(fileURLWithPath: $0) }
    static let reference = ProcessInfo.processInfo.environment["SLUICE_MINILM_REFERENCE"].map { URL(fileURLWithPath: $0) }
    static var available: Bool { directory != nil && reference != nil }
}
