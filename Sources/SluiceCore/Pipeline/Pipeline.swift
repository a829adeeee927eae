/// Calls the rest of the pipeline.
public struct InferenceHandler: Sendable {
    private enum Next: Sendable {
        case body(@Sendable (InferenceRequest, InferenceContext) async throws -> InferenceResponse)
        /// The stage at `index` of a pipeline's stages, or its terminal past the last one.
        case stage(StageChain, Int)
    }

    private let next: Next

    public init(_ body: @escaping @Sendable (InferenceRequest, InferenceContext) async throws -> InferenceResponse) {
        self.next = .body(body)
    }

    fileprivate init(_ chain: StageChain, at index: Int) {
        self.next = .stage(chain, index)
    }

    public func callAsFunction(_ request: InferenceRequest, _ context: InferenceContext) async throws -> InferenceResponse {
        // A stage is called directly, not through a closure per stage: each async call returns
        // with a hop to the caller's executor (a `swift_task_switch`), so a layer less per stage
        // is a switch less per stage and request.
        var handler = self
        while true {
            switch handler.next {
            case .body(let body):
                return try await body(request, context)
            case .stage(let chain, let index):
                guard index < chain.stages.count else {
                    handler = chain.terminal
                    continue
                }
                return try await chain.stages[index].handle(request, context: context, next: InferenceHandler(chain, at: index + 1))
            }
        }
    }
}

/// A pipeline's stages and its terminal handler, shared by the handlers that walk them.
private final class StageChain: Sendable {
    let stages: [any InferenceStage]
    let terminal: InferenceHandler

    init(stages: [any InferenceStage], terminal: InferenceHandler) {
        self.stages = stages
        self.terminal = terminal
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
        self.entry = InferenceHandler(StageChain(stages: stages, terminal: terminal), at: 0)
        self.stageNames = stages.map { String(describing: type(of: $0)) }
    }

    /// Runs a request through every stage.
    public func run(_ request: InferenceRequest, context: InferenceContext) async throws -> InferenceResponse {
        try await entry(request, context)
    }
}
