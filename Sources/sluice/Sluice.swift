import ArgumentParser
import Foundation
import Logging
import SluiceCore
import SluiceEvaluation
import SluiceFlows
import SluiceObservability
import SluiceServer
import SluiceStore


struct Sluice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "An OpenAI-compatible LLM gateway.",
        subcommands: [Serve.self, Validate.self, Keys.self, Flows.self, ExperimentCommands.self, BatchCommands.self, Doctor.self, Eval.self],
        defaultSubcommand: Serve.self)
}

/// Reads `--config` or the embedded default, printing every problem and exiting 2 on a bad file.
func loadConfig(_ path: String?) throws -> SluiceConfig {
    guard let path else { return .embeddedDefault }
    do {
        return try SluiceConfig.load(path: path)
    } catch let error as ConfigErrors {
        for e in error.errors { FileHandle.standardError.write(Data("config error: \(e)\n".utf8)) }
        throw ExitCode(2)
    } catch let error as ConfigError {
        FileHandle.standardError.write(Data("config error: \(error)\n".utf8))
        throw ExitCode(2)
    }
}

/// Runs `body` with the stores `--config` names, closing them on every path; Sluice's errors
/// become one line and exit status 1.
func withStores(_ path: String?, label: String, _ body: (SluiceConfig, Stores) async throws -> Void) async throws {
    let config = try loadConfig(path)
    let stores = try await Stores.open(config.store, logger: Logger(label: label))
    do {
        try await body(config, stores)
        await stores.close()
    } catch let error as SluiceError {
        await stores.close()
        FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
        throw ExitCode(1)
    } catch {
        await stores.close()
        throw error
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the gateway (the embedded default when no --config is given).")

    @Option(name: .shortAndLong, help: "Path of sluice.yaml.")
    var config: String?

    @Option(help: "Override server.port.")
    var port: Int?

    func run() async throws {
        var config = try loadConfig(config)
        if let port { config.server.port = port }
        let level = Logger.Level(rawValue: config.logging.level) ?? .info
        let json = config.logging.format == "json"
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, format: json ? .json : .text)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "sluice")
        // Log lines are written by a flusher thread; write out the last ones before exiting.
        defer { LineLogHandler.flush() }
        let app: SluiceApplication
        do {
            app = try await buildApplication(
                config: config, options: BuildOptions(logger: logger, adminKey: ProcessInfo.processInfo.environment["SLUICE_ADMIN_KEY"]))
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("config error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        try await app.run()
        logger.notice("sluice stopped", metadata: ["audit_rows_written": "\(app.auditLog.written)", "audit_rows_dropped": "\(app.auditLog.dropped)"])
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a configuration file without serving.")

    @Option(name: .shortAndLong, help: "Path of sluice.yaml.")
    var config: String

    func run() throws {
        let loaded = try loadConfig(config)
        // Templates are parsed and template files read only here, not by the config's own checks.
        do {
            _ = try FlowCatalog(config: loaded, baseDirectory: loaded.directory)
            _ = try Judges.definitions(loaded.judges, baseDirectory: loaded.directory)
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("config error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        print(
            "\(config): ok (\(loaded.providers.count) providers, \(loaded.models.count) models, \(loaded.flows.count) flows, \(loaded.judges.count) judges, \(loaded.experiments.count) experiments)")
    }
}
