/// The kinds of personal data and secrets the PII checks find.
public enum PIIType: String, Sendable, Hashable, CaseIterable, Codable {
    case email = "EMAIL"
    case phone = "PHONE"
    case creditCard = "CREDIT_CARD"
    case usSSN = "US_SSN"
    case iban = "IBAN"
    case ipAddress = "IP_ADDRESS"
    case dateOfBirth = "DATE_OF_BIRTH"
    /// Any date or time, found by the entity tagger (`pii: {ner: …}`); Presidio's name for it.
    case dateTime = "DATE_TIME"
    case streetAddress = "STREET_ADDRESS"
    case person = "PERSON"
    case secret = "SECRET"

    /// Which finding wins where two overlap (lower first): the more specific, better-validated one.
    var precedence: Int {
        switch self {
        case .secret: 0
        case .creditCard: 1
        case .iban: 2
        case .usSSN: 3
        case .email: 4
        case .ipAddress: 5
        case .phone: 6
        case .dateOfBirth: 7
        case .dateTime: 8
        case .streetAddress: 9
        case .person: 10
        }
    }
}

/// One piece of personal data or a secret: its type, where it is (code-point offsets, end
/// exclusive, as Python slices), and how sure the detector is.
public struct PIIFinding: Sendable, Hashable {
    public var type: PIIType
    public var start: Int
    public var end: Int
    public var score: Double

    public init(type: PIIType, start: Int, end: Int, score: Double) {
        self.type = type
        self.start = start
        self.end = end
        self.score = score
    }
}

/// A detector of one kind of PII over code points.
protocol PIIDetector: Sendable {
    var type: PIIType { get }
    func scan(_ text: ScalarText, into findings: inout [PIIFinding])
}

/// Runs the detectors for a set of types and resolves overlaps (the more specific type wins).
public struct PIIScanner: Sendable {
    private let detectors: [any PIIDetector]

    public init(types: Set<PIIType> = Set(PIIType.allCases)) {
        let all: [any PIIDetector] = [
            SecretDetector(), CreditCardDetector(), IBANDetector(), SSNDetector(), EmailDetector(), IPAddressDetector(),
            PhoneDetector(), DateOfBirthDetector(), StreetAddressDetector(), PersonDetector(),
        ]
        detectors = all.filter { types.contains($0.type) }
    }

    /// Findings in `text`, ordered by start, never overlapping. `entities` (the entity tagger's
    /// names, addresses and dates) give way to the structured findings inside them — a phone
    /// number on an address's last line stays a phone number — but keep the rest of their text
    /// rather than being dropped, so that nothing they cover leaves unredacted; against the
    /// cue-based findings they compete by the usual rules.
    public func scan(_ text: ScalarText, entities: [PIIFinding] = []) -> [PIIFinding] {
        var raw: [PIIFinding] = []
        for detector in detectors { detector.scan(text, into: &raw) }
        guard !entities.isEmpty else { return Self.resolveOverlaps(raw) }
        let structured = raw.filter { $0.type.precedence < PIIType.dateOfBirth.precedence }.sorted { $0.start < $1.start }
        for entity in entities { raw += Self.subtract(structured, from: entity, text: text) }
        return Self.resolveOverlaps(raw)
    }

    /// What is left of `entity` around `findings`: the uncovered stretches, trimmed of spaces and
    /// punctuation, that still hold a letter or digit.
    static func subtract(_ findings: [PIIFinding], from entity: PIIFinding, text: ScalarText) -> [PIIFinding] {
        var pieces: [PIIFinding] = []
        var start = entity.start
        func close(_ end: Int) {
            var a = start
            var b = end
            func isContent(_ i: Int) -> Bool {
                guard let c = Unicode.Scalar(text[i]) else { return false }
                return c.properties.isAlphabetic || c.properties.numericType != nil
            }
            while a < b && !isContent(a) { a += 1 }
            while b > a && !isContent(b - 1) { b -= 1 }
            if a < b { pieces.append(PIIFinding(type: entity.type, start: a, end: b, score: entity.score)) }
        }
        for f in findings where f.start < entity.end && f.end > entity.start {
            close(max(start, f.start))
            start = max(start, f.end)
        }
        close(entity.end)
        return pieces
    }

    /// Keeps the better of overlapping findings: the type of higher precedence, then the longer.
    static func resolveOverlaps(_ findings: [PIIFinding]) -> [PIIFinding] {
        guard findings.count > 1 else { return findings }
        let ranked = findings.sorted {
            ($0.type.precedence, $1.end - $1.start, $0.start) < ($1.type.precedence, $0.end - $0.start, $1.start)
        }
        var kept: [PIIFinding] = []
        for f in ranked where !kept.contains(where: { $0.start < f.end && f.start < $0.end }) {
            kept.append(f)
        }
        return kept.sorted { $0.start < $1.start }
    }
}
