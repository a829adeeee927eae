import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing
@testable import SluiceServer

/// `EventStreamFlushes`: an event stream's flushes wait for the end of the loop's current job, so
/// that the events written in one go leave together; everything else, the stream's end and a
/// close flush at once.
@Suite struct EventStreamFlushesTests {
    func head(_ contentType: String) -> HTTPResponsePart {
        .head(HTTPResponse(status: .ok, headerFields: [.contentType: contentType]))
    }

    func body(_ text: String) -> HTTPResponsePart { .body(ByteBuffer(string: text)) }

    func written(_ channel: EmbeddedChannel) throws -> [String] {
        var parts: [String] = []
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) {
            switch part {
            case .head: parts.append("head")
            case .body(let b): parts.append(String(buffer: b))
            case .end: parts.append("end")
            }
        }
        return parts
    }

    @Test func anEventStreamsFlushesWaitForTheEndOfTheJob() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: EventStreamFlushes(), loop: loop)
        defer { _ = try? channel.finish() }
        channel.write(head("text/event-stream"), promise: nil)
        channel.flush()
        // The head waits for the first event, which leaves at once, with it.
        #expect(try written(channel).isEmpty)
        channel.write(body("data: 1\n\n"), promise: nil)
        channel.flush()
        #expect(try written(channel) == ["head", "data: 1\n\n"])
        channel.write(body("data: 2\n\n"), promise: nil)
        channel.flush()
        channel.write(body("data: 3\n\n"), promise: nil)
        channel.flush()
        // The events after it wait while the job that wrote them runs.
        #expect(try written(channel).isEmpty)
        loop.run()
        #expect(try written(channel) == ["data: 2\n\n", "data: 3\n\n"])
        // A head whose first event is not there yet leaves when the job ends.
        channel.write(HTTPResponsePart.end(nil), promise: nil)
        channel.flush()
        #expect(try written(channel) == ["end"])
        channel.write(head("text/event-stream"), promise: nil)
        channel.flush()
        loop.run()
        #expect(try written(channel) == ["head"])
        channel.write(body("data: 1\n\n"), promise: nil)
        channel.flush()
        #expect(try written(channel) == ["data: 1\n\n"])
        // The end flushes at once, with what was written before it.
        channel.write(body("data: 3\n\n"), promise: nil)
        channel.flush()
        channel.write(HTTPResponsePart.end(nil), promise: nil)
        channel.flush()
        #expect(try written(channel) == ["data: 3\n\n", "end"])
        loop.run()
        #expect(try written(channel).isEmpty)
        // The next answer on the connection is not a stream: flushed at once.
        channel.write(head("application/json"), promise: nil)
        channel.write(body("{}"), promise: nil)
        channel.flush()
        #expect(try written(channel) == ["head", "{}"])
    }

    @Test func aCloseSendsWhatWasWaiting() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: EventStreamFlushes(), loop: loop)
        channel.write(head("text/event-stream; charset=utf-8"), promise: nil)
        channel.write(body("data: 1\n\n"), promise: nil)
        channel.flush()
        #expect(try written(channel) == ["head", "data: 1\n\n"])
        let sent = loop.makePromise(of: Void.self)
        channel.write(body("data: 2\n\n"), promise: sent)
        channel.flush()
        #expect(try written(channel).isEmpty)
        channel.close(promise: nil)
        loop.run()
        // Written before the close, not failed by it.
        var result: Result<Void, any Error>?
        sent.futureResult.whenComplete { result = $0 }
        #expect((try? result?.get()) != nil)
        #expect(try written(channel) == ["data: 2\n\n"])
    }

    @Test func onlyEventStreamsAreHeld() {
        #expect(EventStreamFlushes.isEventStream("text/event-stream"))
        #expect(EventStreamFlushes.isEventStream("text/event-stream; charset=utf-8"))
        #expect(!EventStreamFlushes.isEventStream("application/json"))
        #expect(!EventStreamFlushes.isEventStream("text/plain"))
    }
}
