import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Sends the events of a server-sent-events answer that are written in one go — those of one
/// upstream read, a cached answer replayed — in one write instead of one each.
///
/// While an event stream is being answered, a flush after its first event waits for the end of
/// the event loop's current job: the events the stream's task writes before it next waits go out
/// together, and when it waits (for the next upstream read) they go out at once, so nothing is
/// held back for longer than that. The first event is flushed at once (with the head, when it
/// is already there), so the time to first token does not wait on the events behind it. Any
/// other answer, the stream's last part and a close flush at once.
final class EventStreamFlushes: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// An event stream's head was written and its end was not.
    private var streaming = false
    /// The stream's head was written and its first event was not.
    private var awaitingFirstEvent = false
    /// The next flush goes out at once: it follows the stream's first event.
    private var flushNow = false
    /// A flush is waiting for the end of the loop's current job.
    private var flushPending = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            streaming = head.headerFields[.contentType].map(Self.isEventStream) ?? false
            awaitingFirstEvent = streaming
        case .body:
            if awaitingFirstEvent {
                awaitingFirstEvent = false
                flushNow = true
            }
        case .end:
            streaming = false
        }
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        guard streaming, !flushNow else {
            flushNow = false
            flushPending = false
            context.flush()
            return
        }
        guard !flushPending else { return }
        flushPending = true
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = bound.value
            guard handler.flushPending else { return }
            handler.flushPending = false
            context.flush()
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // Writes not yet flushed would be failed by the close.
        if flushPending {
            flushPending = false
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if flushPending {
            flushPending = false
            context.flush()
        }
    }

    static func isEventStream(_ contentType: String) -> Bool {
        contentType.utf8.starts(with: "text/event-stream".utf8)
    }
}
