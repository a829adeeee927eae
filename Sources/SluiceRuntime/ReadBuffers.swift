import NIOCore

/// How Sluice's connections, to clients and to upstreams, size their reads: from 1 KiB (NIO's
/// default is 2 KiB), growing as reads fill up. An idle connection keeps its read buffers, and
/// both connections of a held stream are idle between events.
public enum ReadBuffers {
    public static let allocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536)
}
