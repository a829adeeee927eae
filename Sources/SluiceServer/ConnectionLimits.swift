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
    /// What the armed deadline is for, and when it falls; nil when nothing is being read.
    private var watching = Watch.head
    private var deadline: NIODeadline?
    /// One timer per connection, not one per request: arming a later deadline leaves an earlier
    /// timer in place (when it fires it re-arms for the deadline then current) and disarming only
    /// clears `deadline`, so a keep-alive connection schedules a task about once per
    /// `header_timeout_s` rather than twice per request (each a heap insertion and a removal).
    private var timer: Scheduled<Void>?
    private var timerAt = NIODeadline.distantFuture
    private var context: ChannelHandlerContext?

    private enum Watch { case head, body }

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
        stopTimer()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopTimer()
        context.fireChannelInactive()
    }

    /// Raw bytes arrived (called by `FirstByteWatch`).
    func bytesArrived() {
        guard phase == .idle, let context else { return }
        phase = .head
        arm(.head, at: .now() + header, context: context)
    }

    private func headExpired(context: ChannelHandlerContext) {
        ReadDeadlineMetrics.expired(phase: "header")
        let body = ByteBuffer(string: Self.headTimeoutBody)
        let head = HTTPResponse(
            status: .requestTimeout, headerFields: [.connection: "close", .contentType: "application/json", .contentLength: String(body.readableBytes)])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
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
            arm(.body, at: bodyStarted + body, context: context)
        case .end:
            if phase == .body { deadline = nil }
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

    private func bodyExpired(context: ChannelHandlerContext) {
        let seconds = Double((NIODeadline.now() - bodyStarted).nanoseconds) / 1e9
        if Double(bodyBytes) >= Double(Self.minimumBodyRate) * seconds {
            arm(.body, at: .now() + body, context: context)
            return
        }
        ReadDeadlineMetrics.expired(phase: "body")
        context.fireErrorCaught(ReadDeadlineExceeded())
        // The route answers 408 and the connection then closes; if nothing is reading, close anyway.
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
    }

    private func arm(_ watch: Watch, at when: NIODeadline, context: ChannelHandlerContext) {
        watching = watch
        deadline = when
        if timer == nil || timerAt > when { startTimer(at: when, context: context) }
    }

    private func startTimer(at when: NIODeadline, context: ChannelHandlerContext) {
        timer?.cancel()
        timerAt = when
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: when) {
            let (handler, context) = bound.value
            handler.timer = nil
            handler.timerAt = .distantFuture
            handler.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        guard let deadline else { return }
        if deadline > .now() {
            startTimer(at: deadline, context: context)
            return
        }
        self.deadline = nil
        switch watching {
        case .head: headExpired(context: context)
        case .body: bodyExpired(context: context)
        }
    }

    private func stopTimer() {
        timer?.cancel()
        timer = nil
        timerAt = .distantFuture
        deadline = nil
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
