/// A flow version added at run time (the config's definition is version 1 and is not stored).
public struct StoredFlowVersion: Sendable, Hashable {
    public var flow: String
    public var version: Int
    /// The definition as JSON (the keys of a `flows:` entry but `input`, which stays the config's).
    public var definition: String
    /// Unix seconds.
    public var createdAt: Double

    public init(flow: String, version: Int, definition: String, createdAt: Double) {
        self.flow = flow
        self.version = version
        self.definition = definition
        self.createdAt = createdAt
    }
}

/// Where flow versions and each flow's active version are kept, shared by every replica. Versions
/// are immutable and numbered from 2; `generation` changes with every write, so replicas poll it.
public protocol FlowVersionStore: Sendable {
    /// Stores the next version of `flow` and answers its number.
    func addVersion(flow: String, definition: String, at time: Double) async throws -> Int
    /// Every stored version, by flow and number.
    func versions() async throws -> [StoredFlowVersion]
    /// The active version of each flow that has been activated (the others run version 1).
    func activeVersions() async throws -> [String: Int]
    func activate(flow: String, version: Int) async throws
    func flowGeneration() async throws -> Int
}
