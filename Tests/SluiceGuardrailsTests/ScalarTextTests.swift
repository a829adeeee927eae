import Testing
@testable import SluiceGuardrails

/// `slice` writes UTF-8 itself: it must give back exactly the text between two code-point
/// offsets, in every UTF-8 length, as the scalars' own encoding does.
@Suite struct ScalarTextTests {
    @Test func slicesAreTheTextBetweenCodePointOffsets() {
        let text = "Zoë paid €5 😀 to Dana at dana@example.com, ok"
        let t = ScalarText(text)
        let scalars = Array(text.unicodeScalars)
        for start in 0...scalars.count {
            for end in start...scalars.count {
                var expected = String.UnicodeScalarView()
                expected.append(contentsOf: scalars[start..<end])
                #expect(t.slice(start, end) == String(expected))
            }
        }
        #expect(t.slice(-5, 3) == "Zoë")
        #expect(t.slice(40, 1_000) == String(String.UnicodeScalarView(scalars[40...])))
        #expect(t.slice(7, 3) == "")
        #expect(ScalarText("").slice(0, 1) == "")
    }

    @Test func whatIsNotAScalarIsLeftOutAsAppendUTF8LeavesItOut() {
        let t = ScalarText(unchecked: [0x61, 0xD800, 0x62, 0x110000, 0x1F600])
        var bytes: [UInt8] = []
        t.appendUTF8(0, 5, to: &bytes)
        #expect(t.slice(0, 5) == String(decoding: bytes, as: UTF8.self))
        #expect(t.slice(0, 5) == "ab😀")
    }

    /// JSON escapes become spaces of their own length; everything else, and every offset, stays.
    @Test func jsonEscapesAreBlankedInPlace() {
        let json = #"{"a":"x\ny\t\"q\" \u00e9\\z\u12","b":"\"#
        let blanked = ScalarText(json).blankingJSONEscapes()
        #expect(blanked.count == ScalarText(json).count)
        #expect(blanked.slice(0, blanked.count) == #"{"a":"x  y    q"#.appending(String(repeating: " ", count: 11)) + #"z  12","b":" "#)
        let plain = ScalarText("no escapes here")
        #expect(plain.blankingJSONEscapes() == plain)
    }
}
