import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SluiceCore
import Synchronization

/// A lean HTTP/1.1 client for whole request/response exchanges with one plain-HTTP upstream:
/// keep-alive connections, at most `maxConnections` of them, FIFO waiting beyond that.
///
/// Why not AsyncHTTPClient here: for a small JSON answer its per-request machinery (request
/// preparation, transaction state machines, an async body sequence) cost more CPU than the rest
/// of the proxy path together (see README, Benchmarks). This pool writes the request and gathers
/// the answer in a channel handler on the connection's event loop, then resumes the caller once.
/// Streams and HTTPS still go through AsyncHTTPClient.
final class HTTP1ConnectionPool: Sendable {
    /// A whole answer.
    struct Response: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    /// Why an exchange failed.
    enum Failure: Error {
        /// The connection closed before the answer was complete.
        case closed(receivedResponse: Bool)
        /// The answer was larger than allowed.
        case tooLarge
        /// No byte arrived for `idle_ms`.
        case idle
        /// The answer did not start within `first_token_ms`.
        case noAnswer
    }

    private enum Grant {
        case reuse(Connection)
        case create
    }

    private struct State {
        var idle: [Connection] = []
        var live: Set<ObjectIdentifier> = []
        var opening = 0
        var waiters: [(id: Int, continuation: CheckedContinuation<Grant, any Error>)] = []
        var nextWaiterID = 0
    }

    let host: String
    let port: Int
    let maxConnections: Int
    let timeouts: Timeouts
    let group: any EventLoopGroup
    /// The group's loops: a caller's preferred loop is used only if it is one of them
    /// (`ClientBootstrap` traps on loops of other kinds, such as test loops).
    private let ownLoops: Set<ObjectIdentifier>
    private let state = Mutex(State())

    init(host: String, port: Int, maxConnections: Int, timeouts: Timeouts, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.host = host
        self.port = port
        self.maxConnections = maxConnections
        self.timeouts = timeouts
        self.group = group
        self.ownLoops = Set(group.makeIterator().map { ObjectIdentifier($0) })
    }

    /// Sends one request and returns the whole answer. Cancelling the calling task closes the
    /// connection in use.
    func execute(head: HTTPRequestHead, body: ByteBuffer, maxBodyBytes: Int, preferredEventLoop: (any EventLoop)?) async throws -> Response {
        try await withConnection(preferring: preferredEventLoop) { connection in
            let (response, reusable) = try await connection.exchange(head: head, body: body, maxBodyBytes: maxBodyBytes)
            return (response, .release(reusable: reusable))
        }
    }

    /// A streamed answer: its head, and its body as it arrives.
    struct StreamedResponse: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: AsyncThrowingStream<ByteBuffer, any Error>
    }

    /// Sends one request and returns once the answer's head has arrived. The connection goes
    /// back to the pool when the body has been read to its end, and is closed if the body is
    /// abandoned, fails, or passes `maxBodyBytes`.
    func stream(head: HTTPRequestHead, body: ByteBuffer, maxBodyBytes: Int, preferredEventLoop: (any EventLoop)?) async throws -> StreamedResponse {
        try await withConnection(preferring: preferredEventLoop) { connection in
            let response = try await connection.streamExchange(head: head, body: body, maxBodyBytes: maxBodyBytes) { [weak self] reusable in
                self?.release(connection, reusable: reusable)
            }
            return (response, .handedOver)
        }
    }

    /// What to do with a connection once `withConnection`'s body returns.
    private enum Disposal {
        case release(reusable: Bool)
        /// Someone else (a streamed body) releases it later.
        case handedOver
    }

    /// Runs one exchange on a pooled connection; if a kept-alive connection turns out to have
    /// been closed by the upstream before anything was answered, sends once more on a new one.
    private func withConnection<T>(
        preferring eventLoop: (any EventLoop)?, _ body: (Connection) async throws -> (T, Disposal)
    ) async throws -> T {
        let eventLoop = eventLoop.flatMap { ownLoops.contains(ObjectIdentifier($0)) ? $0 : nil }
        var connection = try await acquire(preferring: eventLoop)
        var retried = false
        while true {
            do {
                let (value, disposal) = try await body(connection)
                if case .release(let reusable) = disposal { release(connection, reusable: reusable) }
                return value
            } catch Failure.closed(receivedResponse: false) where connection.reused && !retried {
                release(connection, reusable: false)
                connection = try await open(on: eventLoop)
                retried = true
            } catch {
                release(connection, reusable: false)
                throw error
            }
        }
    }

    /// Closes idle connections (at shutdown).
    func closeIdle() {
        let idle = state.withLock { state -> [Connection] in
            defer { state.idle.removeAll() }
            return state.idle
        }
        for c in idle { c.channel.close(promise: nil) }
    }

    private func acquire(preferring eventLoop: (any EventLoop)?) async throws -> Connection {
        enum Next {
            case reuse(Connection)
            case create
            case wait
        }
        // An idle connection on the caller's loop first; else, under the cap, a new one there; only
        // at the cap one idle on another loop. A connection on another loop costs two thread
        // wake-ups on every exchange (the request handed to its loop, the answer handed back),
        // more than opening one costs once.
        let next = state.withLock { state -> Next in
            func takeIdle(_ matches: (Connection) -> Bool) -> Connection? {
                while let index = state.idle.lastIndex(where: matches) {
                    let c = state.idle.remove(at: index)
                    if c.channel.isActive { return c }
                    state.live.remove(ObjectIdentifier(c.channel))
                }
                return nil
            }
            if let c = takeIdle({ eventLoop == nil || $0.channel.eventLoop === eventLoop }) { return .reuse(c) }
            if state.live.count + state.opening < maxConnections {
                state.opening += 1
                return .create
            }
            if let c = takeIdle({ _ in true }) { return .reuse(c) }
            return .wait
        }
        switch next {
        case .reuse(var c):
            c.reused = true
            return c
        case .create:
            return try await openCounted(on: eventLoop)
        case .wait:
            let id = state.withLock { state -> Int in
                state.nextWaiterID += 1
                return state.nextWaiterID
            }
            let grant = try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                    let cancelled = state.withLock { state -> Bool in
                        if Task.isCancelled { return true }
                        state.waiters.append((id, continuation))
                        return false
                    }
                    if cancelled { continuation.resume(throwing: CancellationError()) }
                }
            } onCancel: {
                let waiter = state.withLock { state -> CheckedContinuation<Grant, any Error>? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.waiters.remove(at: index).continuation
                }
                waiter?.resume(throwing: CancellationError())
            }
            switch grant {
            case .reuse(var c):
                c.reused = true
                return c
            case .create:
                return try await openCounted(on: eventLoop)
            }
        }
    }

    /// Opens a connection whose slot `acquire` already counted in `opening`.
    private func openCounted(on eventLoop: (any EventLoop)?) async throws -> Connection {
        do {
            let c = try await connect(on: eventLoop)
            state.withLock { state in
                state.opening -= 1
                state.live.insert(ObjectIdentifier(c.channel))
            }
            return c
        } catch {
            let waiter = state.withLock { state -> CheckedContinuation<Grant, any Error>? in
                state.opening -= 1
                guard !state.waiters.isEmpty else { return nil }
                state.opening += 1
                return state.waiters.removeFirst().continuation
            }
            waiter?.resume(returning: .create)
            throw error
        }
    }

    /// Opens a connection outside the count's usual path (the stale-connection retry, whose
    /// slot was just freed by `release`).
    private func open(on eventLoop: (any EventLoop)?) async throws -> Connection {
        state.withLock { $0.opening += 1 }
        return try await openCounted(on: eventLoop)
    }

    private func connect(on eventLoop: (any EventLoop)?) async throws -> Connection {
        let handler = ExchangeHandler(
            firstByteTimeout: .milliseconds(Int64(timeouts.firstTokenMs)), idleTimeout: .milliseconds(Int64(timeouts.idleMs)))
        let channel = try await ClientBootstrap(group: eventLoop ?? group.next())
            .channelOption(ChannelOptions.socket(SocketOptionLevel(IPPROTO_TCP), TCP_NODELAY), value: 1)
            .channelOption(ChannelOptions.recvAllocator, value: ReadBuffers.allocator)
            .connectTimeout(.milliseconds(Int64(timeouts.connectMs)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port)
            .get()
        channel.closeFuture.whenComplete { [weak self] _ in self?.forget(channel) }
        return Connection(channel: channel, handler: handler)
    }

    private func forget(_ channel: any Channel) {
        let waiter = state.withLock { state -> CheckedContinuation<Grant, any Error>? in
            guard state.live.remove(ObjectIdentifier(channel)) != nil else { return nil }
            state.idle.removeAll { $0.channel === channel }
            guard !state.waiters.isEmpty else { return nil }
            state.opening += 1
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: .create)
    }

    private func release(_ connection: Connection, reusable: Bool) {
        guard reusable, connection.channel.isActive else {
            connection.channel.close(promise: nil)  // `forget` runs on close and may wake a waiter
            return
        }
        let waiter = state.withLock { state -> CheckedContinuation<Grant, any Error>? in
            guard !state.waiters.isEmpty else {
                state.idle.append(connection)
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: .reuse(connection))
    }

    /// One pooled connection.
    struct Connection: Sendable {
        let channel: any Channel
        let handler: ExchangeHandler
        var reused = false

        private func send(head: HTTPRequestHead, body: ByteBuffer, start: @escaping @Sendable () -> Void) {
            let channel = self.channel
            let handler = self.handler
            channel.eventLoop.execute {
                start()
                var head = head
                head.headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { _ in
                    handler.fail(Failure.closed(receivedResponse: false), context: nil)
                }
            }
        }

        func exchange(head: HTTPRequestHead, body: ByteBuffer, maxBodyBytes: Int) async throws -> (Response, Bool) {
            let promise = channel.eventLoop.makePromise(of: (Response, Bool).self)
            let handler = self.handler
            send(head: head, body: body) { handler.start(.whole(promise), maxBodyBytes: maxBodyBytes) }
            let channel = self.channel
            return try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
        }

        func streamExchange(
            head: HTTPRequestHead, body: ByteBuffer, maxBodyBytes: Int, onEnd: @escaping @Sendable (Bool) -> Void
        ) async throws -> StreamedResponse {
            let headPromise = channel.eventLoop.makePromise(of: HTTPResponseHead.self)
            let (parts, continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self, throwing: (any Error).self)
            let channel = self.channel
            let handler = self.handler
            // The reader went away before the end: the connection is mid-answer, so close it.
            continuation.onTermination = { termination in
                if case .cancelled = termination { channel.close(promise: nil) }
            }
            send(head: head, body: body) {
                handler.start(.streamed(head: headPromise, body: continuation, onEnd: onEnd), maxBodyBytes: maxBodyBytes)
            }
            let responseHead = try await withTaskCancellationHandler {
                try await headPromise.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
            return StreamedResponse(status: responseHead.status, headers: responseHead.headers, body: parts)
        }
    }

    /// Gathers one answer at a time on its channel's event loop, whole or as a stream.
    final class ExchangeHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
        // Every property is touched on the channel's event loop only.
        typealias InboundIn = HTTPClientResponsePart

        /// Where the answer goes.
        enum Sink {
            case whole(EventLoopPromise<(Response, Bool)>)
            case streamed(
                head: EventLoopPromise<HTTPResponseHead>, body: AsyncThrowingStream<ByteBuffer, any Error>.Continuation,
                onEnd: @Sendable (Bool) -> Void)
        }

        private var sink: Sink?
        private var head: HTTPResponseHead?
        private var body = ByteBuffer()
        private var received = 0
        private var maxBodyBytes = 0
        private var context: ChannelHandlerContext?
        /// When the exchange in progress fails for silence: `first_token_ms` after it started
        /// until the first byte, then `idle_ms` after the latest read; nil between exchanges.
        private var deadline: NIODeadline?
        private var sawFirstByte = false
        /// The one pending timer and when it fires. It is not moved on every read (a scheduled
        /// task costs a heap insertion and a linear removal): when it fires early it re-arms
        /// itself for the deadline as it is then, and between exchanges it is left to lapse.
        private var timer: Scheduled<Void>?
        private var timerAt: NIODeadline?
        let firstByteTimeout: TimeAmount
        let idleTimeout: TimeAmount

        init(firstByteTimeout: TimeAmount, idleTimeout: TimeAmount) {
            self.firstByteTimeout = firstByteTimeout
            self.idleTimeout = idleTimeout
        }

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }
        func handlerRemoved(context: ChannelHandlerContext) {
            self.context = nil
            timer?.cancel()
            timer = nil
        }

        func start(_ sink: Sink, maxBodyBytes: Int) {
            self.sink = sink
            self.head = nil
            self.body.clear()
            self.received = 0
            self.maxBodyBytes = maxBodyBytes
            self.sawFirstByte = false
            setDeadline(.now() + firstByteTimeout)
        }

        private func setDeadline(_ deadline: NIODeadline) {
            self.deadline = deadline
            if let timerAt, timerAt <= deadline { return }  // fires first and re-arms if need be
            timer?.cancel()
            armTimer(at: deadline)
        }

        private func armTimer(at when: NIODeadline) {
            guard let context else { return }
            timerAt = when
            timer = context.eventLoop.scheduleTask(deadline: when) { [weak self] in self?.timerFired() }
        }

        private func timerFired() {
            timer = nil
            timerAt = nil
            guard sink != nil, let deadline else { return }
            if deadline <= .now() {
                fail(sawFirstByte ? Failure.idle : Failure.noAnswer, context: context)
            } else {
                armTimer(at: deadline)
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard let sink else { return }
            sawFirstByte = true
            setDeadline(.now() + idleTimeout)
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                if case .streamed(let headPromise, _, _) = sink { headPromise.succeed(h) }
            case .body(var part):
                received += part.readableBytes
                if received > maxBodyBytes {
                    fail(Failure.tooLarge, context: context)
                    return
                }
                switch sink {
                case .whole: body.writeBuffer(&part)
                case .streamed(_, let continuation, _): continuation.yield(part)
                }
            case .end:
                guard let head else { return }
                deadline = nil
                self.sink = nil
                switch sink {
                case .whole(let promise):
                    promise.succeed((Response(status: head.status, headers: head.headers, body: body), head.isKeepAlive))
                    body = ByteBuffer()
                case .streamed(_, let continuation, let onEnd):
                    // Back in the pool before the reader sees the end, so its next request can
                    // reuse this connection.
                    onEnd(head.isKeepAlive)
                    continuation.finish()
                }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            fail(Failure.closed(receivedResponse: head != nil), context: nil)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            fail(error, context: context)
        }

        func fail(_ error: any Error, context: ChannelHandlerContext?) {
            deadline = nil
            if let sink {
                self.sink = nil
                switch sink {
                case .whole(let promise):
                    promise.fail(error)
                case .streamed(let headPromise, let continuation, let onEnd):
                    headPromise.fail(error)  // no effect once the head has arrived
                    continuation.finish(throwing: error)
                    onEnd(false)
                }
            }
            context?.close(promise: nil)
        }
    }
}
