import Foundation
import Logging
import Mustache
import NIOCore
import ServiceLifecycle
import SluiceCore
import SluiceGuardrails
import Synchronization

/// One version of a flow, compiled: its templates parsed, its input schema ready to validate.
/// Immutable: a new definition is a new version.
public struct FlowDefinition: Sendable {
    /// One templated message.
    struct Message: Sendable {
        var role: ChatMessage.Role
        var template: MustacheTemplate
    }

    public let name: String
    public let version: Int
    public let config: FlowConfig
    /// When a stored version was added (Unix seconds); nil for the config's version 1.
    public let createdAt: Double?
    let messages: [Message]
    let input: JSONSchemaValidator?
    /// Each declared property's `default`, filled in when the input leaves it out.
    let defaults: [String: JSONValue]
    /// `retrieval.query`, compiled.
    let retrievalQuery: MustacheTemplate?

    /// Compiles a flow's definition; `path` names it in errors (`flows.NAME`), `baseDirectory`
    /// resolves a relative `template:` file.
    public init(name: String, version: Int, config: FlowConfig, path: String, baseDirectory: String? = nil, createdAt: Double? = nil) throws {
        self.name = name
        self.version = version
        self.config = config
        self.createdAt = createdAt
        var sources: [(ChatMessage.Role, String, String)] = config.messages.enumerated().map { i, m in (m.role, m.content, "\(path).messages[\(i)].content") }
        if let file = config.template {
            let resolved = file.hasPrefix("/") || baseDirectory == nil ? file : baseDirectory! + "/" + file
            guard let text = try? String(contentsOfFile: resolved, encoding: .utf8) else {
                throw ConfigError(path: "\(path).template", "cannot read the template file \(resolved)")
            }
            if let declared = config.inputProperties {
                for name in MustacheNames.topLevel(in: text) where !declared.contains(name) {
                    throw ConfigError(path: "\(path).template", "uses '{{\(name)}}', which the input schema does not declare")
                }
            }
            sources.append((.user, text, "\(path).template"))
        }
        self.messages = try sources.map { role, text, at in
            do {
                // Prompts are text: no HTML escaping of the variables.
                return Message(role: role, template: try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + text))
            } catch {
                throw ConfigError(path: at, "is not a valid mustache template: \(error)")
            }
        }
        if let query = config.retrieval?.query {
            do {
                retrievalQuery = try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + query)
            } catch {
                throw ConfigError(path: "\(path).retrieval.query", "is not a valid mustache template: \(error)")
            }
        } else {
            retrievalQuery = nil
        }
        if let schema = config.input {
            do {
                self.input = try JSONSchemaValidator(schema: schema)
            } catch {
                throw ConfigError(path: "\(path).input", "is not a usable JSON Schema: \(error)")
            }
        } else {
            self.input = nil
        }
        var defaults: [String: JSONValue] = [:]
        if case .object(let schema)? = config.input, case .object(let properties)? = schema["properties"] {
            for (key, property) in properties {
                if case .object(let p) = property, let value = p["default"] { defaults[key] = value }
            }
        }
        self.defaults = defaults
        if case .schema(let schema) = config.output {
            do {
                _ = try JSONSchemaValidator(schema: schema)
            } catch {
                throw ConfigError(path: "\(path).output", "is not a usable JSON Schema: \(error)")
            }
        }
    }

    /// The input schema's one string property, if it has exactly one (what a plain-text input
    /// from `model: "flow:NAME"` is bound to).
    var singleStringProperty: String? {
        guard case .object(let schema)? = config.input, case .object(let properties)? = schema["properties"] else { return nil }
        let strings = properties.filter { _, p in
            if case .object(let o) = p, o["type"] == .string("string") { return true }
            return false
        }
        return strings.count == 1 ? strings.first?.key : nil
    }
}

/// Every flow's versions and which one is active: version 1 from the config, later ones from
/// the store (added through the admin API without a restart). Every replica polls the store's
/// generation each `auth.refresh_ms` and reloads when it changed, so a new active version is
/// served everywhere within about that long.
public final class FlowCatalog: Service, Sendable {
    struct Entry: Sendable {
        var versions: [Int: FlowDefinition]
        var active: Int
    }

    private struct State {
        var entries: [String: Entry]
        var generation = -1
    }

    private let state: Mutex<State>
    /// Version 1 of each flow (the config's), which stored versions take their input schema from.
    private let base: [String: FlowDefinition]
    private let store: (any FlowVersionStore)?
    private let refresh: Duration
    private let logger: Logger
    /// The chat models and aliases a version may name, and the guardrail policies.
    private let models: Set<String>
    private let policies: Set<String>?

    public init(
        config: SluiceConfig, baseDirectory: String? = nil, store: (any FlowVersionStore)? = nil, refresh: Duration = .milliseconds(500),
        logger: Logger = Logger(label: "sluice.flows")
    ) throws {
        var base: [String: FlowDefinition] = [:]
        for (name, flow) in config.flows {
            base[name] = try FlowDefinition(name: name, version: 1, config: flow, path: "flows.\(name)", baseDirectory: baseDirectory)
        }
        self.base = base
        self.state = Mutex(State(entries: base.mapValues { Entry(versions: [1: $0], active: 1) }))
        self.store = store
        self.refresh = refresh
        self.logger = logger
        self.models = Set(config.models.filter { $0.type == .chat }.map(\.name)).union(config.aliases.keys)
        self.policies = config.guardrails.map { Set($0.policies.keys).union(["default"]) }
    }

    /// The flow's given version, or its active one.
    public func definition(_ name: String, version: Int? = nil) throws -> FlowDefinition {
        let entry = state.withLock { $0.entries[name] }
        guard let entry else {
            throw SluiceError(.notFound, "There is no flow named '\(name)'.", param: "flow")
        }
        let wanted = version ?? entry.active
        guard let definition = entry.versions[wanted] else {
            throw SluiceError(
                .notFound, "Flow '\(name)' has no version \(wanted) (versions: \(entry.versions.keys.sorted().map(String.init).joined(separator: ", "))).",
                param: "version")
        }
        return definition
    }

    /// Every version of a flow, oldest first, and the active one's number.
    public func versions(_ name: String) throws -> (active: Int, versions: [FlowDefinition]) {
        guard let entry = state.withLock({ $0.entries[name] }) else {
            throw SluiceError(.notFound, "There is no flow named '\(name)'.", param: "flow")
        }
        return (entry.active, entry.versions.keys.sorted().compactMap { entry.versions[$0] })
    }

    /// The flows' names, sorted.
    public var names: [String] { state.withLock { $0.entries.keys.sorted() } }

    // MARK: Versions

    /// Checks a new version (the keys of a `flows:` entry but `input`, which stays the config's,
    /// and `template`: the API takes `messages`), stores it and answers it. It is not active
    /// until activated. Errors are 400s naming the key.
    public func addVersion(_ name: String, definition body: JSONValue, at time: Double = Date().timeIntervalSince1970) async throws -> FlowDefinition {
        guard let store else { throw SluiceError(.unsupported, "Flow versions need a store.") }
        guard base[name] != nil else { throw SluiceError(.notFound, "There is no flow named '\(name)'.", param: "flow") }
        guard case .object(let members) = body else {
            throw SluiceError(.invalidType, "A flow version is a JSON object, got \(body.typeName).")
        }
        if members["input"] != nil {
            throw SluiceError(.invalidValue, "A version keeps the flow's input schema (flows.\(name).input in the config); leave input out.", param: "input")
        }
        if members["template"] != nil {
            throw SluiceError(.invalidValue, "A version sent through the API gives its prompt as messages, not a template file.", param: "template")
        }
        // Checked before it is stored: a version that does not compile is never numbered.
        _ = try compile(name, version: 0, body: body, createdAt: time)
        let text = String(buffer: try JSONCoding.encode(body))
        let version = try await store.addVersion(flow: name, definition: text, at: time)
        try await reload()
        return try self.definition(name, version: version)
    }

    /// Makes a version the one runs get when they name none (rolling back is activating an older one).
    public func activate(_ name: String, version: Int) async throws {
        guard let store else { throw SluiceError(.unsupported, "Flow versions need a store.") }
        _ = try definition(name, version: version)
        try await store.activate(flow: name, version: version)
        try await reload()
    }

    /// A stored version's definition, compiled against the flow's version 1.
    private func compile(_ name: String, version: Int, body: JSONValue, createdAt: Double?) throws -> FlowDefinition {
        guard let first = base[name] else { throw SluiceError(.notFound, "There is no flow named '\(name)'.", param: "flow") }
        do {
            var config = try StrictDecoder.decode(FlowConfig.self, from: body)
            config.input = first.config.input
            if let problem = config.problems(path: "", models: models, policies: policies).first {
                throw problem
            }
            return try FlowDefinition(name: name, version: version, config: config, path: "", createdAt: createdAt)
        } catch let error as ConfigError {
            let param = error.path.hasPrefix(".") ? String(error.path.dropFirst()) : error.path
            throw SluiceError(.invalidValue, "The flow version is not valid: \(error.description.hasPrefix(".") ? String(error.description.dropFirst()) : error.description)", param: param.isEmpty ? nil : param)
        }
    }

    /// Reads the stored versions and activations.
    public func reload() async throws {
        guard let store else { return }
        let generation = try await store.flowGeneration()
        let stored = try await store.versions()
        let active = try await store.activeVersions()
        var entries = base.mapValues { Entry(versions: [1: $0], active: 1) }
        for version in stored {
            guard entries[version.flow] != nil else { continue }
            do {
                let body = try JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: version.definition))
                entries[version.flow]!.versions[version.version] = try compile(version.flow, version: version.version, body: body, createdAt: version.createdAt)
            } catch {
                // A version the config no longer supports (a model since removed): kept out, said once per reload.
                logger.warning("flow version cannot be loaded", metadata: ["flow": "\(version.flow)", "version": "\(version.version)", "error": "\(error)"])
            }
        }
        for (flow, version) in active where entries[flow]?.versions[version] != nil { entries[flow]!.active = version }
        state.withLock { s in
            guard generation >= s.generation else { return }
            s.generation = generation
            s.entries = entries
        }
    }

    public func run() async throws {
        guard store != nil else { return }
        try await reload()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.refresh) }
            } catch {
                return
            }
            do {
                let current = try await store?.flowGeneration()
                if current != state.withLock({ $0.generation }) { try await reload() }
            } catch {
                logger.warning("could not refresh flow versions", metadata: ["error": "\(error)"])
            }
        }
    }
}
