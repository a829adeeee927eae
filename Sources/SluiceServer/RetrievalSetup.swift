import SluiceCore
import SluiceEmbeddings
import SluiceRetrieval

/// The embedders vector stores may use: every embedding deployment. all-MiniLM-L6-v2 in process
/// counts chunk sizes in its own WordPiece tokens and reads 254 of them (256 with its two
/// markers); other models are sized by the token estimate and read up to 8,191.
enum RetrievalSetup {
    static func embedders(_ catalog: ModelCatalog) -> [String: ChunkEmbedder] {
        var out: [String: ChunkEmbedder] = [:]
        for (name, deployment) in catalog.embedding {
            guard let embed = deployment.embedder else { continue }
            if let minilm = deployment.embeddingProvider as? MiniLMProvider {
                let encoder = minilm.encoder
                out[name] = ChunkEmbedder(
                    model: name, window: encoder.maxTokens - 2, countTokens: { encoder.tokenizer.encode($0, maxTokens: 1 << 20).count - 2 }, embed: embed)
            } else {
                out[name] = ChunkEmbedder(model: name, window: 8191, countTokens: TokenEstimator.tokens(in:), embed: embed)
            }
        }
        return out
    }

    /// `retrieval.embedding_model`, else all-minilm-l6-v2 when configured, else the first by name.
    static func defaultModel(_ config: RetrievalConfig, embedders: [String: ChunkEmbedder]) -> String? {
        if let named = config.embeddingModel { return named }
        if embedders["all-minilm-l6-v2"] != nil { return "all-minilm-l6-v2" }
        return embedders.keys.sorted().first
    }
}
