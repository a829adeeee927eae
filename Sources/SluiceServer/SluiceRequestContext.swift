import Hummingbird
import NIOCore
import SluiceCore
import SluiceObservability

/// Sluice's Hummingbird request context: the core storage, the connection's channel (to notice a
/// client that goes away) and the request id.
public struct SluiceRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection the request came on; nil in router tests.
    public let channel: (any Channel)?
    /// The request's id, set by `RequestIDMiddleware`.
    public var requestID: String = ""
    /// The caller, set by `AuthMiddleware` (nil on public paths or with auth off).
    public var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}
