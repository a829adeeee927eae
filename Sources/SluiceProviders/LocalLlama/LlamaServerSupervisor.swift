import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SluiceCore
import Synchronization

/// Runs one `llama-server` for a provider: starts it on a free loopback port, waits until its
/// `/health` answers, watches it, and starts it again with backoff when it dies. Requests ask
/// `instance(waitingUpTo:)` for the server to talk to; while it is down they wait a little,
/// then get a 503.
public final class LlamaServerSupervisor: Sendable {
    /// A running, healthy server.
    struct Instance: Sendable {
        let process: ChildProcess
        let port: Int
        let pool: HTTP1ConnectionPool
    }

    private enum Phase {
        case idle
        case starting
        case ready(Instance)
        case down(String)
        case stopped
    }

    private struct State {
        var phase: Phase = .idle
        var waiters: [Int: CheckedContinuation<Instance, any Error>] = [:]
        var nextWaiter = 0
        var restarts = 0
        /// The process of the current start, running or not yet healthy (for stopping it).
        var process: ChildProcess?
    }

    let name: String
    let config: LlamaServerProviderConfig
    let logger: Logger
    let arguments: @Sendable (Int) -> [String]
    private let state = Mutex(State())

    /// A supervisor for provider `name`; nothing starts until `start()`.
    public init(name: String, config: LlamaServerProviderConfig, logger: Logger) {
        self.name = name
        self.config = config
        self.logger = logger
        let config = config
        self.arguments = { port in
            [
                "--model", config.resolvedModelPath, "--host", "127.0.0.1", "--port", String(port),
                "--ctx-size", String(config.context), "--threads", String(config.threads), "--parallel", String(config.slots),
                // One KV buffer shared by the slots: a long conversation may use the whole context.
                "--kv-unified", "--no-webui",
            ] + config.extraArgs
        }
    }

    deinit {
        // An application built and dropped without running (tests, a failed start) must not
        // leave its server behind until the process exits.
        if let process = state.withLock({ $0.process }) {
            process.send(SIGKILL)
            _ = process.reap()
        }
    }

    /// Starts after the first (after an unexpected exit, or a failed start).
    public var restarts: Int { state.withLock { $0.restarts } }

    /// The PID of the running server, if one is running.
    public var pid: Int32? { state.withLock { $0.process?.pid } }

    /// Checks the files, launches the server and waits until it is healthy; throws with the
    /// end of its log when it does not come up.
    public func start() async throws {
        let binary = config.resolvedBinary
        let model = config.resolvedModelPath
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ConfigError(
                path: "providers.\(name).binary",
                "no llama-server executable at \(binary); build it with `bash scripts/llama-server.sh` (make run and `sluice doctor --fix` do)")
        }
        guard FileManager.default.fileExists(atPath: model) else {
            throw ConfigError(
                path: "providers.\(name).model_path",
                "no model file at \(model); fetch Gemma 3 270M with `bash scripts/gemma-model.sh` (make run and `sluice doctor --fix` do)")
        }
        let instance = try await launch()
        publish(instance)
    }

    /// Watches the server until the task is cancelled, restarting it when it dies; then stops it.
    public func supervise() async {
        var failures = 0
        while !Task.isCancelled {
            guard let current = state.withLock({ $0.process }) else {
                if await relaunch(after: &failures) { continue } else { break }
            }
            let startedAt = ContinuousClock.now
            var ended: ChildProcess.Termination?
            while !Task.isCancelled {
                if let t = current.reap() {
                    ended = t
                    break
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
            guard let ended else { break }
            // A server that ran a good while before dying starts again at once.
            if ContinuousClock.now - startedAt > .seconds(60) { failures = 0 }
            let reason = "llama-server (pid \(current.pid)) \(ended)"
            logger.error("local model server died; restarting", metadata: ["provider": "\(name)", "reason": "\(reason)", "log": "\(logTail())"])
            markDown(reason, process: current)
            if await relaunch(after: &failures) == false { break }
        }
        await stop()
    }

    /// Launches again after a backoff (0.5 s doubling to 30 s); false when cancelled meanwhile.
    private func relaunch(after failures: inout Int) async -> Bool {
        let delay = failures == 0 ? Duration.zero : min(.milliseconds(500) * (1 << min(failures - 1, 6)), .seconds(30))
        failures += 1
        if delay > .zero {
            do { try await Task.sleep(for: delay) } catch { return false }
        }
        state.withLock { $0.restarts += 1 }
        do {
            publish(try await launch())
        } catch is CancellationError {
            return false
        } catch {
            logger.error("local model server did not start", metadata: ["provider": "\(name)", "error": "\(error)"])
            markDown("llama-server did not start: \(error)", process: nil)
        }
        return !Task.isCancelled
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and fails waiting requests.
    public func stop() async {
        let (process, waiters, pool) = state.withLock { s -> (ChildProcess?, [CheckedContinuation<Instance, any Error>], HTTP1ConnectionPool?) in
            var pool: HTTP1ConnectionPool?
            if case .ready(let instance) = s.phase { pool = instance.pool }
            s.phase = .stopped
            defer {
                s.process = nil
                s.waiters = [:]
            }
            return (s.process, Array(s.waiters.values), pool)
        }
        for w in waiters { w.resume(throwing: SluiceError(.shuttingDown, "Sluice is shutting down.")) }
        pool?.closeIdle()
        if let process {
            let ended = await process.terminate()
            logger.info("local model server stopped", metadata: ["provider": "\(name)", "pid": "\(process.pid)", "how": "\(ended)"])
        }
    }

    /// The healthy server, waiting up to `limit` while it (re)starts; 503 after that.
    func instance(waitingUpTo limit: Duration) async throws -> Instance {
        enum Now {
            case ready(Instance)
            case failed(any Error)
            case wait
        }
        let now: Now = state.withLock { s in
            switch s.phase {
            case .ready(let i): .ready(i)
            case .stopped: .failed(SluiceError(.shuttingDown, "Sluice is shutting down."))
            case .idle: .failed(SluiceError(.upstreamUnavailable, "Local model server '\(name)' was not started."))
            case .starting, .down: .wait
            }
        }
        switch now {
        case .ready(let i): return i
        case .failed(let e): throw e
        case .wait: break
        }
        let id = state.withLock { s -> Int in
            defer { s.nextWaiter += 1 }
            return s.nextWaiter
        }
        return try await withThrowingTaskGroup(of: Instance?.self) { group in
            group.addTask {
                try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { continuation in
                        let immediate: Result<Instance, any Error>? = self.state.withLock { s in
                            switch s.phase {
                            case .ready(let i): return .success(i)
                            case .stopped: return .failure(SluiceError(.shuttingDown, "Sluice is shutting down."))
                            default:
                                if Task.isCancelled { return .failure(CancellationError()) }
                                s.waiters[id] = continuation
                                return nil
                            }
                        }
                        if let immediate { continuation.resume(with: immediate) }
                    }
                } onCancel: {
                    self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
                }
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            if let instance = try await group.next() ?? nil { return instance }
            let reason = state.withLock { s -> String in
                if case .down(let r) = s.phase { return r }
                return "it is still starting"
            }
            throw SluiceError(
                .upstreamUnavailable, "Local model server '\(name)' is not available (\(reason)); it is being restarted, retry shortly.",
                retryAfter: 1)
        }
    }

    /// Health as `/readyz` reports it.
    func health() -> ProviderHealth {
        state.withLock { s in
            switch s.phase {
            case .ready: .healthy
            case .idle: .unhealthy("not started")
            case .starting: .unhealthy("starting")
            case .down(let reason): .unhealthy(reason)
            case .stopped: .unhealthy("stopped")
            }
        }
    }

    /// A request saw the server's connection refused: it may have died a moment ago. The
    /// watcher notices within 100 ms anyway; this only makes the next caller wait instead of
    /// failing too.
    func reportUnreachable(_ instance: Instance) {
        guard instance.process.hasExited else { return }
        markDown("llama-server (pid \(instance.process.pid)) exited", process: nil)
    }

    private func publish(_ instance: Instance) {
        let waiters = state.withLock { s -> [CheckedContinuation<Instance, any Error>] in
            if case .stopped = s.phase { return [] }
            s.phase = .ready(instance)
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume(returning: instance) }
        logger.info(
            "local model server ready",
            metadata: ["provider": "\(name)", "pid": "\(instance.process.pid)", "port": "\(instance.port)", "model": "\(config.resolvedModelPath)"])
    }

    private func markDown(_ reason: String, process: ChildProcess?) {
        let pool = state.withLock { s -> HTTP1ConnectionPool? in
            guard case .ready(let instance) = s.phase else {
                if case .starting = s.phase { s.phase = .down(reason) }
                return nil
            }
            if let process, instance.process != process { return nil }
            s.phase = .down(reason)
            return instance.pool
        }
        pool?.closeIdle()
    }

    /// One start: a free port, the process, and its health endpoint answering 200.
    private func launch() async throws -> Instance {
        let logFile = config.resolvedLogFile(provider: name)
        Self.prepareLog(logFile)
        let port = try freeLoopbackPort()
        let process = try ChildProcess.launch(executable: config.resolvedBinary, arguments: arguments(port), logFile: logFile)
        state.withLock { s in
            if case .ready = s.phase {} else if case .stopped = s.phase {} else { s.phase = .starting }
            s.process = process
        }
        logger.info("starting local model server", metadata: ["provider": "\(name)", "pid": "\(process.pid)", "port": "\(port)"])
        let pool = HTTP1ConnectionPool(host: "127.0.0.1", port: port, maxConnections: max(8, config.slots * 4), timeouts: config.timeouts)
        let deadline = ContinuousClock.now + .milliseconds(config.startupTimeoutMs)
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/health")
        head.headers.add(name: "host", value: "127.0.0.1:\(port)")
        while true {
            if let ended = process.reap() {
                state.withLock { if $0.process == process { $0.process = nil } }
                throw SluiceError(.upstreamUnavailable, "llama-server \(ended) while starting; its log ends with: \(logTail())")
            }
            if ContinuousClock.now > deadline {
                await process.terminate()
                state.withLock { if $0.process == process { $0.process = nil } }
                throw SluiceError(
                    .upstreamUnavailable,
                    "llama-server was not healthy within \(config.startupTimeoutMs) ms (startup_timeout_ms); its log ends with: \(logTail())")
            }
            if let response = try? await pool.execute(head: head, body: ByteBuffer(), maxBodyBytes: 1 << 16, preferredEventLoop: nil),
                response.status == .ok
            {
                return Instance(process: process, port: port, pool: pool)
            }
            do {
                try await Task.sleep(for: .milliseconds(50))
            } catch {
                await process.terminate()
                state.withLock { if $0.process == process { $0.process = nil } }
                throw error
            }
        }
    }

    /// Creates the log's folder, and keeps one previous log once it passes 16 MiB (the server
    /// writes a few lines per request).
    static func prepareLog(_ path: String) {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > 16 << 20 {
            try? FileManager.default.removeItem(atPath: path + ".1")
            try? FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        }
    }

    /// The last lines of the server's log, for error messages.
    func logTail(lines: Int = 4) -> String {
        guard let data = FileManager.default.contents(atPath: config.resolvedLogFile(provider: name)) else { return "(no log)" }
        let text = String(decoding: data.suffix(16_384), as: UTF8.self)
        return text.split(separator: "\n").suffix(lines).joined(separator: " | ")
    }
}
