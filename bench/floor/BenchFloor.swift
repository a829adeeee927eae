// The per-request floor of the two server stacks Sluice could serve its inference routes on,
// for `make bench`: a bare Hummingbird server and a bare SwiftNIO server that read a chat
// request and answer a fixed completion, nothing else. Sluice's own cost is what it adds above
// the Hummingbird floor; the gap between the two floors is the most a NIO-level fast path for
// the inference routes could save.
//
//   bench-floor hummingbird|nio PORT        (listens on 127.0.0.1)
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SluiceRuntime

let answer = ByteBuffer(
    string:
        #"{"id":"chatcmpl-floor","object":"chat.completion","created":0,"model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}"#
)

@main
enum BenchFloor {
    static func main() async throws {
        // As Sluice does (Sources/sluice/Entry.swift): Swift concurrency runs on NIO's event loops,
        // so the Hummingbird floor is the one Sluice stands on.
        ConcurrencyOnEventLoops.install()
        let arguments = CommandLine.arguments
        guard arguments.count == 3, let port = Int(arguments[2]), ["hummingbird", "nio"].contains(arguments[1]) else {
            print("usage: bench-floor hummingbird|nio PORT")
            return
        }
        if arguments[1] == "hummingbird" { try await hummingbird(port: port) } else { try await nio(port: port) }
    }

    static func hummingbird(port: Int) async throws {
        let router = Router()
        router.post("/v1/chat/completions") { request, _ -> Response in
            _ = try await request.body.collect(upTo: 1 << 20)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: answer))
        }
        var logger = Logger(label: "bench-floor")
        logger.logLevel = .warning
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        try await app.runService()
    }

    static func nio(port: Int) async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(FixedAnswer())
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        try await channel.closeFuture.get()
    }
}

/// Answers every request, once its end has arrived, with the fixed completion.
final class FixedAnswer: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        var head = HTTPResponseHead(version: .http1_1, status: .ok)
        head.headers.add(name: "content-type", value: "application/json")
        head.headers.add(name: "content-length", value: String(answer.readableBytes))
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(answer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
