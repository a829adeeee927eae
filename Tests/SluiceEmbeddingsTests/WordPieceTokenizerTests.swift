import Foundation
import Testing
@testable import SluiceEmbeddings

/// Token ids against Hugging Face `tokenizers` on a few hundred varied sentences. `make test`
/// fetches the model (`scripts/minilm-model.sh`) and writes the reference
/// (`scripts/minilm-reference.py`); without them (a plain `swift test`) this is skipped.
@Suite(.enabled(if: MiniLMFiles.available, "needs SLUICE_MINILM_DIR and SLUICE_MINILM_REFERENCE (make test sets them)"))
struct WordPieceTokenizerTests {
    struct Case: Decodable {
        let text: String
        let ids: [Int32]
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
