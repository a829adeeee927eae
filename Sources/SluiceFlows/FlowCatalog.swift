import Foundation
import Mustache
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
    let messages: [Message]
    let input: JSONSchemaValidator?
    /// Each declared property's `default`, filled in when the input leaves it out.
    let defaults: [String: JSONValue]

    /// Compiles a flow's definition; `path` names it in errors (`flows.NAME`), `baseDirectory`
    /// resolves a relative `template:` file.
    public init(name: String, version: Int, config: FlowConfig, path: String, baseDirectory: String? = nil) throws {
        self.name = name
        self.version = version
        self.config = config
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

/// Every flow's versions and which one is active. Built from the config (each flow's version 1).
public final class FlowCatalog: Sendable {
    struct Entry: Sendable {
        var versions: [Int: FlowDefinition]
        var active: Int
    }

    private let entries: Mutex<[String: Entry]>

    public init(config: SluiceConfig, baseDirectory: String? = nil) throws {
        var entries: [String: Entry] = [:]
        for (name, flow) in config.flows {
            let definition = try FlowDefinition(name: name, version: 1, config: flow, path: "flows.\(name)", baseDirectory: baseDirectory)
            entries[name] = Entry(versions: [1: definition], active: 1)
        }
        self.entries = Mutex(entries)
    }

    /// The flow's given version, or its active one.
    public func definition(_ name: String, version: Int? = nil) throws -> FlowDefinition {
        let entry = entries.withLock { $0[name] }
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

    /// The flows' names, sorted.
    public var names: [String] { entries.withLock { $0.keys.sorted() } }
}
