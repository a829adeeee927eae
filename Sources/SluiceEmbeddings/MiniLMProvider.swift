import Foundation
import NIOPosix
import SluiceCore

/// Embeddings from all-MiniLM-L6-v2 in process (`kind: minilm`), served as `all-minilm-l6-v2`
/// and usable by later stages (semantic cache, retrieval, routing) through `EmbeddingProvider`.
/// The encoder runs on NIO's blocking-work thread pool, never on an event loop.
public final class MiniLMProvider: EmbeddingProvider {
    public let name: String
    public let encoder: MiniLMEncoder
    let config: MiniLMProviderConfig

    /// Loads the model; a missing or unreadable model is an error naming the path and the fix.
    public init(name: String, config: MiniLMProviderConfig) throws {
        let path = config.resolvedPath
        let folder = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.safetensors").path) else {
            throw ConfigError(
                path: "providers.\(name).model_path",
                "no model.safetensors in \(path); fetch all-MiniLM-L6-v2 with `bash scripts/minilm-model.sh` (make run does)")
        }
        do {
            encoder = try MiniLMEncoder(directory: folder)
        } catch {
            throw ConfigError(path: "providers.\(name).model_path", "cannot load the model in \(path): \(error)")
        }
        self.name = name
        self.config = config
    }

    public func embed(_ request: EmbeddingsRequest, context: InferenceContext) async throws -> EmbeddingsResponse {
        guard case .strings(let texts) = request.input else {
            throw SluiceError(
                .invalidValue, "all-minilm-l6-v2 takes text: 'input' must be a string or an array of strings, not token ids.", param: "input")
        }
        if let d = request.dimensions, d != MiniLMEncoder.dimensions {
            throw SluiceError(.invalidValue, "all-minilm-l6-v2 has \(MiniLMEncoder.dimensions) dimensions; 'dimensions' cannot be \(d).", param: "dimensions")
        }
        // Refuse what is far past the model's window (it would be truncated to 256 tokens).
        let limit = config.maxInputTokens
        var ids: [[Int32]] = []
        ids.reserveCapacity(texts.count)
        for (i, text) in texts.enumerated() {
            let full = encoder.tokenizer.encode(text, maxTokens: limit + 3)
            if full.count > limit + 2 {
                throw SluiceError(
                    .invalidValue, "Input \(i) is longer than \(limit) tokens (providers.\(name).max_input_tokens).",
                    param: texts.count == 1 ? "input" : "input[\(i)]")
            }
            ids.append(full.count > encoder.maxTokens ? Array(full.prefix(encoder.maxTokens - 1)) + [full.last!] : full)
        }
        let tokens = ids.reduce(0) { $0 + $1.count }
        let batch = config.batchSize
        let encoder = self.encoder
        let sequences = ids
        let vectors = try await NIOThreadPool.singleton.runIfActive {
            var out: [[Float]] = []
            out.reserveCapacity(sequences.count)
            for start in stride(from: 0, to: sequences.count, by: batch) {
                out += encoder.embed(ids: Array(sequences[start..<min(start + batch, sequences.count)]))
            }
            return out
        }
        return EmbeddingsResponse(
            data: vectors.enumerated().map { .init(index: $0.offset, embedding: .float($0.element)) }, model: request.model,
            usage: EmbeddingUsage(promptTokens: tokens))
    }
}

extension MiniLMProvider {
    /// The semantic cache's paraphrase check (`verify: model`) over this provider's encoder:
    /// whether two questions ask the same thing, on NIO's blocking-work thread pool.
    public func paraphraseVerifier() throws -> @Sendable (_ cached: String, _ asked: String) async throws -> Bool {
        let classifier = try MiniLMPairClassifier.paraphrase(base: encoder)
        return { cached, asked in
            try await NIOThreadPool.singleton.runIfActive { classifier.probabilities([(cached, asked)])[0] >= classifier.threshold }
        }
    }
}

extension MiniLMProvider: WordEncoder {
    /// Word states for token classifiers, on NIO's blocking-work thread pool like `embed`.
    public func wordStates(_ texts: [String]) async throws -> [WordStates] {
        let encoder = self.encoder
        return try await NIOThreadPool.singleton.runIfActive { encoder.wordStates(texts) }
    }
}
