import Foundation
import Logging
import NIOCore
import SluiceCore

/// Builds the classifier of every `strategy: complexity` alias at start-up: its examples (file
/// and inline) embedded once with its embedding model.
public enum ComplexityClassifiers {
    public static func build(config: SluiceConfig, catalog: ModelCatalog, logger: Logger) async throws -> [String: ComplexityClassifier] {
        var out: [String: ComplexityClassifier] = [:]
        for (name, alias) in config.aliases.sorted(by: { $0.key < $1.key }) {
            guard let rule = alias.complexity else { continue }
            var examples = rule.examples
            if let file = rule.examplesFile {
                examples += try readExamples(file, path: "aliases.\(name).complexity.examples_file")
            }
            let embedder = rule.embeddingModel.flatMap { catalog.embedding[$0] }.flatMap(\.embedder)
            out[name] = try await ComplexityClassifier(
                threshold: rule.threshold, exampleWeight: rule.exampleWeight, examples: examples, embedder: embedder)
            logger.info("complexity routing ready", metadata: ["alias": "\(name)", "examples": "\(examples.count)"])
        }
        return out
    }

    /// Labelled examples from a JSONL file: `{"text": "...", "label": "simple"|"strong"}` per line.
    static func readExamples(_ file: String, path: String) throws -> [ComplexityRoutingConfig.LabelledExample] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw ConfigError(path: path, "cannot read \(file)")
        }
        var out: [ComplexityRoutingConfig.LabelledExample] = []
        for (i, line) in text.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let value = try? JSONCoding.decode(JSONValue.self, from: ByteBuffer(string: String(line))),
                let t = value["text"]?.stringValue, let label = value["label"]?.stringValue, ["simple", "strong"].contains(label)
            else {
                throw ConfigError(path: path, "\(file) line \(i + 1): expected {\"text\": ..., \"label\": \"simple\"|\"strong\"}")
            }
            out.append(.init(text: t, label: label))
        }
        return out
    }
}
