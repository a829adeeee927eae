import SluiceCache
import SluiceCore
import SluiceEmbeddings

/// The semantic cache's paraphrase verifier, built only where a cache rule asks for it
/// (`verify: model`): folding its adapters into a copy of MiniLM's dense layers costs ~40 MB.
enum CacheSetup {
    static func verifier(config: SluiceConfig, embedding: (any EmbeddingProvider)?) throws -> ResponseCache.Verifier? {
        let rules = config.models.compactMap(\.cache) + config.aliases.values.compactMap(\.cache)
        guard rules.contains(where: { $0.semantic && $0.verify == .model }), let minilm = embedding as? MiniLMProvider else { return nil }
        do {
            return try minilm.paraphraseVerifier()
        } catch {
            throw ConfigError(path: "cache.embedding_model", "cannot load the paraphrase verifier over \(minilm.name): \(error)")
        }
    }
}
