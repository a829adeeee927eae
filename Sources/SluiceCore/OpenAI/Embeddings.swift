/// The body of `POST /v1/embeddings`.
public struct EmbeddingsRequest: Codable, Sendable, Hashable {
    public var model: String
    public var input: EmbeddingInput
    public var encodingFormat: EncodingFormat?
    public var dimensions: Int?
    public var user: String?

    public init(model: String, input: EmbeddingInput, encodingFormat: EncodingFormat? = nil) {
        self.model = model
        self.input = input
        self.encodingFormat = encodingFormat
    }

    enum CodingKeys: String, CodingKey {
        case model, input, dimensions, user
        case encodingFormat = "encoding_format"
    }

    /// `encoding_format`.
    public enum EncodingFormat: String, Codable, Sendable, Hashable {
        case float, base64
    }
}

/// `input` of an embeddings request: one string, many strings, or pre-tokenized input.
public enum EmbeddingInput: Codable, Sendable, Hashable {
    case strings([String])
    case tokens([[Int]])

    /// How many inputs there are.
    public var count: Int {
        switch self {
        case .strings(let s): s.count
        case .tokens(let t): t.count
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            self = .strings([s])
        } else if let a = try? c.decode([String].self) {
            self = .strings(a)
        } else if let t = try? c.decode([Int].self) {
            self = .tokens([t])
        } else if let tt = try? c.decode([[Int]].self) {
            self = .tokens(tt)
        } else {
            throw DecodingError.typeMismatch(
                String.self,
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "expected a string, an array of strings, or an array of token arrays"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .strings(let s): try c.encode(s)
        case .tokens(let t): try c.encode(t)
        }
    }
}

/// The answer to an embeddings request.
public struct EmbeddingsResponse: Codable, Sendable, Hashable {
    public var object: String
    public var data: [Embedding]
    public var model: String
    public var usage: EmbeddingUsage

    public init(data: [Embedding], model: String, usage: EmbeddingUsage) {
        self.object = "list"
        self.data = data
        self.model = model
        self.usage = usage
    }

    /// One embedding vector.
    public struct Embedding: Codable, Sendable, Hashable {
        public var object: String
        public var index: Int
        public var embedding: EmbeddingVector

        public init(index: Int, embedding: EmbeddingVector) {
            self.object = "embedding"
            self.index = index
            self.embedding = embedding
        }
    }
}

/// A vector as floats, or as base64 of little-endian float32 (OpenAI's `encoding_format: base64`).
public enum EmbeddingVector: Codable, Sendable, Hashable {
    case float([Float])
    case base64(String)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            self = .base64(s)
        } else {
            self = .float(try c.decode([Float].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .float(let f): try c.encode(f)
        case .base64(let s): try c.encode(s)
        }
    }
}

/// Usage of an embeddings call.
public struct EmbeddingUsage: Codable, Sendable, Hashable {
    public var promptTokens: Int
    public var totalTokens: Int

    public init(promptTokens: Int) {
        self.promptTokens = promptTokens
        self.totalTokens = promptTokens
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case totalTokens = "total_tokens"
    }
}

/// `GET /v1/models`.
public struct ModelList: Codable, Sendable, Hashable {
    public var object: String = "list"
    public var data: [Model]

    public init(data: [Model]) { self.data = data }

    /// One model entry.
    public struct Model: Codable, Sendable, Hashable {
        public var id: String
        public var object: String = "model"
        public var created: Int
        public var ownedBy: String

        public init(id: String, created: Int, ownedBy: String) {
            self.id = id
            self.created = created
            self.ownedBy = ownedBy
        }

        enum CodingKeys: String, CodingKey {
            case id, object, created
            case ownedBy = "owned_by"
        }
    }
}
