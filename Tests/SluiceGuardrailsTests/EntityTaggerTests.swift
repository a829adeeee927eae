import Foundation
import SluiceCore
import Testing
@testable import SluiceGuardrails

/// The word-shape features the tagger adds to MiniLM's lower-cased states must be exactly the
/// ones `scripts/train-pii-tagger.py` trained on (`shape_features`).
struct EntityTaggerTests {
    @Test func shapeFeaturesAreTheTrainingScripts() {
        let text = "Ann lives IN rome.\nSince 1999!"
        let words = [0..<3, 4..<9, 10..<12, 13..<17, 17..<18, 19..<24, 25..<29, 29..<30]
        let f = EntityTagger.shape(Array(text.unicodeScalars), words: words)
        #expect(f.count == words.count * EntityTagger.shapeFeatures)
        func row(_ i: Int) -> [Float] { Array(f[(i * 11)..<((i + 1) * 11)]) }
        // initial capital, all capitals, all lower, digit, all digits, punctuation, sentence start,
        // previous word's capital, next word's capital, caseless text, four digits or more
        #expect(row(0) == [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])  // Ann
        #expect(row(1) == [0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0])  // lives
        #expect(row(2) == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])  // IN
        #expect(row(4) == [0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0])  // .
        #expect(row(5) == [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])  // Since, after "." and a line break
        #expect(row(6) == [0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1])  // 1999
        // A text without capitals says so on every word.
        let lower = EntityTagger.shape(Array("call ann at noon".unicodeScalars), words: [0..<4, 5..<8, 9..<11, 12..<16])
        #expect((0..<4).allSatisfy { lower[$0 * 11 + 9] == 1 })
    }

    /// A tagged address that takes in a phone number gives way to it but keeps the rest of its
    /// text: neither the number nor the street leaves unredacted.
    @Test func anEntityKeepsWhatIsLeftAroundAStructuredFinding() {
        let text = "Write to 14 Baker Street, London, +44 20 7946 0958 office, before noon."
        let scalars = Array(text.unicodeScalars)
        func offset(_ s: String) -> Int { text.unicodeScalars.distance(from: text.unicodeScalars.startIndex, to: text.range(of: s)!.lowerBound.samePosition(in: text.unicodeScalars)!) }
        let start = offset("14 Baker")
        let end = offset(" office") + " office".unicodeScalars.count
        let entity = PIIFinding(type: .streetAddress, start: start, end: end, score: 0.9)
        let found = PIIScanner().scan(ScalarText(text), entities: [entity])
        func slice(_ f: PIIFinding) -> String { String(String.UnicodeScalarView(scalars[f.start..<f.end])) }
        #expect(found.map(\.type) == [.streetAddress, .phone, .streetAddress], "\(found.map(slice))")
        #expect(found.map(slice) == ["14 Baker Street, London", "+44 20 7946 0958", "office"])
        // Without entities the scan is what it was: the cue-based street address and the phone.
        #expect(PIIScanner().scan(ScalarText(text)).map(slice) == ["14 Baker Street", "+44 20 7946 0958"])
    }

    /// The encoder reads a JSON text (a tool's result) with its escapes blanked, offsets kept,
    /// so `\nJohn` is a line break before a name; prose, and text that only looks like JSON, go
    /// to it as they are.
    @Test func aJSONTextIsEncodedWithItsEscapesBlanked() async throws {
        final class Recorder: WordEncoder, @unchecked Sendable {
            let lock = NSLock()
            var texts: [String] = []
            func wordStates(_ texts: [String]) async throws -> [WordStates] {
                lock.withLock { self.texts += texts }
                return texts.map { _ in WordStates(words: [], states: [], width: 384) }
            }
        }
        let recorder = Recorder()
        let json = #"{"note":"Call\nJohn Smith at \u0031pm","tab":"a\tb"}"#
        let prose = #"Line one\nJohn"#
        let broken = #"{"note":"Call\nJohn"#
        _ = try await EntityTagger(encoder: recorder).findings([json, prose, broken])
        #expect(recorder.texts == [#"{"note":"Call  John Smith at       pm","tab":"a  b"}"#, prose, broken])
        #expect(recorder.texts[0].unicodeScalars.count == json.unicodeScalars.count)
    }

    @Test func theShippedWeightsHaveTheirDeclaredSizes() {
        let net = EntityTaggerWeights.network
        #expect(EntityTaggerWeights.inputs == 384 + EntityTagger.shapeFeatures)
        #expect(net.w1.count == EntityTaggerWeights.inputs * EntityTaggerWeights.hidden)
        #expect(net.w2.count == EntityTaggerWeights.hidden * EntityTaggerWeights.tags)
        #expect(EntityTaggerWeights.tags == 1 + 2 * EntityTagger.types.count)
        #expect(net.start.count == EntityTaggerWeights.tags && net.transition.count == EntityTaggerWeights.tags * EntityTaggerWeights.tags)
        // Learned from the training labels: "inside" follows its own "beginning", never "none".
        let tags = EntityTaggerWeights.tags
        for kind in 0..<EntityTagger.types.count {
            let begin = 1 + 2 * kind
            #expect(net.transition[begin * tags + begin + 1] > net.transition[0 * tags + begin + 1] + 5, "type \(kind)")
        }
        #expect(net.w1.contains { $0 != 0 }, "trained weights, not a placeholder")
    }
}
