/// `files:` — uploads (`POST /v1/files`).
public struct FilesConfig: Sendable, Decodable, Hashable {
    /// The largest upload; more is a 413.
    public var maxBytes: Int = 512 * 1024 * 1024

    public init(maxBytes: Int = 512 * 1024 * 1024) { self.maxBytes = maxBytes }

    enum CodingKeys: String, CodingKey { case maxBytes = "max_bytes" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxBytes = try c.decodeIfPresent(Int.self, forKey: .maxBytes) ?? maxBytes
    }

    func problems(path: String) -> [ConfigError] {
        maxBytes > 0 ? [] : [ConfigError(path: "\(path).max_bytes", "must be positive")]
    }
}

/// `retrieval:` — vector stores: which embedding model indexes them, and what happens to a
/// retrieved passage the injection check flags before it can reach a prompt.
public struct RetrievalConfig: Sendable, Decodable, Hashable {
    public enum FlaggedPassages: String, Sendable, Decodable, Hashable {
        /// Left out of the prompt.
        case drop
        /// Kept, quoted and marked as untrusted data.
        case mark
    }

    /// The embedding model entry new vector stores use (a store may name another at creation);
    /// nil: `all-minilm-l6-v2` when configured, else the first embedding model entry.
    public var embeddingModel: String?
    /// The injection score at or above which a retrieved passage is flagged.
    public var injectionThreshold: Double = 0.5
    public var flaggedPassages: FlaggedPassages = .drop
    /// The `pdftotext` binary (Debian's poppler-utils).
    public var pdftotext: String = "pdftotext"

    public init() {}

    enum CodingKeys: String, CodingKey {
        case pdftotext
        case embeddingModel = "embedding_model"
        case injectionThreshold = "injection_threshold"
        case flaggedPassages = "flagged_passages"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        embeddingModel = try c.decodeIfPresent(String.self, forKey: .embeddingModel)
        injectionThreshold = try c.decodeIfPresent(Double.self, forKey: .injectionThreshold) ?? injectionThreshold
        flaggedPassages = try c.decodeIfPresent(FlaggedPassages.self, forKey: .flaggedPassages) ?? flaggedPassages
        pdftotext = try c.decodeIfPresent(String.self, forKey: .pdftotext) ?? pdftotext
    }

    func problems(path: String, embeddingModels: Set<String>) -> [ConfigError] {
        var out: [ConfigError] = []
        if let model = embeddingModel, !embeddingModels.contains(model) {
            out.append(ConfigError(path: "\(path).embedding_model", "no embedding model entry named '\(model)'"))
        }
        if !(0...1).contains(injectionThreshold) { out.append(ConfigError(path: "\(path).injection_threshold", "must be in 0...1")) }
        return out
    }
}
