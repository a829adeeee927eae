import ArgumentParser
import Foundation
import Logging
import SluiceCore
import SluiceFlows
import SluiceServer
import SluiceStore

/// `sluice flows …`: a flow's versions in the store named by `--config`. A running Sluice serves
/// a newly active version within `auth.refresh_ms`.
struct Flows: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List flows, show one, push a new version, activate a version, diff two.",
        subcommands: [List.self, Show.self, Push.self, Activate.self, Diff.self])

    struct Options: ParsableArguments {
        @Option(name: .shortAndLong, help: "Path of sluice.yaml (its flows, and its store with their versions).")
        var config: String?
    }

    /// Runs `body` with the catalog and its stored versions (see `withStores`).
    static func withCatalog(_ options: Options, _ body: (FlowCatalog) async throws -> Void) async throws {
        try await withStores(options.config, label: "sluice-flows") { loaded, stores in
            let catalog = try FlowCatalog(config: loaded, baseDirectory: loaded.directory, store: stores.flowVersions)
            try await catalog.reload()
            try await body(catalog)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every flow with its active version and model.")
        @OptionGroup var options: Options

        func run() async throws {
            try await Flows.withCatalog(options) { catalog in
                for name in catalog.names {
                    let (active, versions) = try catalog.versions(name)
                    let current = try catalog.definition(name)
                    print("\(name)\tversion \(active) of \(versions.count)\t\(current.config.model)\t\(current.config.description ?? "")")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A flow's versions, and the active one's definition.")
        @OptionGroup var options: Options
        @Argument(help: "The flow's name.") var name: String
        @Option(help: "Show this version instead of the active one.") var version: Int?

        func run() async throws {
            try await Flows.withCatalog(options) { catalog in
                let (active, versions) = try catalog.versions(name)
                for v in versions { print("version \(v.version)\(v.version == active ? " (active)" : "")") }
                print(try catalog.definition(name, version: version).rendered)
            }
        }
    }

    struct Push: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a version from a YAML or JSON file (the keys of a flows: entry but input); it is not active until activated.")
        @OptionGroup var options: Options
        @Argument(help: "The flow's name.") var name: String
        @Argument(help: "The file with the new definition.") var file: String

        func run() async throws {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw ValidationError("cannot read \(file): \(error.localizedDescription)")
            }
            let definition: JSONValue
            do {
                definition = try YAMLTree.parse(text, environment: ProcessInfo.processInfo.environment)
            } catch {
                throw ValidationError("\(file) is not YAML or JSON: \(error)")
            }
            try await Flows.withCatalog(options) { catalog in
                let added = try await catalog.addVersion(name, definition: definition)
                print("\(name): version \(added.version) added (activate it with: sluice flows activate \(name) \(added.version))")
            }
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a version the active one (rolling back is activating an older one).")
        @OptionGroup var options: Options
        @Argument(help: "The flow's name.") var name: String
        @Argument(help: "The version.") var version: Int

        func run() async throws {
            try await Flows.withCatalog(options) { catalog in
                try await catalog.activate(name, version: version)
                print("\(name): version \(version) is active")
            }
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A unified diff of two versions' definitions.")
        @OptionGroup var options: Options
        @Argument(help: "The flow's name.") var name: String
        @Argument(help: "The older version.") var from: Int
        @Argument(help: "The newer version.") var to: Int

        func run() async throws {
            try await Flows.withCatalog(options) { catalog in
                let a = try catalog.definition(name, version: from)
                let b = try catalog.definition(name, version: to)
                print(UnifiedDiff.make(from: a.rendered, to: b.rendered, fromName: "\(name) version \(from)", toName: "\(name) version \(to)"), terminator: "")
            }
        }
    }
}
