import NIOCore
import SluiceCore
import Testing

@testable import SluiceObservability

/// What the record stage learns from a stream as it passes: the audit log's copy of the answer
/// is the first choice's text, gathered event by event (the events themselves are not kept).
@Suite struct StreamWatchTests {
    static func event(content: String?, finish: String? = nil) throws -> ChatStreamEvent {
        let delta = content.map { #"{"content":"\#($0)"}"# } ?? #"{"role":"assistant"}"#
        let reason = finish.map { "\"\($0)\"" } ?? "null"
        return try ChatStreamEvent(
            encoded: ByteBuffer(
                string: #"{"id":"c1","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":\#(delta),"finish_reason":\#(reason)}]}"#))
    }

    @Test func gathersTheFirstChoicesTextAsTheStreamPasses() throws {
        let watch = StreamWatch(startedAt: .now, keepsText: true)
        let facts = RequestFacts()
        watch.observe(try Self.event(content: nil), facts: facts)
        #expect(facts.snapshot.answer.timeToFirstToken == nil)
        for piece in ["Hel", "lo, ", "world"] { watch.observe(try Self.event(content: piece), facts: facts) }
        #expect(facts.snapshot.answer.timeToFirstToken != nil)
        watch.observe(try Self.event(content: nil, finish: "stop"), facts: facts)
        watch.close(facts: facts)
        #expect(facts.snapshot.bodies.streamText == "Hello, world")
        #expect(facts.snapshot.answer.finishReason == "stop")
        // The exchange the audit writer gets counts the text toward its byte bound.
        let exchange = CapturedExchange(messages: [], streamText: facts.snapshot.bodies.streamText)
        #expect(exchange.approximateBytes == "Hello, world".utf8.count)
    }

    @Test func noTextWithoutOutputOrWhenBodiesAreNotKept() throws {
        let silent = StreamWatch(startedAt: .now, keepsText: true)
        let facts = RequestFacts()
        silent.observe(try Self.event(content: nil), facts: facts)
        silent.observe(try Self.event(content: nil, finish: "length"), facts: facts)
        silent.close(facts: facts)
        #expect(facts.snapshot.bodies.streamText == nil)
        #expect(facts.snapshot.answer.finishReason == "length")

        let unkept = StreamWatch(startedAt: .now, keepsText: false)
        let other = RequestFacts()
        unkept.observe(try Self.event(content: "secret"), facts: other)
        unkept.close(facts: other)
        #expect(other.snapshot.bodies.streamText == nil)
    }
}
