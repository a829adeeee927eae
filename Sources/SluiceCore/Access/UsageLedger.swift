import Synchronization

/// What one request spends and holds, and the one place it is settled.
///
/// The invoker charges every upstream answer at the price of the deployment that gave it — a
/// schema repair's further calls are charges of their own, a cache hit is none — and admission
/// holds the request's one grant. `settle()` runs once, from the record stage, when the request
/// is over (answered, failed, or its stream ended or was abandoned): it sums the charges and
/// gives the grant back with that real usage, so tokens, cost, budgets and rate limits count
/// each upstream call exactly once.
public final class UsageLedger: Sendable {
    /// One upstream answer's usage at its deployment's price.
    public struct Charge: Sendable, Hashable {
        public var deployment: String
        public var usage: Usage
        public var costUSD: Double
    }

    /// The request's totals, once it is over.
    public struct Settlement: Sendable {
        /// Every charge's usage added up; nil when nothing was charged (a cache hit, a refusal).
        public var usage: Usage?
        public var costUSD: Double
        public var charges: [Charge]
    }

    /// A stream still running: its usage once the upstream reports it, else an estimate from the
    /// prompt and the output seen so far (a stream abandoned midway is charged what it sent).
    private struct OpenCharge {
        var deployment: String
        var price: Price
        var promptEstimate: Int
        var outputBytes = 0
        var reported: Usage?

        var usage: Usage { reported ?? Usage(promptTokens: promptEstimate, completionTokens: (outputBytes + 3) / 4) }
    }

    private struct Hold {
        let grant: AdmissionGrant
        let limiter: any UsageLimiter
    }

    private struct State {
        var charges: [Charge] = []
        var open: [OpenCharge] = []
        var hold: Hold?
        var settlement: Settlement?
    }

    private let state = Mutex(State())

    /// What this request's usage costs against its deployments' prices (a batch's `price_multiplier`).
    public let costMultiplier: Double

    public init(costMultiplier: Double = 1) { self.costMultiplier = costMultiplier }

    /// Charges a whole answer.
    public func charge(_ usage: Usage, deployment: String, price: Price) {
        state.withLock { s in
            guard s.settlement == nil else { return }
            s.charges.append(Charge(deployment: deployment, usage: usage, costUSD: price.cost(of: usage)))
        }
    }

    /// Opens the charge of a stream; `observe` adds what its events show.
    public func openCharge(deployment: String, price: Price, promptEstimate: Int) -> StreamCharge {
        state.withLock { s in
            s.open.append(OpenCharge(deployment: deployment, price: price, promptEstimate: promptEstimate))
            return StreamCharge(ledger: self, index: s.open.count - 1)
        }
    }

    fileprivate func observe(_ index: Int, _ summary: ChunkSummary) {
        state.withLock { s in
            guard s.settlement == nil else { return }
            s.open[index].outputBytes += summary.outputBytes
            if let usage = summary.usage { s.open[index].reported = usage }
        }
    }

    /// Keeps the request's admission grant until `settle()`.
    public func hold(_ grant: AdmissionGrant, from limiter: any UsageLimiter) {
        state.withLock { $0.hold = Hold(grant: grant, limiter: limiter) }
    }

    /// Whether the request was admitted already (a schema repair runs the stages again; it is
    /// still the same request).
    public var isHolding: Bool { state.withLock { $0.hold != nil || $0.settlement != nil } }

    /// The totals, once settled.
    public var settlement: Settlement? { state.withLock { $0.settlement } }

    /// Ends the request's accounting, once: later calls return the same totals and change
    /// nothing, and charges made after it are not counted.
    @discardableResult
    public func settle() -> Settlement {
        let (settlement, hold) = state.withLock { s -> (Settlement, Hold?) in
            if let done = s.settlement { return (done, nil) }
            var charges = s.charges
            for open in s.open {
                let usage = open.usage
                charges.append(Charge(deployment: open.deployment, usage: usage, costUSD: open.price.cost(of: usage)))
            }
            let usage = charges.isEmpty
                ? nil
                : charges.reduce(Usage(promptTokens: 0, completionTokens: 0)) {
                    Usage(promptTokens: $0.promptTokens + $1.usage.promptTokens, completionTokens: $0.completionTokens + $1.usage.completionTokens)
                }
            if costMultiplier != 1 { charges = charges.map { var c = $0; c.costUSD *= costMultiplier; return c } }
            let totals = Settlement(usage: usage, costUSD: charges.reduce(0) { $0 + $1.costUSD }, charges: charges)
            s.settlement = totals
            defer { s.hold = nil }
            return (totals, s.hold)
        }
        if let hold {
            hold.limiter.settle(hold.grant, tokens: settlement.usage?.totalTokens ?? 0, costUSD: settlement.costUSD)
        }
        return settlement
    }
}

/// A running stream's charge in its request's ledger.
public struct StreamCharge: Sendable {
    let ledger: UsageLedger
    let index: Int

    /// Adds one event's output (and its usage, when it reports it).
    public func observe(_ summary: ChunkSummary) {
        guard summary.outputBytes > 0 || summary.usage != nil else { return }
        ledger.observe(index, summary)
    }
}
