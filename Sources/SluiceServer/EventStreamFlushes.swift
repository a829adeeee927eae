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

    /// Where the answer being written is.
    private enum State {
        /// Not an event stream (or none yet): every flush goes out at once.
        case other
        /// An event stream's head was written, its first event not yet: the head waits for it.
        case awaitingFirstEvent
        /// The first event was written: the next flush goes out at once.
        case firstEventWritten
        /// Past the first event: flushes wait for the end of the loop's current job.
        case streaming
    }

    private var state = State.other
    /// A flush is waiting for the end of the loop's current job.
    private var flushPending = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            state = head.headerFields[.contentType].map(Self.isEventStream) == true ? .awaitingFirstEvent : .other
        case .body:
            if state == .awaitingFirstEvent { state = .firstEventWritten }
        case .end:
            state = .other
        }
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        switch state {
        case .other, .firstEventWritten:
            if state == .firstEventWritten { state = .streaming }
            flushPending = false
            context.flush()
        case .awaitingFirstEvent, .streaming:
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
