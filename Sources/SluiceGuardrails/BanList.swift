import Foundation
import SluiceCore

/// Banned words and phrases, matched as whole words whatever their case or disguise (look-alike
/// letters, zero-width characters, leetspeak, full-width forms), and banned regular expressions.
public struct BanList: Sendable {
    struct Phrase: Sendable {
        var scalars: [UInt32]
    }

    private let byFirst: [UInt32: [Phrase]]
    private let patterns: [PatternBox]

    public init(words: [String], patterns: [String]) throws {
        var byFirst: [UInt32: [Phrase]] = [:]
        for word in words {
            let folded = Self.fold(ScalarText(word.trimmingCharacters(in: .whitespacesAndNewlines)), leet: false).scalars
            // Runs of spaces in a phrase match runs of spaces in the text.
            var compact: [UInt32] = []
            for c in folded where !(c == 32 && compact.last == 32) { compact.append(c) }
            guard let first = compact.first else { continue }
            byFirst[first, default: []].append(Phrase(scalars: compact))
        }
        self.byFirst = byFirst
        self.patterns = try patterns.map { p in
            do { return PatternBox(try NSRegularExpression(pattern: p, options: [.caseInsensitive])) } catch {
                throw SluiceError(.invalidValue, "The ban-list pattern '\(p)' is not a valid regular expression.")
            }
        }
    }

    /// Folded text and, for each folded code point, its offset in the original.
    struct Folded {
        var scalars: [UInt32] = []
        var origin: [Int] = []
    }

    static func fold(_ text: ScalarText, leet: Bool) -> Folded {
        var out = Folded()
        out.scalars.reserveCapacity(text.count)
        out.origin.reserveCapacity(text.count)
        let s = text.scalars
        for (i, raw) in s.enumerated() {
            var c = raw
            if c < 128 {
                c = Scalar.lower(c)
            } else {
                if InjectionNormalizer.zeroWidth.contains(raw) { continue }
                if (0xFF01...0xFF5E).contains(c) { c -= 0xFEE0 }
                if let latin = InjectionNormalizer.homoglyphs[c] { c = latin }
                if c < 128 {
                    c = Scalar.lower(c)
                } else if let u = Unicode.Scalar(c), u.properties.isUppercase, let l = u.properties.lowercaseMapping.unicodeScalars.first {
                    c = l.value
                }
            }
            if leet, InjectionNormalizer.isLeet(c), let letter = InjectionNormalizer.leet[c] {
                let neighbourIsLetter = (i > 0 && Scalar.isLetter(s[i - 1])) || (i + 1 < s.count && Scalar.isLetter(s[i + 1]))
                if neighbourIsLetter { c = letter }
            }
            if Scalar.isSpace(c) { c = 32 }
            out.scalars.append(c)
            out.origin.append(i)
        }
        return out
    }

    /// Where banned words, phrases and patterns occur (code-point offsets).
    public func scan(_ text: ScalarText) -> [GuardrailFinding] {
        var findings: [GuardrailFinding] = []
        if !byFirst.isEmpty {
            let folded = Self.fold(text, leet: true)
            let f = folded.scalars
            var i = 0
            while i < f.count {
                guard i == 0 || !Scalar.isWordChar(f[i - 1]), let candidates = byFirst[f[i]] else { i += 1; continue }
                var matchedEnd: Int?
                for phrase in candidates {
                    if let end = Self.match(phrase.scalars, in: f, at: i), end == f.count || !Scalar.isWordChar(f[end]) || !Scalar.isWordChar(f[end - 1]) {
                        matchedEnd = max(matchedEnd ?? 0, end)
                    }
                }
                if let end = matchedEnd {
                    findings.append(GuardrailFinding(check: "ban_list", type: "BANNED_TERM", start: folded.origin[i], end: folded.origin[end - 1] + 1, score: 1))
                    i = end
                } else {
                    i += 1
                }
            }
        }
        if !patterns.isEmpty {
            let string = text.slice(0, text.count)
            let ns = string as NSString
            var utf16ToScalar: [Int]?
            for p in patterns {
                for m in p.regex.matches(in: string, range: NSRange(location: 0, length: ns.length)) where m.range.length > 0 {
                    if utf16ToScalar == nil { utf16ToScalar = Self.utf16Offsets(string) }
                    let map = utf16ToScalar!
                    findings.append(GuardrailFinding(check: "ban_list", type: "BANNED_PATTERN", start: map[m.range.location], end: map[m.range.location + m.range.length], score: 1))
                }
            }
        }
        return findings
    }

    /// The end of `phrase` matched at `i` (a space in the phrase matches a run of spaces), or nil.
    static func match(_ phrase: [UInt32], in f: [UInt32], at i: Int) -> Int? {
        var j = i
        for c in phrase {
            guard j < f.count else { return nil }
            if c == 32 {
                guard f[j] == 32 else { return nil }
                while j < f.count && f[j] == 32 { j += 1 }
            } else {
                guard f[j] == c else { return nil }
                j += 1
            }
        }
        return j
    }

    /// For each UTF-16 offset of `s` (and its end), the code-point offset.
    static func utf16Offsets(_ s: String) -> [Int] {
        var map: [Int] = []
        map.reserveCapacity(s.utf16.count + 1)
        for (k, u) in s.unicodeScalars.enumerated() {
            map.append(k)
            if u.value > 0xFFFF { map.append(k) }
        }
        map.append(s.unicodeScalars.count)
        return map
    }
}

/// The answer repeating the system prompt: runs of at least `minWords` words the two share.
public struct LeakageCheck: Sendable {
    public let minWords: Int

    public init(minWords: Int) { self.minWords = max(3, minWords) }

    /// Word spans (start, end offsets) of lower-cased words.
    static func words(_ text: ScalarText) -> [(hash: Int, start: Int, end: Int)] {
        var out: [(Int, Int, Int)] = []
        let s = text.scalars
        var i = 0
        while i < s.count {
            guard Scalar.isWordChar(s[i]) else { i += 1; continue }
            var h = Hasher()
            let b = i
            while i < s.count && Scalar.isWordChar(s[i]) { h.combine(Scalar.lower(s[i])); i += 1 }
            out.append((h.finalize(), b, i))
        }
        return out
    }

    /// The k-grams of the system prompt, to look the answer's up in.
    public func fingerprint(of systemPrompt: String) -> Set<Int> {
        let w = Self.words(ScalarText(systemPrompt))
        guard w.count >= minWords else { return [] }
        var grams = Set<Int>()
        for k in 0...(w.count - minWords) {
            var h = Hasher()
            for j in k..<(k + minWords) { h.combine(w[j].hash) }
            grams.insert(h.finalize())
        }
        return grams
    }

    /// Spans of `text` that repeat the fingerprinted prompt.
    public func scan(_ text: ScalarText, fingerprint: Set<Int>) -> [GuardrailFinding] {
        guard !fingerprint.isEmpty else { return [] }
        let w = Self.words(text)
        guard w.count >= minWords else { return [] }
        var findings: [GuardrailFinding] = []
        for k in 0...(w.count - minWords) {
            var h = Hasher()
            for j in k..<(k + minWords) { h.combine(w[j].hash) }
            guard fingerprint.contains(h.finalize()) else { continue }
            let start = w[k].start
            let end = w[k + minWords - 1].end
            if let last = findings.last, last.end >= start {
                findings[findings.count - 1].end = end
            } else {
                findings.append(GuardrailFinding(check: "leakage", type: "SYSTEM_PROMPT_LEAK", start: start, end: end, score: 1))
            }
        }
        return findings
    }
}
