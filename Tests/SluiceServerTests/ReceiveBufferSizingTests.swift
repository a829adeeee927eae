import NIOCore
import NIOPosix
import SluiceCore
import Testing
@testable import SluiceServer

/// `ReceiveBufferSizing` on a real accepted connection: it sets the smaller read size and leaves
/// the pipeline, and what the client sends still reaches the handlers after it.
@Suite struct ReceiveBufferSizingTests {
    /// Collects what a connection receives and notes its options and pipeline, on its event loop.
    final class Probe: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let received: EventLoopPromise<(bytes: Int, sizingStillThere: Bool, allocator: AdaptiveRecvByteBufferAllocator?)>
        let expected: Int
        var bytes = 0

        init(expected: Int, received: EventLoopPromise<(bytes: Int, sizingStillThere: Bool, allocator: AdaptiveRecvByteBufferAllocator?)>) {
            self.expected = expected
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            bytes += unwrapInboundIn(data).readableBytes
            guard bytes >= expected else { return }
            let stillThere = (try? context.pipeline.syncOperations.handler(type: ReceiveBufferSizing.self)) != nil
            let allocator = try? context.channel.syncOptions?.getOption(ChannelOptions.recvAllocator) as? AdaptiveRecvByteBufferAllocator
            received.succeed((bytes, stillThere, allocator))
        }
    }

    @Test func setsTheReadSizeAndLeavesThePipeline() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let received = group.next().makePromise(of: (bytes: Int, sizingStillThere: Bool, allocator: AdaptiveRecvByteBufferAllocator?).self)
        // Larger than the first read, so that the reads have to grow.
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 200_000)
        var server: (any Channel)?
        var client: (any Channel)?
        do {
            server = try await ServerBootstrap(group: group)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ReceiveBufferSizing())
                        try channel.pipeline.syncOperations.addHandler(Probe(expected: payload.readableBytes, received: received))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            client = try await ClientBootstrap(group: group).connect(to: server!.localAddress!).get()
            try await client!.writeAndFlush(payload)
            let seen = try await received.futureResult.get()
            #expect(seen.bytes == payload.readableBytes)
            #expect(!seen.sizingStillThere)
            #expect(seen.allocator?.initial == ReadBuffers.allocator.initial)
            #expect(seen.allocator?.initial == 1024)
        } catch {
            received.fail(error)
            try? await client?.close()
            try? await server?.close()
            try await group.shutdownGracefully()
            throw error
        }
        try? await client?.close()
        try? await server?.close()
        try await group.shutdownGracefully()
    }
}
