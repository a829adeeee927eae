import COpenBLAS
import SluiceCore
import Foundation

/// all-MiniLM-L6-v2 in process: the 6-layer BERT encoder (hidden 384, 12 heads, GELU), mean
/// pooling over the tokens and L2 normalisation, as sentence-transformers computes it. Matrix
/// products go through BLAS; a batch's sequences are stacked row after row (no padding), so
/// the dense layers run once per batch and attention per sequence and head.
public final class MiniLMEncoder: Sendable {
    struct Layer {
        let query, key, value, attentionOut, intermediate, output: Dense
        let attentionNorm, outputNorm: Norm
    }

    struct Dense {
        /// `[out, in]`, as PyTorch stores a Linear.
        let weight: [Float]
        let bias: [Float]
        let inputs: Int
        let outputs: Int
    }

    struct Norm {
        let weight: [Float]
        let bias: [Float]
    }

    public static let dimensions = 384
    static let heads = 12
    static let intermediateSize = 1536
    static let maxPositions = 512

    public let tokenizer: WordPieceTokenizer
    /// Tokens per input at most, `[CLS]` and `[SEP]` included.
    public let maxTokens: Int
    let wordEmbeddings: [Float]
    let positionEmbeddings: [Float]
    let tokenTypeEmbedding: [Float]
    /// Token type 1: the second text of a pair.
    let secondTypeEmbedding: [Float]
    let embeddingNorm: Norm
    let layers: [Layer]

    /// Loads `model.safetensors` and `tokenizer.json` from a folder.
    public init(directory: URL, maxTokens: Int = 256) throws {
        let d = Self.dimensions
        tokenizer = try WordPieceTokenizer(contentsOf: directory.appendingPathComponent("tokenizer.json"))
        self.maxTokens = min(maxTokens, Self.maxPositions)
        let file = try SafetensorsFile(contentsOf: directory.appendingPathComponent("model.safetensors"))
        wordEmbeddings = try file.floats("embeddings.word_embeddings.weight")
        positionEmbeddings = try file.floats("embeddings.position_embeddings.weight", shape: [Self.maxPositions, d])
        let types = try file.floats("embeddings.token_type_embeddings.weight", shape: [2, d])
        tokenTypeEmbedding = Array(types.prefix(d))
        secondTypeEmbedding = Array(types.suffix(d))
        func norm(_ prefix: String) throws -> Norm {
            Norm(weight: try file.floats(prefix + ".weight", shape: [d]), bias: try file.floats(prefix + ".bias", shape: [d]))
        }
        func dense(_ prefix: String, _ inputs: Int, _ outputs: Int) throws -> Dense {
            Dense(
                weight: try file.floats(prefix + ".weight", shape: [outputs, inputs]), bias: try file.floats(prefix + ".bias", shape: [outputs]),
                inputs: inputs, outputs: outputs)
        }
        embeddingNorm = try norm("embeddings.LayerNorm")
        layers = try (0..<6).map { i in
            let p = "encoder.layer.\(i)."
            return Layer(
                query: try dense(p + "attention.self.query", d, d), key: try dense(p + "attention.self.key", d, d),
                value: try dense(p + "attention.self.value", d, d), attentionOut: try dense(p + "attention.output.dense", d, d),
                intermediate: try dense(p + "intermediate.dense", d, Self.intermediateSize),
                output: try dense(p + "output.dense", Self.intermediateSize, d),
                attentionNorm: try norm(p + "attention.output.LayerNorm"), outputNorm: try norm(p + "output.LayerNorm"))
        }
        guard wordEmbeddings.count % d == 0 else { throw SafetensorsFile.FormatError(description: "word embeddings are not \(d) wide") }
    }

    private init(_ base: MiniLMEncoder, secondTypeEmbedding: [Float], layers: [Layer]) {
        tokenizer = base.tokenizer
        maxTokens = base.maxTokens
        wordEmbeddings = base.wordEmbeddings
        positionEmbeddings = base.positionEmbeddings
        tokenTypeEmbedding = base.tokenTypeEmbedding
        self.secondTypeEmbedding = secondTypeEmbedding
        embeddingNorm = base.embeddingNorm
        self.layers = layers
    }

    /// This encoder with low-rank adapters folded into its dense layers (`W + up · down` for
    /// each), and a trained embedding for a pair's second text. The tensors are named
    /// `adapter.encoder.layer.I.NAME.down` (`[rank, in]`) and `.up` (`[out, rank]`, scaled).
    public func adapted(by file: SafetensorsFile) throws -> MiniLMEncoder {
        let d = Self.dimensions
        func fold(_ dense: Dense, _ name: String) throws -> Dense {
            let down = try file.floats(name + ".down")
            let up = try file.floats(name + ".up")
            let rank = down.count / dense.inputs
            guard rank > 0, down.count == rank * dense.inputs, up.count == dense.outputs * rank else {
                throw SafetensorsFile.FormatError(description: "\(name): adapter shapes do not fit a \(dense.outputs)×\(dense.inputs) layer")
            }
            var weight = dense.weight
            // weight[out, in] += up[out, rank] · down[rank, in]
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(dense.outputs), Int32(dense.inputs), Int32(rank), 1, up, Int32(rank), down,
                Int32(dense.inputs), 1, &weight, Int32(dense.inputs))
            return Dense(weight: weight, bias: dense.bias, inputs: dense.inputs, outputs: dense.outputs)
        }
        let folded = try layers.enumerated().map { i, l in
            let p = "adapter.encoder.layer.\(i)."
            return Layer(
                query: try fold(l.query, p + "attention.self.query"), key: try fold(l.key, p + "attention.self.key"),
                value: try fold(l.value, p + "attention.self.value"), attentionOut: try fold(l.attentionOut, p + "attention.output.dense"),
                intermediate: try fold(l.intermediate, p + "intermediate.dense"), output: try fold(l.output, p + "output.dense"),
                attentionNorm: l.attentionNorm, outputNorm: l.outputNorm)
        }
        return MiniLMEncoder(self, secondTypeEmbedding: try file.floats("type1", shape: [d]), layers: folded)
    }

    /// `[CLS] a [SEP] b [SEP]` and where `b` starts, the longer text cut first (from its end)
    /// until the pair fits `maxTokens`.
    public func pairIDs(_ a: String, _ b: String, maxTokens: Int) -> (ids: [Int32], secondStart: Int) {
        func pieces(_ text: String) -> ArraySlice<Int32> {
            let ids = tokenizer.encode(text, maxTokens: Self.maxPositions)
            return ids.count > 2 ? ids[1..<(ids.count - 1)] : []
        }
        var x = pieces(a)
        var y = pieces(b)
        while x.count + y.count > maxTokens - 3 {
            if x.count >= y.count { x = x.dropLast() } else { y = y.dropLast() }
        }
        return ([tokenizer.clsID] + x + [tokenizer.sepID] + y + [tokenizer.sepID], x.count + 2)
    }

    /// Token ids of each text (`[CLS] … [SEP]`, truncated).
    public func tokenize(_ texts: [String]) -> [[Int32]] { texts.map { tokenizer.encode($0, maxTokens: maxTokens) } }

    /// One unit-length vector per text.
    public func embed(_ texts: [String]) -> [[Float]] { embed(ids: tokenize(texts)) }

    /// One unit-length vector per token sequence.
    public func embed(ids sequences: [[Int32]]) -> [[Float]] {
        guard !sequences.isEmpty else { return [] }
        let d = Self.dimensions
        let x = states(ids: sequences)
        // Mean pooling per sequence, then L2 normalisation.
        var out: [[Float]] = []
        out.reserveCapacity(sequences.count)
        var start = 0
        for ids in sequences {
            var v = [Float](repeating: 0, count: d)
            for r in start..<(start + ids.count) {
                for j in 0..<d { v[j] += x[r * d + j] }
            }
            let n = Float(max(ids.count, 1))
            var norm: Float = 0
            for j in 0..<d {
                v[j] /= n
                norm += v[j] * v[j]
            }
            let scale = 1 / max(norm.squareRoot(), 1e-12)
            out.append(v.map { $0 * scale })
            start += ids.count
        }
        return out
    }

    /// The last layer's state of every token of the sequences, one row of `dimensions` floats
    /// per token, the sequences one after another.
    public func states(ids sequences: [[Int32]], secondStarts: [Int]? = nil) -> [Float] {
        let d = Self.dimensions
        let vocabulary = wordEmbeddings.count / d
        let rows = sequences.reduce(0) { $0 + $1.count }
        // Embeddings: word + position + token type (1 from a pair's second text on), then LayerNorm.
        var x = [Float](repeating: 0, count: rows * d)
        var row = 0
        for (s, ids) in sequences.enumerated() {
            let second = secondStarts?[s] ?? Int.max
            for (position, id) in ids.enumerated() {
                let word = Int(id) < vocabulary && id >= 0 ? Int(id) : Int(tokenizer.unknownID)
                let type = position < second ? tokenTypeEmbedding : secondTypeEmbedding
                for j in 0..<d {
                    x[row * d + j] = wordEmbeddings[word * d + j] + positionEmbeddings[position * d + j] + type[j]
                }
                row += 1
            }
        }
        Self.layerNorm(&x, rows: rows, embeddingNorm)
        for layer in layers { x = encode(x, rows: rows, lengths: sequences.map(\.count), layer) }
        return x
    }

    private func encode(_ x: [Float], rows: Int, lengths: [Int], _ layer: Layer) -> [Float] {
        let d = Self.dimensions
        let q = Self.apply(layer.query, x, rows: rows)
        let k = Self.apply(layer.key, x, rows: rows)
        let v = Self.apply(layer.value, x, rows: rows)
        var context = [Float](repeating: 0, count: rows * d)
        let headSize = d / Self.heads
        let scale = 1 / Float(headSize).squareRoot()
        var start = 0
        for length in lengths {
            var scores = [Float](repeating: 0, count: length * length)
            for h in 0..<Self.heads {
                let offset = start * d + h * headSize
                q.withUnsafeBufferPointer { qp in
                    k.withUnsafeBufferPointer { kp in
                        cblas_sgemm(
                            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(length), Int32(length), Int32(headSize), scale,
                            qp.baseAddress! + offset, Int32(d), kp.baseAddress! + offset, Int32(d), 0, &scores, Int32(length))
                    }
                }
                for i in 0..<length { Self.softmax(&scores, from: i * length, count: length) }
                v.withUnsafeBufferPointer { vp in
                    context.withUnsafeMutableBufferPointer { cp in
                        cblas_sgemm(
                            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(length), Int32(headSize), Int32(length), 1, scores, Int32(length),
                            vp.baseAddress! + offset, Int32(d), 0, cp.baseAddress! + offset, Int32(d))
                    }
                }
            }
            start += length
        }
        var attended = Self.apply(layer.attentionOut, context, rows: rows)
        for i in 0..<attended.count { attended[i] += x[i] }
        Self.layerNorm(&attended, rows: rows, layer.attentionNorm)
        var hidden = Self.apply(layer.intermediate, attended, rows: rows)
        for i in 0..<hidden.count {
            let t = hidden[i]
            hidden[i] = 0.5 * t * (1 + erf(t / Float(2).squareRoot()))
        }
        var out = Self.apply(layer.output, hidden, rows: rows)
        for i in 0..<out.count { out[i] += attended[i] }
        Self.layerNorm(&out, rows: rows, layer.outputNorm)
        return out
    }

    /// `x · Wᵀ + b` for `rows` rows.
    static func apply(_ dense: Dense, _ x: [Float], rows: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * dense.outputs)
        for r in 0..<rows {
            for j in 0..<dense.outputs { out[r * dense.outputs + j] = dense.bias[j] }
        }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(dense.outputs), Int32(dense.inputs), 1, x, Int32(dense.inputs),
            dense.weight, Int32(dense.inputs), 1, &out, Int32(dense.outputs))
        return out
    }

    static func layerNorm(_ x: inout [Float], rows: Int, _ norm: Norm) {
        let d = norm.weight.count
        for r in 0..<rows {
            let base = r * d
            var mean: Float = 0
            for j in 0..<d { mean += x[base + j] }
            mean /= Float(d)
            var variance: Float = 0
            for j in 0..<d {
                let t = x[base + j] - mean
                variance += t * t
            }
            variance /= Float(d)
            let inv = 1 / (variance + 1e-12).squareRoot()
            for j in 0..<d { x[base + j] = (x[base + j] - mean) * inv * norm.weight[j] + norm.bias[j] }
        }
    }

    static func softmax(_ x: inout [Float], from start: Int, count: Int) {
        var m = -Float.infinity
        for i in start..<(start + count) { m = max(m, x[i]) }
        var sum: Float = 0
        for i in start..<(start + count) {
            x[i] = exp(x[i] - m)
            sum += x[i]
        }
        for i in start..<(start + count) { x[i] /= sum }
    }
}

extension MiniLMEncoder {
    /// Word pieces per window, so that `[CLS]` + window + `[SEP]` fits the model's 256 positions.
    public static let windowPieces = 254

    /// The state of each word of each text: the last layer's state of its first piece. A text is
    /// cut at word boundaries into windows of at most `windowPieces` pieces (a single longer word
    /// keeps its first pieces), and every window of every text is encoded in one batch.
    /// `scripts/train-pii-tagger.py` cuts the same windows.
    public func wordStates(_ texts: [String]) -> [WordStates] {
        let d = Self.dimensions
        var sequences: [[Int32]] = []
        var perText: [(words: [Range<Int>], firstRows: [Int])] = []
        var row = 0
        for text in texts {
            let words = tokenizer.wordPieces(text)
            var firstRows: [Int] = []
            firstRows.reserveCapacity(words.count)
            var window: [Int32] = [tokenizer.clsID]
            func close() {
                window.append(tokenizer.sepID)
                sequences.append(window)
                row += window.count
                window = [tokenizer.clsID]
            }
            for word in words {
                if window.count > 1 && window.count - 1 + word.pieces.count > Self.windowPieces { close() }
                firstRows.append(row + window.count)
                window.append(contentsOf: word.pieces.prefix(Self.windowPieces - (window.count - 1)))
            }
            if window.count > 1 { close() }
            perText.append((words.map(\.range), firstRows))
        }
        let x = sequences.isEmpty ? [] : states(ids: sequences)
        return perText.map { text in
            var rows = [Float]()
            rows.reserveCapacity(text.firstRows.count * d)
            for r in text.firstRows { rows.append(contentsOf: x[(r * d)..<((r + 1) * d)]) }
            return WordStates(words: text.words, states: rows, width: d)
        }
    }
}
extension MiniLMEncoder: WordEncoder {}
