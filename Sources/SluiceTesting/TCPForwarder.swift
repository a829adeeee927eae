import NIOCore
import NIOPosix
import Synchronization

/// A loopback TCP forwarder to `target` that can stand in for a slow or absent server: it
/// listens only once `listen()` is called, and holds each accepted connection for `delay`
/// before connecting it through.
public final class TCPForwarder: Sendable {
    public let target: SocketAddress
    public let delay: Duration
    private let channel = Mutex<(any Channel)?>(nil)

    public init(to target: SocketAddress, delay: Duration = .zero) {
        self.target = target
        self.delay = delay
    }

    /// Starts listening on 127.0.0.1:`port` (0 picks one) and returns the port.
    @discardableResult
    public func listen(port: Int = 0) async throws -> Int {
        let target = self.target
        let delay = self.delay
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                let eventLoop = inbound.eventLoop
                let nanoseconds = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
                return eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {}.futureResult.flatMap {
                    ClientBootstrap(group: eventLoop).connect(to: target)
                }.flatMap { outbound in
                    let (a, b) = Glue.pair()
                    return inbound.pipeline.addHandler(a).and(outbound.pipeline.addHandler(b)).flatMap { _ in
                        // Reading starts only now, so nothing the client sent early is lost.
                        inbound.setOption(ChannelOptions.autoRead, value: true)
                    }
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        channel.withLock { $0 = server }
        return server.localAddress?.port ?? port
    }

    /// Stops listening (connections already forwarded are left to close on their own).
    public func close() async {
        let server = channel.withLock { c -> (any Channel)? in
            defer { c = nil }
            return c
        }
        try? await server?.close()
    }

    /// Two handlers joined back to back: what one channel reads, the other writes.
    final class Glue: ChannelDuplexHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        private var partner: Glue?
        private var context: ChannelHandlerContext?

        static func pair() -> (Glue, Glue) {
            let a = Glue()
            let b = Glue()
            a.partner = b
            b.partner = a
            return (a, b)
        }

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }

        func handlerRemoved(context: ChannelHandlerContext) {
            self.context = nil
            partner = nil
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            partner?.write(unwrapInboundIn(data))
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            partner?.flush()
        }

        func channelInactive(context: ChannelHandlerContext) {
            partner?.close()
        }

        private func write(_ buffer: ByteBuffer) {
            guard let context else { return }
            context.eventLoop.execute { context.write(self.wrapOutboundOut(buffer), promise: nil) }
        }

        private func flush() {
            guard let context else { return }
            context.eventLoop.execute { context.flush() }
        }

        private func close() {
            guard let context else { return }
            context.eventLoop.execute { context.close(promise: nil) }
        }
    }
}
