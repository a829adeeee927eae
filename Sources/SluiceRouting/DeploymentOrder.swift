import SluiceCore

/// Orders an alias's deployments for one request by its strategy: the first is the one to try,
/// the rest follow if it fails, then the alias's fallbacks in their order. Deployments whose
/// breaker is open (or that asked to be left alone) go behind the available ones.
public struct DeploymentOrder: Sendable {
    public let strategy: RoutingStrategy
    public let deployments: [Deployment]
    public let weights: [Double]
    public let fallbacks: [Deployment]
    public let board: DeploymentBoard
    /// For `lowest-latency`: the share of requests that try a random deployment first.
    public let explorationRate: Double

    public init(
        strategy: RoutingStrategy, deployments: [Deployment], weights: [String: Double] = [:], fallbacks: [Deployment] = [], board: DeploymentBoard,
        explorationRate: Double = 0.05
    ) {
        self.strategy = strategy
        self.deployments = deployments
        self.weights = deployments.map { weights[$0.name] ?? 1 }
        self.fallbacks = fallbacks
        self.board = board
        self.explorationRate = explorationRate
    }

    /// The deployments to try for one request, in order. `promptTokens` and `outputTokens` price it for `cheapest`;
    /// `streaming` picks the latency that matters; `preferred` (from the complexity classifier)
    /// goes first; `random` is a source of numbers in 0..<1 (injected by tests).
    public func ordered(
        promptTokens: Int, outputTokens: Int, streaming: Bool, preferred: String? = nil, now: ContinuousClock.Instant = .now,
        random: () -> Double = { Double.random(in: 0..<1) }
    ) -> [Deployment] {
        var ordered: [Deployment]
        switch strategy {
        case .ordered, .complexity:
            ordered = deployments
        case .weighted:
            ordered = weightedShuffle(random: random)
        case .leastBusy:
            let busy = deployments.map { board[$0.name]?.snapshot().inFlight ?? 0 }
            ordered = stableSorted(by: busy.map(Double.init), tieBreak: random)
        case .lowestLatency:
            let latency: [Double] = deployments.map { d in
                let s = board[d.name]?.snapshot()
                // Unmeasured deployments go first, so that each gets measured.
                return (streaming ? (s?.ttftMs ?? s?.latencyMs) : (s?.latencyMs ?? s?.ttftMs)) ?? -1
            }
            ordered = stableSorted(by: latency, tieBreak: random)
            if ordered.count > 1 && random() < explorationRate {
                let i = 1 + Int(random() * Double(ordered.count - 1)) % (ordered.count - 1)
                ordered.swapAt(0, i)
            }
        case .cheapest:
            let cost = deployments.map { d in
                Double(promptTokens) * d.price.inputPerMTok + Double(outputTokens) * d.price.outputPerMTok
            }
            ordered = stableSorted(by: cost, tieBreak: random)
        }
        if let preferred, let i = ordered.firstIndex(where: { $0.name == preferred }) {
            ordered.insert(ordered.remove(at: i), at: 0)
        }
        // Most calls: no fallbacks and every deployment available, so the order stands as it is
        // (and no arrays or set are built for it).
        if fallbacks.isEmpty, ordered.allSatisfy({ board[$0.name]?.isAvailable(now: now) ?? true }) { return ordered }
        let available = ordered.filter { board[$0.name]?.isAvailable(now: now) ?? true }
        let resting = ordered.filter { !(board[$0.name]?.isAvailable(now: now) ?? true) }
        var seen = Set(ordered.map(\.name))
        let extra = fallbacks.filter { seen.insert($0.name).inserted }
        return available + resting + extra
    }

    /// Deployments drawn one by one without replacement, each in proportion to its weight;
    /// those weighing 0 only after every other.
    func weightedShuffle(random: () -> Double) -> [Deployment] {
        var pool = Array(zip(deployments, weights))
        var out: [Deployment] = []
        out.reserveCapacity(pool.count)
        while !pool.isEmpty {
            let total = pool.reduce(0) { $0 + $1.1 }
            guard total > 0 else {
                out += pool.map(\.0)
                break
            }
            var pick = random() * total
            var chosen = pool.count - 1
            for (i, entry) in pool.enumerated() {
                if pick < entry.1 {
                    chosen = i
                    break
                }
                pick -= entry.1
            }
            out.append(pool.remove(at: chosen).0)
        }
        return out
    }

    /// Ascending by `keys`; equal keys in random order (so that ties share the load).
    func stableSorted(by keys: [Double], tieBreak: () -> Double) -> [Deployment] {
        let jitter = keys.map { _ in tieBreak() }
        return deployments.indices.sorted { a, b in
            keys[a] != keys[b] ? keys[a] < keys[b] : jitter[a] < jitter[b]
        }.map { deployments[$0] }
    }
}
