import ArgumentParser
import Foundation
import SluiceCore
import SluiceObservability

/// `sluice doctor [--fix]`: what the local models need, what is there, and the command that
/// installs what is missing.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check what the local models need (llama-server, Gemma, MiniLM, OpenBLAS); --fix installs what is missing.")

    @Option(name: .shortAndLong, help: "Check the local providers of this sluice.yaml (default: the embedded default's paths).")
    var config: String?

    @Flag(help: "Run the commands that install what is missing (from the Sluice checkout).")
    var fix = false

    func run() throws {
        let checks = try SetupCheck.all(for: config.map(loadConfig))
        report(checks)
        let missing = checks.filter { !$0.ok }
        guard !missing.isEmpty else {
            print("\nEverything the local models need is installed.")
            return
        }
        guard fix else {
            print("\n\(missing.count) missing; `sluice doctor --fix` installs \(missing.count == 1 ? "it" : "them") (or run the commands above).")
            throw ExitCode(1)
        }
        var seen: Set<String> = []
        for check in missing {
            guard let command = check.fix, seen.insert(command).inserted else { continue }
            print("\n==> \(check.name): \(command)")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", command]
            try process.run()
            process.waitUntilExit()
            if process.terminationStatus != 0 {
                print("'\(command)' failed with status \(process.terminationStatus)")
                throw ExitCode(1)
            }
        }
        print("")
        let after = try SetupCheck.all(for: config.map(loadConfig))
        report(after)
        if after.contains(where: { !$0.ok }) { throw ExitCode(1) }
    }

    private func report(_ checks: [SetupCheck]) {
        let width = checks.map(\.name.count).max() ?? 0
        for check in checks {
            let name = check.name.padding(toLength: width, withPad: " ", startingAt: 0)
            var line = "\(check.ok ? "ok     " : "missing") \(name)  \(check.detail)"
            if !check.ok, let fix = check.fix { line += "\n        fix: \(fix)" }
            print(line)
        }
    }
}

/// One thing the local setup needs.
struct SetupCheck {
    var name: String
    var ok: Bool
    var detail: String
    /// The shell command (run from the checkout) that installs it.
    var fix: String?

    /// The checks for the local providers of `config` (the embedded default's when nil).
    static func all(for config: SluiceConfig?) throws -> [SetupCheck] {
        var llama: [(String, LlamaServerProviderConfig)] = []
        var minilm: [(String, MiniLMProviderConfig)] = []
        if let config {
            for (name, provider) in config.providers.sorted(by: { $0.key < $1.key }) {
                switch provider {
                case .llamaServer(let c): llama.append((name, c))
                case .minilm(let c): minilm.append((name, c))
                default: break
                }
            }
        } else {
            llama = [("local", LlamaServerProviderConfig())]
            minilm = [("local-embed", MiniLMProviderConfig())]
        }
        var out: [SetupCheck] = [openBLAS()]
        if !llama.isEmpty { out.append(buildTools()) }
        for (name, c) in llama {
            out.append(binary(name, c))
            out.append(gguf(name, c))
        }
        for (name, c) in minilm { out.append(miniLM(name, c)) }
        return out
    }

    static func openBLAS() -> SetupCheck {
        let headers = ["/usr/include/x86_64-linux-gnu/cblas.h", "/usr/include/aarch64-linux-gnu/cblas.h", "/usr/include/cblas.h"]
        let found = headers.first { FileManager.default.fileExists(atPath: $0) }
        return SetupCheck(
            name: "openblas", ok: found != nil, detail: found.map { "Debian libopenblas-dev (\($0))" } ?? "Debian libopenblas-dev is not installed",
            fix: "bash scripts/system-deps.sh")
    }

    static func buildTools() -> SetupCheck {
        let missing = ["cmake", "g++"].filter { tool in
            !(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").contains {
                FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)")
            }
        }
        return SetupCheck(
            name: "cmake, g++", ok: missing.isEmpty,
            detail: missing.isEmpty ? "to build llama-server" : "\(missing.joined(separator: ", ")) not on PATH (needed to build llama-server)",
            fix: "bash scripts/llama-server.sh")
    }

    static func binary(_ provider: String, _ c: LlamaServerProviderConfig) -> SetupCheck {
        let path = c.resolvedBinary
        let ok = FileManager.default.isExecutableFile(atPath: path)
        return SetupCheck(
            name: "llama-server (\(provider))", ok: ok,
            detail: ok ? path : "no executable at \(path)",
            fix: c.binary == "auto" ? "bash scripts/llama-server.sh" : "build llama.cpp's llama-server and set providers.\(provider).binary")
    }

    static func gguf(_ provider: String, _ c: LlamaServerProviderConfig) -> SetupCheck {
        let path = c.resolvedModelPath
        var detail = "no model file at \(path)"
        var ok = false
        if let handle = FileHandle(forReadingAtPath: path) {
            defer { try? handle.close() }
            let magic = (try? handle.read(upToCount: 4)) ?? Data()
            let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int ?? 0
            ok = magic == Data("GGUF".utf8)
            detail = ok ? "\(path) (\(size / 1_000_000) MB)" : "\(path) is not a GGUF file"
        }
        return SetupCheck(
            name: "model (\(provider))", ok: ok, detail: detail,
            fix: c.modelPath == "auto" ? "bash scripts/gemma-model.sh" : "put a GGUF file at \(path)")
    }

    static func miniLM(_ provider: String, _ c: MiniLMProviderConfig) -> SetupCheck {
        let folder = c.resolvedPath
        let missing = ["model.safetensors", "tokenizer.json"].filter { !FileManager.default.fileExists(atPath: "\(folder)/\($0)") }
        return SetupCheck(
            name: "all-minilm-l6-v2 (\(provider))", ok: missing.isEmpty,
            detail: missing.isEmpty ? folder : "\(missing.joined(separator: ", ")) missing in \(folder)",
            fix: c.modelPath == "auto" ? "bash scripts/minilm-model.sh" : "put model.safetensors and tokenizer.json in \(folder)")
    }
}
