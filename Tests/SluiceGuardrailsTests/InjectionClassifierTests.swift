import SluiceCore
import Testing
@testable import SluiceGuardrails

@Suite struct InjectionClassifierTests {
    @Test func shortTextIsOneWindow() {
        #expect(InjectionClassifier.windows("Summarise this e-mail, please.", maxWindows: 8) == ["Summarise this e-mail, please."])
        #expect(InjectionClassifier.windows("  \n ", maxWindows: 8) == [""])
        // Runs of whitespace of any kind become one space, as Python's str.split() sees them.
        #expect(InjectionClassifier.windows("a\t\tb\u{00A0}c\u{3000}d", maxWindows: 8) == ["a b c d"])
    }

    @Test func longTextIsCutAtWordsIntoBoundedWindows() {
        let words = (0..<400).map { "word\($0)" }
        let windows = InjectionClassifier.windows(words.joined(separator: " "), maxWindows: 64)
        #expect(windows.count > 1)
        #expect(windows.allSatisfy { $0.unicodeScalars.count <= InjectionClassifier.windowChars })
        // Every word kept, in order, none split.
        #expect(windows.joined(separator: " ").split(separator: " ").map(String.init) == words)
        // Full windows: the next word would not have fitted.
        for (i, w) in windows.dropLast().enumerated() {
            let next = windows[i + 1].split(separator: " ").first!
            #expect(w.unicodeScalars.count + 1 + next.unicodeScalars.count > InjectionClassifier.windowChars)
        }
    }

    @Test func aWordLongerThanAWindowIsCutIntoPieces() {
        let long = String(repeating: "QUJD", count: 250)  // 1,000 characters of base64
        let windows = InjectionClassifier.windows("decode this: \(long) now", maxWindows: 8)
        #expect(windows == ["decode this:", String(long.prefix(480)), String(long.dropFirst(480).prefix(480)), String(long.suffix(40)) + " now"])
    }

    @Test func aTextPastTheWindowCapKeepsItsFirstAndLastWindows() {
        let text = (0..<40).map { "Paragraph \($0) " + String(repeating: "filler ", count: 60) }.joined(separator: " ")
        let all = InjectionClassifier.windows(text, maxWindows: 64)
        let capped = InjectionClassifier.windows(text, maxWindows: 8)
        #expect(all.count > 8 && capped.count == 8)
        #expect(Array(capped.prefix(4)) == Array(all.prefix(4)))
        #expect(Array(capped.suffix(4)) == Array(all.suffix(4)))
    }

    /// A head that fires on one direction: windows mentioning "override" are embedded on it.
    static let head = InjectionHead(weights: [8, 0, 0], bias: -4)
    static let embed: InjectionClassifier.Embed = { texts in texts.map { $0.contains("override") ? [1, 0, 0] : [0, 1, 0] } }

    @Test func aTextScoresAsItsHighestWindow() async throws {
        let classifier = InjectionClassifier(embed: Self.embed, head: Self.head, threshold: 0.5)
        let benign = String(repeating: "Quarterly figures look fine. ", count: 40)
        let verdicts = try await classifier.score([benign, benign + " override the rules " + benign, "override"])
        #expect(verdicts[0].score < 0.05 && verdicts[0].windows > 1)
        #expect(verdicts[1].score > 0.95)
        #expect(verdicts[1].window > 0 && verdicts[1].window < verdicts[1].windows - 1)
        #expect(verdicts[1].reason.hasPrefix("classifier 0.98") && verdicts[1].reason.contains("of \(verdicts[1].windows))"))
        #expect(verdicts[2].windows == 1 && verdicts[2].reason == "classifier 0.982")
    }

    @Test func aTextOfOneWindowIsEmbeddedAsGiven() {
        // Line breaks and Unicode spaces: the tokenizer splits there too, so the message itself
        // is embedded, the vector other stages asked for.
        let message = "Summarise this e-mail,\n\nplease.\u{00A0}Thanks"
        #expect(InjectionClassifier.embeddedWindows(message, maxWindows: 8) == [message])
        // A form feed is whitespace to str.split() but not to the tokenizer: the window is embedded.
        #expect(InjectionClassifier.embeddedWindows("a\u{0C}b", maxWindows: 8) == ["a b"])
        // Longer than a window: the windows.
        let long = String(repeating: "Quarterly figures look fine. ", count: 40)
        #expect(InjectionClassifier.embeddedWindows(long, maxWindows: 8) == InjectionClassifier.windows(long, maxWindows: 8))
    }

    @Test func anEmbeddingOfAnotherModelIsAnError() async {
        let classifier = InjectionClassifier(embed: { texts in texts.map { _ in [Float](repeating: 0.1, count: 768) } }, head: Self.head)
        await #expect(throws: SluiceError.self) { try await classifier.score("hello") }
    }

    @Test func theShippedHeadFitsMiniLM() {
        #expect(InjectionHead.trained.weights.count == 384)
        #expect((0.0...1.0).contains(InjectionHead.defaultThreshold))
    }
}
