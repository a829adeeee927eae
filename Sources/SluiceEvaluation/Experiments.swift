import Foundation
import Logging
import ServiceLifecycle
import SluiceCore
import SluiceStore
import Synchronization

/// The configured experiments and where each stands (running, paused, stopped), shared by
/// replicas through the store and re-read every `refresh`; assigns requests to variants and
/// analyses results.
public final class Experiments: Service, Sendable {
    public let configs: [String: ExperimentConfig]
    let store: any QualityStore
    let flowVersions: (any FlowVersionStore)?
    let judges: [String]
    let refresh: Duration
    let logger: Logger
    private let states = Mutex<[String: ExperimentState.Status]>([:])
    /// Experiment names by subject (`flow:NAME`, `alias:NAME`).
    private let bySubject: [String: String]

    public init(
        configs: [String: ExperimentConfig], judges: [String], store: any QualityStore, flowVersions: (any FlowVersionStore)?,
        refresh: Duration = .seconds(2), logger: Logger
    ) {
        self.configs = configs
        self.judges = judges
        self.store = store
        self.flowVersions = flowVersions
        self.refresh = refresh
        self.logger = logger
        var subjects: [String: String] = [:]
        for (name, c) in configs {
            if let flow = c.flow { subjects["flow:" + flow] = name }
            if let alias = c.alias { subjects["alias:" + alias] = name }
        }
        bySubject = subjects
    }

    /// Reads every experiment's state from the store (absent: running).
    public func reload() async throws {
        var fresh: [String: ExperimentState.Status] = [:]
        for name in configs.keys { fresh[name] = try await store.experimentState(name)?.status ?? .running }
        states.withLock { $0 = fresh }
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await gracefulShutdownSleep(for: refresh)
            guard !Task.isShuttingDownGracefully else { break }
            do { try await reload() } catch { logger.warning("experiments: cannot read their state", metadata: ["error": "\(error)"]) }
        }
    }

    public func status(_ name: String) -> ExperimentState.Status { states.withLock { $0[name] } ?? .running }

    /// The running experiment a request belongs to, if any.
    public func experiment(for request: InferenceRequest) -> String? {
        guard !bySubject.isEmpty else { return nil }
        // A run that names its version chose it: it is not part of the experiment.
        if request.flow?.version != nil { return nil }
        let name = request.flow.map { bySubject["flow:" + $0.name] } ?? bySubject["alias:" + request.model]
        guard let name, status(name) == .running else { return nil }
        return name
    }

    /// The variant a sticky key is assigned: a hash of the experiment's name and the key (the
    /// same on every replica and after a restart), mapped onto the split's cumulative shares.
    public static func variant(experiment: String, key: String, split: [String: Double]) -> String {
        let bucket = Double(stableHash(experiment + "\u{0}" + key) % 1_000_000) / 1_000_000
        let total = split.values.reduce(0, +)
        var cumulative = 0.0
        let ordered = split.sorted { $0.key < $1.key }
        for (name, share) in ordered {
            cumulative += share / total
            if bucket < cumulative { return name }
        }
        return ordered.last { $0.value > 0 }?.key ?? ordered[0].key
    }

    /// FNV-1a over UTF-8, then a SplitMix64 finaliser so that nearby keys spread over buckets.
    public static func stableHash(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        h = (h ^ (h >> 30)) &* 0xbf58_476d_1ce4_e5b9
        h = (h ^ (h >> 27)) &* 0x94d0_49bb_1331_11eb
        return h ^ (h >> 31)
    }

    /// Sets an experiment's status (start, pause, stop), here and for every replica.
    public func setStatus(_ name: String, _ status: ExperimentState.Status) async throws -> ExperimentState {
        guard configs[name] != nil else { throw Self.notFound(name) }
        var state = try await store.experimentState(name) ?? ExperimentState(name: name, status: .running, updatedAt: 0)
        state.status = status
        state.updatedAt = Date().timeIntervalSince1970
        try await store.putExperimentState(state)
        states.withLock { $0[name] = status }
        return state
    }

    static func notFound(_ name: String) -> SluiceError {
        SluiceError(.notFound, "No experiment named '\(name)'.", param: "name")
    }

    /// The experiment's analysis now; the always-valid p-values' minimum is kept, and with
    /// `auto_promote` a winning variant's flow version is activated and the experiment stopped.
    public func analyze(_ name: String) async throws -> (analysis: ExperimentAnalysis, state: ExperimentState) {
        guard let config = configs[name] else { throw Self.notFound(name) }
        let groups = try await store.groupMetrics(QualityFilter(experiment: name), by: .variant)
        var state = try await store.experimentState(name) ?? ExperimentState(name: name, status: status(name), updatedAt: Date().timeIntervalSince1970)
        let analysis = ExperimentAnalysis(name: name, config: config, groups: groups, judges: judges, previousMinimumP: state.minimumP)
        var changed = analysis.minimumP != state.minimumP
        state.minimumP = analysis.minimumP
        if config.autoPromote, state.promoted == nil, state.status == .running, case .winner(let winner) = analysis.decision, let flow = config.flow,
            let flowVersions
        {
            if let version = config.variants[winner]?.version {
                try await flowVersions.activate(flow: flow, version: version)
                logger.notice("experiment promoted its winner", metadata: ["experiment": "\(name)", "variant": "\(winner)", "version": "\(version)"])
            }
            state.promoted = winner
            state.status = .stopped
            states.withLock { $0[name] = .stopped }
            changed = true
        }
        if changed {
            state.updatedAt = Date().timeIntervalSince1970
            try await store.putExperimentState(state)
        }
        return (analysis, state)
    }
}

/// Assigns a request of a running experiment to its variant (before the flow stage): a flow's
/// variant sets the version and model the flow runs; an alias's sets the model asked for.
public struct ExperimentStage: InferenceStage {
    let experiments: Experiments

    public init(experiments: Experiments) { self.experiments = experiments }

    public func handle(_ request: InferenceRequest, context: InferenceContext, next: InferenceHandler) async throws -> InferenceResponse {
        guard !EvalJobs.isEvaluation(context), let name = experiments.experiment(for: request), let config = experiments.configs[name] else {
            return try await next(request, context)
        }
        // Out of line: requests outside an experiment pass without allocating its task frame.
        return try await assign(name, config, request, context: context, next: next)
    }

    private func assign(
        _ name: String, _ config: ExperimentConfig, _ request: InferenceRequest, context: InferenceContext, next: InferenceHandler
    ) async throws -> InferenceResponse {
        let key: String? =
            switch config.sticky {
            case .user: request.chat?.user.flatMap { $0.isEmpty ? nil : $0 }
            case .key: context.principal?.key.id
            case .conversation: request.conversation
            }
        // Without the sticky key, each request is assigned on its own.
        let variantName = Experiments.variant(experiment: name, key: key ?? context.requestID, split: config.split)
        guard let variant = config.variants[variantName] else { return try await next(request, context) }
        context.facts.update(\.experiment) {
            $0.name = name
            $0.variant = variantName
        }
        var request = request
        if var run = request.flow {
            run.version = variant.version
            if let model = variant.model { run.model = model }
            request.flow = run
        } else if let model = variant.model, case .chat(var chat) = request.body {
            chat.model = model
            request.body = .chat(chat)
        }
        return try await next(request, context)
    }
}

/// A flow's statistics with the feedback and judges' scores its runs received (for SLOs'
/// `min_feedback` and `min_judge`).
public struct FlowQualityReporter: FlowReporter {
    let base: any FlowReporter
    let quality: any QualityStore

    public init(base: any FlowReporter, quality: any QualityStore) {
        self.base = base
        self.quality = quality
    }

    public func flowStats(_ query: FlowStatsQuery) async throws -> FlowStats {
        var stats = try await base.flowStats(query)
        let groups = try await quality.groupMetrics(QualityFilter(flow: query.flow, flowVersion: query.version, from: query.since), by: .flow)
        if let g = groups[query.flow] {
            stats.feedback = g.feedback
            stats.judges = g.judges
        }
        return stats
    }
}
