import Foundation
import SluiceCore
import Testing

@testable import SluiceRetrieval

/// Text extraction for every format, and chunks that follow structure and fit their size.
@Suite struct ChunkingTests {
    /// One token per word: sizes in tests are word counts.
    static let words: @Sendable (String) -> Int = { $0.split(whereSeparator: { $0.isWhitespace }).count }

    @Test func markdownKeepsHeadingsParagraphsListsAndCode() throws {
        let text = """
            # Guide

            Intro paragraph
            on two lines.

            ## Install
            - step one
            - step two

            ```
            make run

            make test
            ```

            # Other
            Last words.
            """
        let blocks = try DocumentText.extract(Array(text.utf8), format: .markdown)
        #expect(blocks.map(\.headings) == [["Guide"], ["Guide", "Install"], ["Guide", "Install"], ["Guide", "Install"], ["Other"]])
        #expect(blocks[0].text == "Intro paragraph\non two lines.")
        #expect(blocks[1].text == "- step one" && blocks[2].text == "- step two")
        // A fenced block is one block, blank line and all.
        #expect(blocks[3].text.contains("make run\n\nmake test"))
        #expect(blocks[4].text == "Last words.")
    }

    @Test func htmlKeepsTextAndHeadingsAndDropsScriptsStylesAndTags() throws {
        let html = """
            <html><head><title>T</title><style>p { color: red }</style></head><body>
            <h1>Tides</h1><p>The moon &amp; the sun <b>pull</b> the sea.</p>
            <script>alert("x")</script><!-- hidden -->
            <h2>Spring <em>tides</em></h2><ul><li>High</li><li>Low &#233;bb</li></ul>
            <table><tr><td>a</td><td>b</td></tr></table>
            </body></html>
            """
        let blocks = try DocumentText.extract(Array(html.utf8), format: .html)
        let texts = blocks.map(\.text)
        #expect(texts.contains("The moon & the sun pull the sea."))
        #expect(!texts.joined().contains("alert") && !texts.joined().contains("color") && !texts.joined().contains("hidden"))
        #expect(blocks.first { $0.text == "High" }?.headings == ["Tides", "Spring tides"])
        #expect(texts.contains("Low ébb"))
        #expect(texts.contains("a b"))
    }

    @Test func jsonAndJSONLinesGiveTheirStringFields() throws {
        let json = #"{"title": "Sluice", "tags": ["fast", "safe"], "n": 3, "nested": {"body": "Text here."}}"#
        let blocks = try DocumentText.extract(Array(json.utf8), format: .json)
        #expect(Set(blocks.map(\.text)) == ["Sluice", "fast", "safe", "Text here."])
        #expect(blocks.first { $0.text == "Text here." }?.headings == ["nested.body"])
        let lines = "{\"q\": \"one\", \"a\": \"first\"}\n\n{\"q\": \"two\"}\n"
        let records = try DocumentText.extract(Array(lines.utf8), format: .jsonLines)
        #expect(records.map(\.text) == ["first\none", "two"])
        #expect(records.map(\.page) == [1, 3])
        #expect(throws: SluiceError.self) { try DocumentText.extract(Array("{\"ok\": 1}\n{broken\n".utf8), format: .jsonLines) }
        #expect(throws: SluiceError.self) { try DocumentText.extract(Array("{broken".utf8), format: .json) }
    }

    @Test func formatsAreDetectedFromNameAndBytes() {
        #expect(DocumentFormat.detect(filename: "a.md", bytes: []) == .markdown)
        #expect(DocumentFormat.detect(filename: "a.HTM", bytes: []) == .html)
        #expect(DocumentFormat.detect(filename: "notes", bytes: Array("plain".utf8)) == .text)
        #expect(DocumentFormat.detect(filename: "x.bin", bytes: Array("%PDF-1.4".utf8)) == .pdf)
        #expect(DocumentFormat.detect(filename: "image.png", bytes: [0x89, 0x50]) == nil)
        #expect(DocumentFormat.detect(filename: "blob", bytes: [0, 1, 2]) == nil)
        #expect(throws: SluiceError.self) { try DocumentText.extract([0xFF, 0xFE, 0x00], format: .text) }
    }

    /// A one-page PDF written by hand (the smallest valid file: catalog, pages, page, font, content).
    static func pdf(_ text: String) -> [UInt8] {
        let content = "BT /F1 12 Tf 72 720 Td (\(text)) Tj ET"
        var objects = [
            "<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
            "<< /Length \(content.utf8.count) >>\nstream\n\(content)\nendstream", "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
        var out = "%PDF-1.4\n"
        var offsets: [Int] = []
        for (i, body) in objects.enumerated() {
            offsets.append(out.utf8.count)
            out += "\(i + 1) 0 obj\n\(body)\nendobj\n"
        }
        let xref = out.utf8.count
        out += "xref\n0 \(objects.count + 1)\n0000000000 65535 f \n"
        for offset in offsets { out += String(format: "%010d 00000 n \n", offset) }
        out += "trailer\n<< /Size \(objects.count + 1) /Root 1 0 R >>\nstartxref\n\(xref)\n%%EOF\n"
        objects.removeAll()
        return Array(out.utf8)
    }

    static var hasPdftotext: Bool {
        ["/usr/bin/pdftotext", "/usr/local/bin/pdftotext"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test(.enabled(if: hasPdftotext, "needs pdftotext (poppler-utils; make test installs it)"))
    func pdfTextComesThroughPdftotextAndACorruptPDFIsAClearError() throws {
        let blocks = try DocumentText.extract(Self.pdf("Tides follow the moon."), format: .pdf)
        #expect(blocks.map(\.text) == ["Tides follow the moon."])
        #expect(blocks.first?.page == 1)
        let corrupt = Array("%PDF-1.4\n1 0 obj garbage".utf8)
        let error = #expect(throws: SluiceError.self) { try DocumentText.extract(corrupt, format: .pdf) }
        #expect(error?.message.hasPrefix("The PDF could not be read") == true)
    }

    @Test func aMissingPdftotextIsNamed() {
        let error = #expect(throws: SluiceError.self) { try DocumentText.extract(Self.pdf("x"), format: .pdf, pdftotext: "/nonexistent/pdftotext") }
        #expect(error?.message.contains("poppler-utils") == true)
    }

    @Test func chunksNeverSpanSectionsAndFitTheirSize() {
        let long = (1...30).map { "Sentence number \($0) has six words." }.joined(separator: " ")
        let blocks = [
            TextBlock(headings: ["A"], text: "Short one."), TextBlock(headings: ["A"], text: "Short two."),
            TextBlock(headings: ["B"], text: long), TextBlock(headings: ["C"], text: "Tail."),
        ]
        let chunker = Chunker(maxTokens: 40, overlapTokens: 12, countTokens: Self.words)
        let chunks = chunker.chunks(blocks)
        // Section A's two paragraphs share a chunk; B is cut between sentences; C stands alone.
        #expect(chunks[0].text == "Short one.\n\nShort two." && chunks[0].headings == ["A"])
        #expect(chunks.last?.text == "Tail." && chunks.last?.headings == ["C"])
        let b = chunks.filter { $0.headings == ["B"] }
        #expect(b.count >= 5)
        for chunk in chunks {
            #expect(Self.words(chunk.text) + Self.words(chunk.headings.joined(separator: " ")) <= 40)
            #expect(chunk.text.hasSuffix("."))
        }
        // Consecutive chunks of one section overlap by whole sentences; every sentence is somewhere.
        for (x, y) in zip(b, b.dropFirst()) {
            let lastOfX = Chunker.sentences(x.text).last!
            #expect(Chunker.sentences(y.text).contains(lastOfX))
        }
        for n in 1...30 { #expect(b.contains { $0.text.contains("number \(n) has") }) }
        #expect(chunks.map(\.position) == Array(0..<chunks.count))
    }

    @Test func aSentenceLongerThanAChunkIsCutBetweenWordsAndAHugeWordByCharacters() {
        let sentence = (1...50).map { "w\($0)" }.joined(separator: " ") + " " + String(repeating: "x", count: 500)
        let chunker = Chunker(maxTokens: 10, overlapTokens: 0) { text in max(1, text.split(separator: " ").reduce(0) { $0 + ($1.count + 9) / 10 }) }
        let chunks = chunker.chunks([TextBlock(text: sentence)])
        #expect(chunks.allSatisfy { chunker.countTokens($0.text) <= 10 })
        #expect(chunks.map(\.text).joined(separator: " ").replacingOccurrences(of: " ", with: "") == sentence.replacingOccurrences(of: " ", with: ""))
    }

    @Test func sentencesRespectAbbreviationsAndInitials() {
        #expect(Chunker.sentences("Dr. Smith met J. R. Tolkien. They talked! Was it late? Yes.") == ["Dr. Smith met J. R. Tolkien.", "They talked!", "Was it late?", "Yes."])
        #expect(Chunker.sentences("Pi is 3.14 roughly. E.g. this.") == ["Pi is 3.14 roughly.", "E.g. this."])
    }

    @Test func autoChunkingFollowsTheModelsWindow() {
        let small = ChunkEmbedder(model: "m", window: 254, countTokens: Self.words, embed: { $0.map { _ in [1] } })
        let big = ChunkEmbedder(model: "m", window: 8191, countTokens: Self.words, embed: { $0.map { _ in [1] } })
        #expect(small.chunker(.auto).maxTokens == 254 && small.chunker(.auto).overlapTokens == 63)
        #expect(big.chunker(.auto).maxTokens == 800 && big.chunker(.auto).overlapTokens == 400)
        #expect(big.chunker(.fixed(maxTokens: 300, overlapTokens: 100)).overlapTokens == 100)
    }

    @Test func aChunkLongerThanTheWindowIsEmbeddedAsTheMeanOfItsPieces() async throws {
        let calls = CallLog()
        let embedder = ChunkEmbedder(model: "m", window: 16, batchSize: 2, countTokens: Self.words) { texts in
            calls.add(texts)
            return texts.map { $0.hasPrefix("a") ? [1, 0] : [0, 1] }
        }
        let long = (["a"] + Array(repeating: "c", count: 15) + Array(repeating: "b", count: 16)).joined(separator: " ")
        let vectors = try await embedder.vectors(["a a", long])
        #expect(vectors[0] == [1, 0])
        // Two pieces, one toward each axis: their normalised mean.
        #expect(abs(vectors[1][0] - 0.7071) < 0.001 && abs(vectors[1][1] - 0.7071) < 0.001, "\(vectors) \(calls.texts)")
        #expect(calls.texts.allSatisfy { $0.count <= 2 })
    }
}

final class CallLog: @unchecked Sendable {
    private let lock = NSLock()
    private var batches: [[String]] = []
    func add(_ texts: [String]) { lock.withLock { batches.append(texts) } }
    var texts: [[String]] { lock.withLock { batches } }
}
