import HTTPTypes
import Hummingbird
import HummingbirdCore
import Metrics
import NIOCore
import NIOHTTPTypes

/// Thrown into a connection's inbound stream when its request body took longer than `server.body_timeout_s`.
struct ReadDeadlineExceeded: Error {}

/// Deadlines on reading one request: the head within `header` of its first byte, the body within
/// `body` of the head. Hummingbird's idle timeout restarts with every byte, so without these a
/// client sending one byte at a time holds its connection (and what it costs) forever.
///
/// A late head is answered 408 and the connection closed; a late body surfaces as an error where
/// the route reads it (408 in the API's own shape), after which the connection closes.
final class RequestReadDeadlines: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Phase {
        /// Between requests: nothing of the next one has arrived.
        case idle
        /// Bytes of a request have arrived, its head is not complete.
        case head
        /// The head arrived; the body is being read.
        case body
        /// The whole request arrived; the answer is being written.
        case answering
    }

    private let header: TimeAmount
    private let body: TimeAmount
    /// A body that keeps arriving at this average rate or faster may take longer than `body`
    /// (a large file upload), one more `body` at a time.
    static let minimumBodyRate = 64 * 1024  // bytes per second
    private var phase = Phase.idle
    /// The answer was written before the request's body had all arrived (a 413, a 401).
    private var answered = false
    private var bodyStarted = NIODeadline.now()
    private var bodyBytes = 0
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(header: TimeAmount, body: TimeAmount) {
        self.header = header
        self.body = body
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The head's clock starts at its first byte, which only a handler before the HTTP decoder sees.
        try? context.pipeline.syncOperations.addHandler(FirstByteWatch(owner: self), position: .first)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        context.fireChannelInactive()
    }

    /// Raw bytes arrived (called by `FirstByteWatch`).
    func bytesArrived() {
        guard phase == .idle, let context else { return }
        phase = .head
        schedule(after: header, context: context) { handler, context in
            ReadDeadlineMetrics.expired(phase: "header")
            let body = ByteBuffer(string: Self.headTimeoutBody)
            let head = HTTPResponse(
                status: .requestTimeout, headerFields: [.connection: "close", .contentType: "application/json", .contentLength: String(body.readableBytes)])
            context.write(handler.wrapOutboundOut(.head(head)), promise: nil)
            context.write(handler.wrapOutboundOut(.body(body)), promise: nil)
            context.writeAndFlush(handler.wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        }
    }

    static let headTimeoutBody =
        #"{"error":{"message":"The request head did not arrive within server.header_timeout_s.","type":"invalid_request_error","code":"request_timeout","param":null}}"#

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            phase = .body
            answered = false
            bodyStarted = .now()
            bodyBytes = 0
            scheduleBodyDeadline(context: context)
        case .end:
            if phase == .body { cancel() }
            phase = answered ? .idle : .answering
        case .body(let part):
            bodyBytes += part.readableBytes
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // An answer sent before the body was read (a 413, a 401) leaves the body's clock running
        // while Hummingbird drains the rest.
        if case .end = unwrapOutboundIn(data) {
            if phase == .answering { phase = .idle } else if phase == .body { answered = true }
        }
        context.write(data, promise: promise)
    }

    private func scheduleBodyDeadline(context: ChannelHandlerContext) {
        schedule(after: body, context: context) { handler, context in
            let seconds = Double((NIODeadline.now() - handler.bodyStarted).nanoseconds) / 1e9
            if Double(handler.bodyBytes) >= Double(Self.minimumBodyRate) * seconds {
                handler.scheduleBodyDeadline(context: context)
                return
            }
            ReadDeadlineMetrics.expired(phase: "body")
            context.fireErrorCaught(ReadDeadlineExceeded())
            // The route answers 408 and the connection then closes; if nothing is reading, close anyway.
            let channel = context.channel
            context.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
        }
    }

    private func schedule(after delay: TimeAmount, context: ChannelHandlerContext, _ fire: @escaping (RequestReadDeadlines, ChannelHandlerContext) -> Void) {
        cancel()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = bound.value
            handler.timer = nil
            fire(handler, context)
        }
    }

    private func cancel() {
        timer?.cancel()
        timer = nil
    }
}

/// Tells `RequestReadDeadlines` when a request's first bytes arrive.
private final class FirstByteWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let owner: RequestReadDeadlines

    init(owner: RequestReadDeadlines) { self.owner = owner }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner.bytesArrived()
        context.fireChannelRead(data)
    }
}

enum ReadDeadlineMetrics {
    static func expired(phase: String) {
        Counter(label: "sluice_request_read_timeouts_total", dimensions: [("phase", phase)]).increment()
    }
}

/// At most `server.max_connections` open connections: beyond it the listener stops accepting
/// (new connections wait in the kernel's backlog) until one closes.
struct ConnectionCap: AvailableConnectionsDelegate {
    let limit: Int
    private var open = 0
    private let gauge = Gauge(label: "sluice_connections_open")
    private let opened = Counter(label: "sluice_connections_total")
    private let paused = Counter(label: "sluice_connection_limit_reached_total")

    init(limit: Int) { self.limit = limit }

    mutating func connectionOpened() {
        open += 1
        opened.increment()
        gauge.record(open)
        if open == limit { paused.increment() }
    }

    mutating func connectionClosed() {
        open -= 1
        gauge.record(open)
    }

    func isAcceptingNewConnections() -> Bool { open < limit }
}
