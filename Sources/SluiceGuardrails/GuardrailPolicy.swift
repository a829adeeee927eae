import SluiceCore

/// Which way a text is going: from the client to the model, or back.
public enum GuardrailDirection: String, Sendable, Hashable, CaseIterable {
    case input, output
}

/// What the checks of one direction made of one text.
public struct TextCheckOutcome: Sendable {
    /// Everything found, whatever its action, in text order.
    public var findings: [GuardrailFinding]
    /// The injection score, when it was computed.
    public var injection: InjectionAssessment?
    /// The first finding whose action is `block`.
    public var blockedBy: GuardrailFinding?
    /// The text with redactions, masks and placeholders applied.
    public var text: String
}

/// A named policy compiled for use: detectors built, patterns compiled, actions resolved. A class:
/// it is large and shared, and stages and streams that hold it keep a reference, not a copy.
public final class GuardrailPolicy: Sendable {
    /// The compiled checks of one direction.
    struct Checks: Sendable {
        var config: GuardrailChecksConfig
        var pii: (scanner: PIIScanner, actions: [PIIType: GuardrailAction], minScore: Double)?
        var banList: BanList?
        var leakage: LeakageCheck?
    }

    public let name: String
    public let config: GuardrailPolicyConfig
    let input: Checks
    let output: Checks
    private let scorer: InjectionScorer?

    public init(name: String, config: GuardrailPolicyConfig) throws {
        self.name = name
        self.config = config
        self.input = try Self.compile(config.input)
        self.output = try Self.compile(config.output)
        self.scorer = config.input.injection != nil || config.output.injection != nil ? InjectionScorer() : nil
    }

    static func compile(_ c: GuardrailChecksConfig) throws -> Checks {
        var checks = Checks(config: c)
        if let pii = c.pii {
            var actions: [PIIType: GuardrailAction] = [:]
            for type in PIIType.allCases { actions[type] = pii.types[type.rawValue] ?? pii.action }
            checks.pii = (PIIScanner(), actions, pii.minScore)
        }
        if let ban = c.banList, !(ban.words.isEmpty && ban.patterns.isEmpty) {
            checks.banList = try BanList(words: ban.words, patterns: ban.patterns)
        }
        if let leak = c.leakage { checks.leakage = LeakageCheck(minWords: leak.minWords) }
        return checks
    }

    func checks(_ direction: GuardrailDirection) -> Checks { direction == .input ? input : output }

    /// How many code points a stream keeps unsent: enough for the longest bounded PII or secret
    /// pattern (64), or for a leaked run of `min_words` words (16 code points a word, generously),
    /// so that a leak is found before its first words leave.
    public var streamHoldBack: Int { max(64, (output.leakage?.minWords ?? 0) * 16) }

    /// The checks' configuration for one direction.
    public func configuration(_ direction: GuardrailDirection) -> GuardrailChecksConfig { checks(direction).config }

    /// Whether any check would look at text going `direction` (topics aside).
    public func checksText(_ direction: GuardrailDirection) -> Bool {
        let c = checks(direction)
        return c.pii != nil || c.banList != nil || c.leakage != nil || c.config.injection != nil
    }

    /// The findings of the span checks (PII, ban list, leakage) in `text`, actions attached.
    func spanFindings(_ text: ScalarText, direction: GuardrailDirection, leakFingerprint: Set<Int>?, entities: [PIIFinding] = []) -> [GuardrailFinding] {
        let c = checks(direction)
        var findings: [GuardrailFinding] = []
        if let pii = c.pii {
            for f in pii.scanner.scan(text, entities: entities) where f.score >= pii.minScore {
                findings.append(GuardrailFinding(check: "pii", type: f.type.rawValue, start: f.start, end: f.end, score: f.score, action: pii.actions[f.type] ?? .redact))
            }
        }
        if let ban = c.banList, let action = c.config.banList?.action {
            for var f in ban.scan(text) {
                f.action = action
                findings.append(f)
            }
        }
        if let leak = c.leakage, let fingerprint = leakFingerprint, let action = c.config.leakage?.action {
            for var f in leak.scan(text, fingerprint: fingerprint) {
                f.action = action
                findings.append(f)
            }
        }
        // Where two checks claim overlapping text, the first (by start) is rewritten; both are reported.
        findings.sort { ($0.start, $1.end) < ($1.start, $0.end) }
        return findings
    }

    /// Runs the checks of `direction` on one text: span checks, and the injection score when
    /// `scoreInjection` (user and tool text, not the trusted system prompt). `entities` are the
    /// entity tagger's findings in this text, judged with the PII detectors' own. JSON text
    /// (`json`, as tool-call arguments are, or a JSON object or array, as tools' results and
    /// structured answers are) is scanned with its escapes read as the separators they stand for,
    /// and a rewrite keeps them whole; its injection score is that of its strings, escapes decoded.
    @inline(never)  // called from async stages: its locals stay on the thread's stack, not in their task frames
    public func check(
        _ text: String, direction: GuardrailDirection, book: PlaceholderBook, scoreInjection: Bool = true, leakFingerprint: Set<Int>? = nil,
        entities: [PIIFinding] = [], json: Bool = false
    ) -> TextCheckOutcome {
        let scalars = ScalarText(text)
        let isJSON = json || JSONText.isJSON(text)
        let scanned = isJSON ? scalars.blankingJSONEscapes() : scalars
        var findings = spanFindings(scanned, direction: direction, leakFingerprint: leakFingerprint, entities: entities)
        var assessment: InjectionAssessment?
        if scoreInjection, let injection = checks(direction).config.injection, let scorer {
            let a = scorer.assess(isJSON ? JSONText.strings(text) ?? text : text)
            assessment = a
            if a.score >= injection.threshold {
                findings.append(GuardrailFinding(check: "injection", type: "PROMPT_INJECTION", start: 0, end: scalars.count, score: a.score, action: injection.action))
            }
        }
        let blockedBy = findings.first { $0.action == .block }
        let rewritten = blockedBy == nil ? Self.rewriteNonOverlapping(scalars, findings, book: book) : text
        return TextCheckOutcome(findings: findings, injection: assessment, blockedBy: blockedBy, text: rewritten)
    }

    static func rewriteNonOverlapping(_ text: ScalarText, _ findings: [GuardrailFinding], book: PlaceholderBook) -> String {
        var kept: [GuardrailFinding] = []
        for f in findings where f.check != "injection" && f.check != "topics" {
            if let last = kept.last, f.start < last.end { continue }
            kept.append(f)
        }
        guard kept.contains(where: { $0.action != .allow && $0.action != .block }) else { return text.slice(0, text.count) }
        return TextRewriter.rewrite(text, findings: kept, book: book)
    }
}

/// The output checks applied to a streamed answer as it arrives: text is held back only as far
/// as the longest bounded pattern needs (and never split inside a token), redactions are made
/// before anything leaves, and a block ends the stream.
public struct StreamTextGuard: Sendable {
    let policy: GuardrailPolicy
    let book: PlaceholderBook
    let fingerprint: Set<Int>?
    /// Code points kept unsent at the end of what has arrived.
    let holdBack: Int
    /// Already sent text kept for context cues ("my name is", "call").
    let contextLength = 64

    private var context: [UInt32] = []
    private var pending: [UInt32] = []
    private var sentLength = 0
    /// Findings so far, offsets into the whole answer.
    public private(set) var findings: [GuardrailFinding] = []

    /// Whether the text is JSON (tool-call arguments, or an answer that opens with `{` or `[`,
    /// which is all its first piece can tell):
    /// scanned with its escapes blanked, as `GuardrailPolicy.check` does. Sending stops only at
    /// spaces, so an escape is never split between what is sent and what is held.
    private var json: Bool
    /// Whether the first code point other than white space has arrived (and `json` is settled).
    private var started = false

    public init(policy: GuardrailPolicy, book: PlaceholderBook, leakFingerprint: Set<Int>?, holdBack: Int? = nil, json: Bool = false) {
        self.policy = policy
        self.book = book
        self.fingerprint = leakFingerprint
        self.holdBack = holdBack ?? policy.streamHoldBack
        self.json = json
    }

    /// Takes the next piece of the answer; returns what may be sent now (checked and rewritten).
    @inline(never)
    public mutating func feed(_ delta: String) throws -> String {
        pending.append(contentsOf: delta.unicodeScalars.map(\.value))
        if !started, let first = pending.first(where: { !Scalar.isSpace($0) }) {
            started = true
            json = json || JSONText.opens(with: first)
        }
        guard pending.count > holdBack else { return "" }
        return try release(final: false)
    }

    /// The answer is complete: returns the rest, checked.
    @inline(never)
    public mutating func finish() throws -> String {
        try release(final: true)
    }

    private mutating func release(final: Bool) throws -> String {
        let combined = ScalarText(scalars: context + pending)
        let offset = context.count
        let scanned = json ? combined.blankingJSONEscapes() : combined
        let found = policy.spanFindings(scanned, direction: .output, leakFingerprint: fingerprint).filter { $0.end > offset }
        // A blocking finding stops the stream as soon as it is seen, even while it may still grow.
        if var f = found.first(where: { $0.action == .block }) {
            f.start += sentLength - offset
            f.end += sentLength - offset
            findings.append(f)
            throw SluiceError(.guardrailBlocked, "The answer was stopped by guardrail '\(f.check)' (\(f.type)).")
        }
        var cut = final ? pending.count : pending.count - holdBack
        if !final {
            // Never split a token, never split a finding.
            while cut > 0 && !Scalar.isSpace(pending[cut - 1]) && !Scalar.isSpace(pending[cut]) { cut -= 1 }
            var moved = true
            while moved {
                moved = false
                for f in found where f.start - offset < cut && f.end - offset > cut {
                    cut = max(0, f.start - offset)
                    moved = true
                }
            }
        }
        let decided = found.filter { $0.start - offset >= 0 && $0.end - offset <= cut }
        for var f in decided {
            f.start += sentLength - offset
            f.end += sentLength - offset
            findings.append(f)
        }
        guard cut > 0 else { return "" }
        let text = TextRewriter.rewrite(combined, range: offset..<(offset + cut), findings: decided, book: book)
        let sent = pending[..<cut]
        context = Array((context + sent).suffix(contextLength))
        pending.removeFirst(cut)
        sentLength += cut
        return book.hasRestorable ? book.restore(text) : text
    }
}

extension ScalarText {
    init(scalars: [UInt32]) {
        self.init(unchecked: scalars)
    }
}
