import SluiceCore
import Synchronization

/// One thing a check found: which check, what type, where (code-point offsets into the text it
/// checked), how sure, and what the policy does with it. Never the matched value itself.
public struct GuardrailFinding: Sendable, Hashable {
    /// `pii`, `injection`, `ban_list`, `topics`, `leakage`, `schema`.
    public var check: String
    /// `EMAIL`, `CREDIT_CARD`, …, `PROMPT_INJECTION`, `BANNED_TERM`, `DENIED_TOPIC`, `SYSTEM_PROMPT_LEAK`.
    public var type: String
    public var start: Int
    public var end: Int
    public var score: Double
    public var action: GuardrailAction

    public init(check: String, type: String, start: Int, end: Int, score: Double, action: GuardrailAction = .allow) {
        self.check = check
        self.type = type
        self.start = start
        self.end = end
        self.score = score
        self.action = action
    }
}

/// The placeholders of one request: the same value gets the same `[TYPE_n]` wherever it occurs,
/// and anonymised values can be put back into the answer. Lives only as long as the request.
public final class PlaceholderBook: Sendable {
    struct Found: Hashable {
        let type: String
        let value: String
    }

    struct State {
        var counters: [String: Int] = [:]
        var placeholders: [Found: String] = [:]  // placeholder of each value found
        var originals: [String: String] = [:]  // placeholder → value, for anonymised ones
    }

    private let state = Mutex(State())

    public init() {}

    /// The placeholder of `value`; `restorable` ones are put back by `restore`.
    public func placeholder(type: String, value: String, restorable: Bool) -> String {
        state.withLock { s in
            let key = Found(type: type, value: value)
            let placeholder: String
            if let known = s.placeholders[key] {
                placeholder = known
            } else {
                let n = (s.counters[type] ?? 0) + 1
                s.counters[type] = n
                placeholder = "[\(type)_\(n)]"
                s.placeholders[key] = placeholder
            }
            if restorable { s.originals[placeholder] = value }
            return placeholder
        }
    }

    /// Whether any value can be restored (so answers need scanning for placeholders).
    public var hasRestorable: Bool { state.withLock { !$0.originals.isEmpty } }

    /// `text` with every anonymised placeholder replaced by its original value.
    public func restore(_ text: String) -> String {
        let originals = state.withLock { $0.originals }
        guard !originals.isEmpty, text.contains("[") else { return text }
        var out = ""
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "[") {
            out += rest[..<open]
            if let close = rest[open...].firstIndex(of: "]"), rest.distance(from: open, to: close) < 40,
                let value = originals[String(rest[open...close])]
            {
                out += value
                rest = rest[rest.index(after: close)...]
            } else {
                out += "["
                rest = rest[rest.index(after: open)...]
            }
        }
        return out + rest
    }
}

/// Applies findings' actions to a text: placeholders for `redact` and `anonymize`, stars for `mask`.
enum TextRewriter {
    static func rewrite(_ text: ScalarText, range: Range<Int>? = nil, findings: [GuardrailFinding], book: PlaceholderBook) -> String {
        let range = range ?? 0..<text.count
        var out: [UInt8] = []
        out.reserveCapacity(range.count + 16)
        var i = range.lowerBound
        var changing = findings.filter { f in
            switch f.action {
            case .redact, .anonymize, .mask: f.start >= range.lowerBound && f.end <= range.upperBound
            default: false
            }
        }
        changing.sort { $0.start < $1.start }
        for f in changing where f.start >= i {
            text.appendUTF8(i, f.start, to: &out)
            let value = text.slice(f.start, f.end)
            switch f.action {
            case .mask: out.append(contentsOf: mask(value, type: f.type).utf8)
            default: out.append(contentsOf: book.placeholder(type: f.type, value: value, restorable: f.action == .anonymize).utf8)
            }
            i = f.end
        }
        text.appendUTF8(i, range.upperBound, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Letters and digits become `*`; card, account and phone numbers keep their last four digits,
    /// e-mail addresses their first letter and domain.
    static func mask(_ value: String, type: String) -> String {
        let scalars = Array(value.unicodeScalars)
        var keepFrom = scalars.count
        var keepUntil = 0
        switch type {
        case "CREDIT_CARD", "IBAN", "PHONE", "US_SSN":
            var seen = 0
            for (k, s) in scalars.enumerated().reversed() where s.properties.isAlphabetic || ("0"..."9").contains(s) {
                seen += 1
                if seen == 4 { keepFrom = k; break }
            }
        case "EMAIL":
            keepUntil = 1
            keepFrom = scalars.firstIndex(of: "@") ?? scalars.count
        default:
            break
        }
        var out = String.UnicodeScalarView()
        for (k, s) in scalars.enumerated() {
            let hide = k >= keepUntil && k < keepFrom && (s.properties.isAlphabetic || ("0"..."9").contains(s))
            out.append(hide ? "*" : s)
        }
        return String(out)
    }
}
