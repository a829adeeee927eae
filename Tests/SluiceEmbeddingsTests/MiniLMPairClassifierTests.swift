import Foundation
import Testing
@testable import SluiceEmbeddings

/// The shipped paraphrase verifier in Swift against PyTorch's reading of the same weights
/// (`scripts/train-cache-verifier.py` writes the reference).
@Suite(.enabled(if: MiniLMFiles.available, "needs SLUICE_MINILM_DIR and SLUICE_MINILM_REFERENCE (make test sets them)"))
struct MiniLMPairClassifierTests {
    static let classifier = Result { try MiniLMPairClassifier.paraphrase(base: try MiniLMEncoder(directory: MiniLMFiles.directory!)) }

    @Test func probabilitiesMatchTheTrainingScripts() throws {
        let classifier = try Self.classifier.get()
        let reference = ParaphraseVerifierReference.pairs
        let swift = classifier.probabilities(reference.map { ($0.0, $0.1) })
        for (pair, p) in zip(reference, swift) {
            #expect(abs(p - pair.2) < 0.01, "\(pair.0) | \(pair.1): \(p), PyTorch \(pair.2)")
        }
        // One at a time gives what a batch gives.
        #expect(abs(classifier.probabilities([(reference[0].0, reference[0].1)])[0] - swift[0]) < 1e-4)
        #expect(classifier.threshold > 0.5 && classifier.threshold < 1)
    }

    @Test func aPairIsCutToFitLongerTextFirst() throws {
        let classifier = try Self.classifier.get()
        let encoder = classifier.encoder
        let long = Array(repeating: "word", count: 300).joined(separator: " ")
        let (ids, second) = encoder.pairIDs(long, "short question?", maxTokens: 128)
        #expect(ids.count == 128)
        #expect(ids.first == encoder.tokenizer.clsID && ids.last == encoder.tokenizer.sepID)
        // "short question?" is three pieces, kept whole; the long text gave way.
        #expect(second == 128 - 4)
        #expect(ids[second - 1] == encoder.tokenizer.sepID)
        let (both, _) = encoder.pairIDs(long, long, maxTokens: 128)
        #expect(both.count == 128)
        // Past the window nothing breaks: the classifier reads the cut pair.
        #expect(classifier.probabilities([(long, "short question?")]).count == 1)
    }
}

/// Reading safetensors from memory: float16 widened, metadata kept.
@Suite struct SafetensorsFileTests {
    static func file(dtype: String, bytes: [UInt8], shape: [Int], metadata: String = #"{"threshold":"0.5"}"#) -> Data {
        var header = #"{"__metadata__":\#(metadata),"t":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":[0,\#(bytes.count)]}}"#
        while header.utf8.count % 8 != 0 { header += " " }
        var data = Data()
        var length = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        data.append(contentsOf: bytes)
        return data
    }

    @Test func float16IsWidenedAndMetadataRead() throws {
        // 1.0, -2.0, 0.5 as IEEE half precision, little-endian.
        let f = try SafetensorsFile(data: Self.file(dtype: "F16", bytes: [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38], shape: [3]), name: "t")
        #expect(try f.floats("t") == [1, -2, 0.5])
        #expect(f.metadata["threshold"] == "0.5")
    }

    @Test func aWrongSizeOrTypeIsAnErrorNotACrash() throws {
        let short = try SafetensorsFile(data: Self.file(dtype: "F16", bytes: [0x00, 0x3C, 0x00], shape: [2]), name: "t")
        #expect(throws: SafetensorsFile.FormatError.self) { try short.floats("t") }
        let ints = try SafetensorsFile(data: Self.file(dtype: "I64", bytes: Array(repeating: 0, count: 8), shape: [1]), name: "t")
        #expect(throws: SafetensorsFile.FormatError.self) { try ints.floats("t") }
        #expect(throws: (any Error).self) { try SafetensorsFile(data: Data([1, 2, 3]), name: "t") }
    }
}
