/// Precision, recall and F1 of a detector against labelled data.
public struct DetectionScore: Sendable, Hashable {
    public var truePositives = 0
    public var falsePositives = 0
    public var falseNegatives = 0

    public init() {}

    public var precision: Double { Self.ratio(truePositives, truePositives + falsePositives) }
    public var recall: Double { Self.ratio(truePositives, truePositives + falseNegatives) }
    public var f1: Double { precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall) }

    static func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
}

/// A labelled PII example: text and the spans of personal data in it (code-point offsets).
public struct LabelledPIIText: Sendable {
    public struct Span: Sendable, Hashable {
        public var type: PIIType
        public var start: Int
        public var end: Int
        public init(type: PIIType, start: Int, end: Int) {
            self.type = type
            self.start = start
            self.end = end
        }
    }

    public var text: String
    public var spans: [Span]
    /// Where the row comes from (its `source` field), for figures per source.
    public var source: String

    public init(text: String, spans: [Span], source: String = "") {
        self.text = text
        self.spans = spans
        self.source = source
    }
}

/// Scores PII findings against labels: a finding is correct when it has the labelled type and
/// overlaps the labelled span by at least half of the shorter of the two.
public enum PIIEvaluation {
    /// The development set's type names for the types Sluice finds. `DATE_TIME` labels any
    /// date: a DATE_OF_BIRTH finding (the cue-based detector's) is scored as one.
    public static let datasetTypes: [String: PIIType] = [
        "EMAIL_ADDRESS": .email, "PHONE_NUMBER": .phone, "CREDIT_CARD": .creditCard, "US_SSN": .usSSN, "IBAN_CODE": .iban,
        "IP_ADDRESS": .ipAddress, "PERSON": .person, "ADDRESS": .streetAddress, "DATE_TIME": .dateTime,
    ]

    /// Scores per type over all examples; `entities[i]` are the entity tagger's findings in
    /// example i, when it is on.
    public static func evaluate(_ examples: [LabelledPIIText], scanner: PIIScanner, entities: [[PIIFinding]]? = nil) -> [PIIType: DetectionScore] {
        var scores: [PIIType: DetectionScore] = [:]
        for (i, example) in examples.enumerated() {
            let findings = scanner.scan(ScalarText(example.text), entities: entities?[i] ?? []).map { f -> PIIFinding in
                var f = f
                if f.type == .dateOfBirth { f.type = .dateTime }
                return f
            }
            var used = Set<Int>()
            for f in findings {
                if let k = example.spans.indices.first(where: { !used.contains($0) && matches(f, example.spans[$0]) }) {
                    used.insert(k)
                    scores[f.type, default: .init()].truePositives += 1
                } else {
                    scores[f.type, default: .init()].falsePositives += 1
                }
            }
            for (k, span) in example.spans.enumerated() where !used.contains(k) {
                scores[span.type, default: .init()].falseNegatives += 1
            }
        }
        return scores
    }

    static func matches(_ f: PIIFinding, _ span: LabelledPIIText.Span) -> Bool {
        guard f.type == span.type else { return false }
        let overlap = min(f.end, span.end) - max(f.start, span.start)
        let shorter = min(f.end - f.start, span.end - span.start)
        return overlap > 0 && Double(overlap) * 2 >= Double(shorter)
    }
}
