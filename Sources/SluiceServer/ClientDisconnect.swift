import NIOCore
import SluiceCore
import SluiceObservability
import Synchronization

/// Closes a connection as soon as the client closes its side, so that work done for it (an
/// upstream stream) can be cancelled right away instead of at the next write. Hummingbird allows
/// half-closure; an API client that half-closes and still waits for an answer is not a case a
/// model gateway needs to serve.
final class CloseOnInputClosedHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// The task serving each connection's current stream, cancelled when the connection closes.
///
/// One close callback per connection, registered with its first stream: a callback per stream
/// piled up on the close future of a keep-alive connection until it closed.
final class ConnectionCancellers: Sendable {
    // An entry lives from a connection's first stream to its close (HTTP/1.1 serves one request
    // at a time per connection, so one canceller per entry).
    private let current = Mutex<[ObjectIdentifier: CurrentTaskCanceller?]>([:])

    /// Runs `body`, cancelling it if the connection closes first (the client went away).
    func run<T>(on channel: (any Channel)?, _ body: () async throws -> T) async rethrows -> T {
        guard let channel else { return try await body() }
        // Set-up and tear-down are out of line: this frame lives as long as a held stream does.
        let canceller = register(channel)
        defer { unregister(canceller, of: channel) }
        return try await body()
    }

    @inline(never)
    private func register(_ channel: any Channel) -> CurrentTaskCanceller {
        let id = ObjectIdentifier(channel)
        let canceller = CurrentTaskCanceller()
        canceller.attach()
        let isFirst = current.withLock { map -> Bool in
            let isFirst = map[id] == nil
            map[id] = .some(canceller)
            return isFirst
        }
        // Fires at once if the channel is already closed.
        if isFirst { channel.closeFuture.whenComplete { _ in self.closed(id) } }
        return canceller
    }

    /// Detached before `run` returns, so the callback can never reach a task that has moved on.
    @inline(never)
    private func unregister(_ canceller: CurrentTaskCanceller, of channel: any Channel) {
        let id = ObjectIdentifier(channel)
        canceller.detach()
        current.withLock { map in
            if let held = map[id], held === canceller { map[id] = .some(nil) }
        }
    }

    private func closed(_ id: ObjectIdentifier) {
        let canceller = current.withLock { $0.removeValue(forKey: id) }
        canceller??.cancel()
    }

    /// Connections with an entry (for tests).
    var connectionCount: Int { current.withLock { $0.count } }
}

/// Sizes a client connection's reads as `ReadBuffers` says, then leaves the pipeline (Hummingbird
/// does not take child channel options from its users).
final class ReceiveBufferSizing: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    func handlerAdded(context: ChannelHandlerContext) {
        _ = context.channel.setOption(ChannelOptions.recvAllocator, value: ReadBuffers.allocator)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
