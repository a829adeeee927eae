/// Calls the rest of the pipeline.
public struct InferenceHandler: Sendable {
    private let body: @Sendable (InferenceRequest, InferenceContext) async throws -> InferenceResponse

    public init(_ body: @escaping @Sendable (InferenceRequest, InferenceContext) async throws -> InferenceResponse) {
        self.body = body
    }

    public func callAsFunction(_ request: InferenceRequest, _ context: InferenceContext) async throws -> InferenceResponse {
        try await body(request, context)
    }
}

/// One step of the request pipeline, shaped like a Hummingbird middleware over domain types:
/// work before `next` runs on the way in, work after it on the way out, and a stage that does
/// not call `next` answers early (a cache hit, a guardrail block).
public protocol InferenceStage: Sendable {
    func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse
}

/// The stages composed once at start-up, outermost first, ending in a terminal handler (the
/// upstream call).
public struct Pipeline: Sendable {
    private let entry: InferenceHandler
    /// The stages' type names, outermost first (for logs and `sluice doctor`).
    public let stageNames: [String]

    public init(stages: [any InferenceStage], terminal: InferenceHandler) {
        var handler = terminal
        for stage in stages.reversed() {
            let next = handler
            handler = InferenceHandler { request, context in
                try await stage.handle(request, context: context, next: next)
            }
        }
        self.entry = handler
        self.stageNames = stages.map { String(describing: type(of: $0)) }
    }

    /// Runs a request through every stage.
    public func run(_ request: InferenceRequest, context: InferenceContext) async throws -> InferenceResponse {
        try await entry(request, context)
    }
}
