import NIOCore
import SluiceCore

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

/// Runs `body`, cancelling it if the connection closes first (the client went away).
func withCancellationOnClose<T>(of channel: (any Channel)?, _ body: () async throws -> T) async rethrows -> T {
    guard let channel else { return try await body() }
    let canceller = CurrentTaskCanceller()
    canceller.attach()
    // Fires at once if the channel is already closed.
    channel.closeFuture.whenComplete { _ in canceller.cancel() }
    // Detached before returning, so the callback can never reach a task that has moved on.
    defer { canceller.detach() }
    return try await body()
}
