import ArgumentParser
import Foundation
import Logging
import NIOCore
import SluiceCore
import SluiceEvaluation
import SluiceStore

/// `sluice experiments …`: the experiments of `--config`, their analysis, and start, pause and
/// stop, on the store a running Sluice reads (replicas notice within `auth.refresh_ms`).
struct ExperimentCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiments", abstract: "List experiments, show one's analysis, start, pause or stop one.",
        subcommands: [List.self, Show.self, Start.self, Pause.self, Stop.self])

    struct Options: ParsableArguments {
        @Option(name: .shortAndLong, help: "Path of sluice.yaml (its experiments, and the store with their results).")
        var config: String?
    }

    static func with(_ options: Options, _ body: (Experiments) async throws -> Void) async throws {
        try await withStores(options.config, label: "sluice-experiments") { loaded, stores in
            let experiments = Experiments(
                configs: loaded.experiments, judges: Array(loaded.judges.keys), store: stores.quality, flowVersions: stores.flowVersions,
                logger: Logger(label: "sluice-experiments"))
            try await experiments.reload()
            try await body(experiments)
        }
    }

    static func show(_ experiments: Experiments, _ name: String) async throws {
        let (analysis, state) = try await experiments.analyze(name)
        var out = ByteBuffer()
        try JSONWriter.write(analysis.json(status: state.status, promoted: state.promoted), to: &out)
        print(String(buffer: out))
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every experiment: status, subject, decision.")
        @OptionGroup var options: Options

        func run() async throws {
            try await ExperimentCommands.with(options) { experiments in
                for name in experiments.configs.keys.sorted() {
                    let (a, state) = try await experiments.analyze(name)
                    let subject = a.config.flow.map { "flow \($0)" } ?? "alias \(a.config.alias ?? "")"
                    let n = a.variants.map { "\($0.name) \($0.requests)" }.joined(separator: ", ")
                    print("\(name)\t\(state.status.rawValue)\t\(subject)\t\(n)\t\(a.decision.text): \(a.reason)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One experiment's analysis as JSON (as GET /admin/experiments/NAME).")
        @OptionGroup var options: Options
        @Argument var name: String

        func run() async throws { try await ExperimentCommands.with(options) { try await ExperimentCommands.show($0, name) } }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start (or resume) assigning requests to variants.")
        @OptionGroup var options: Options
        @Argument var name: String

        func run() async throws {
            try await ExperimentCommands.with(options) { print("\(name): \(try await $0.setStatus(name, .running).status.rawValue)") }
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause: requests run as without the experiment; its results are kept.")
        @OptionGroup var options: Options
        @Argument var name: String

        func run() async throws {
            try await ExperimentCommands.with(options) { print("\(name): \(try await $0.setStatus(name, .paused).status.rawValue)") }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the experiment.")
        @OptionGroup var options: Options
        @Argument var name: String

        func run() async throws {
            try await ExperimentCommands.with(options) { print("\(name): \(try await $0.setStatus(name, .stopped).status.rawValue)") }
        }
    }
}
