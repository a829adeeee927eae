import NIOCore
import Testing
@testable import SluiceProviders

@Suite struct SSEParserTests {
    func events(_ pieces: [String]) -> [SSEEvent] {
        var parser = SSEParser()
        var out: [SSEEvent] = []
        for piece in pieces {
            parser.append(ByteBuffer(string: piece))
            while let e = parser.next() { out.append(e) }
        }
        if let e = parser.finish() { out.append(e) }
        return out
    }

    @Test func splitsEventsWhateverTheChunking() {
        let text = "data: {\"a\":1}\n\ndata: {\"b\":2}\n\nevent: done\ndata: [DONE]\n\n"
        let whole = events([text])
        #expect(whole.map { String(buffer: $0.data) } == ["{\"a\":1}", "{\"b\":2}", "[DONE]"])
        #expect(whole[2].event == "done")
        // One byte at a time gives the same events.
        let bytewise = events(text.map { String($0) })
        #expect(bytewise == whole)
    }

    @Test func acceptsCRLFCommentsAndMultilineData() {
        let e = events([": keep-alive\r\n\r\ndata: line1\r\ndata: line2\r\n\r\nid: 3\r\ndata:nospace\r\n\r\n"])
        #expect(e.map { String(buffer: $0.data) } == ["line1\nline2", "nospace"])
    }

    @Test func flushesAnUnterminatedLastEvent() {
        #expect(events(["data: tail"]).map { String(buffer: $0.data) } == ["tail"])
        #expect(events(["event: x\n\n"]).isEmpty)
    }
}
