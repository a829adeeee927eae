import Foundation

/// API keys and secrets: known formats (AWS, GitHub, OpenAI/Anthropic-style `sk-`, Stripe,
/// Slack, Google, JWT, PEM private-key blocks) and high-entropy values after `key=`,
/// `token:`, `password=` and the like.
struct SecretDetector: PIIDetector {
    var type: PIIType { .secret }

    /// Characters a token may contain.
    static func isTokenChar(_ c: UInt32) -> Bool {
        Scalar.isASCIIAlnum(c) || c == 95 || c == 45 || c == 43 || c == 47 || c == 46
    }

    static let awsPrefixes = ["AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA"]
    static let githubPrefixes = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]
    static let keyWords = ["key", "apikey", "token", "secret", "password", "passwd", "pwd", "credential", "credentials", "auth"]

    /// `keyWords` as code points, for matching without building a `String` per `:` or `=`
    /// (a JSON body has one per member).
    private static let keyWordScalars: [[UInt32]] = keyWords.map { $0.unicodeScalars.map(\.value) }

    /// The key word an assignment's name (the ASCII identifier `s[start..<end]`) ends in: the
    /// whole name, after `_`, `-` or `.`, or at the end of a short compound (`apitoken`).
    static func keyWord(named s: [UInt32], _ start: Int, _ end: Int) -> String? {
        let length = end - start
        guard length > 0 else { return nil }
        for (n, word) in keyWordScalars.enumerated() where word.count <= length {
            var matches = true
            for j in 1...word.count where Scalar.lower(s[end - j]) != word[word.count - j] {
                matches = false
                break
            }
            guard matches else { continue }
            if length == word.count { return keyWords[n] }
            let before = s[end - word.count - 1]
            if before == 95 || before == 45 || before == 46 || (word.count >= 5 && length <= word.count + 6) { return keyWords[n] }
        }
        return nil
    }

    func scan(_ text: ScalarText, into findings: inout [PIIFinding]) {
        let s = text.scalars
        scanPEM(text, into: &findings)
        var i = 0
        while i < s.count {
            guard Self.isTokenChar(s[i]), i == 0 || !Self.isTokenChar(s[i - 1]) else { i += 1; continue }
            var j = i
            while j < s.count && Self.isTokenChar(s[j]) { j += 1 }
            // Trailing dots end sentences, not tokens.
            var end = j
            while end > i && s[end - 1] == 46 { end -= 1 }
            if let span = knownFormat(text, start: i, end: end) {
                findings.append(PIIFinding(type: .secret, start: span.0, end: span.1, score: 0.99))
            }
            i = j
        }
        scanAssignments(text, into: &findings)
    }

    /// A token in a known secret format, as (start, end).
    func knownFormat(_ text: ScalarText, start i: Int, end: Int) -> (Int, Int)? {
        let s = text.scalars
        let n = end - i
        // Every known format is at least 15 characters and starts with one of these letters;
        // most words are shorter, so this skips them before any comparison.
        guard n >= 15 else { return nil }
        switch s[i] {
        case 65, 103, 115, 114, 120, 101: break  // A g s r x e
        default: return nil
        }
        func run(from k: Int, while pred: (UInt32) -> Bool) -> Int {
            var m = k
            while m < end && pred(s[m]) { m += 1 }
            return m - k
        }
        let alnum: (UInt32) -> Bool = Scalar.isASCIIAlnum
        let urlSafe: (UInt32) -> Bool = { Scalar.isASCIIAlnum($0) || $0 == 95 || $0 == 45 }
        if n >= 20, Self.awsPrefixes.contains(where: { text.matchesExactly($0, at: i) }),
            run(from: i + 4, while: { Scalar.isUpperASCII($0) || Scalar.isDigit($0) }) >= 16
        {
            return (i, i + 20)
        }
        if n >= 40, Self.githubPrefixes.contains(where: { text.matchesExactly($0, at: i) }), run(from: i + 4, while: alnum) >= 36 {
            return (i, i + 4 + run(from: i + 4, while: alnum))
        }
        if text.matchesExactly("github_pat_", at: i), run(from: i + 11, while: urlSafe) >= 22 { return (i, i + 11 + run(from: i + 11, while: urlSafe)) }
        if text.matchesExactly("sk-", at: i) {
            let len = run(from: i + 3, while: urlSafe)
            if len >= 20, Self.mixed(s[(i + 3)..<(i + 3 + len)]) { return (i, i + 3 + len) }
        }
        for prefix in ["sk_live_", "sk_test_", "rk_live_", "rk_test_"] where text.matchesExactly(prefix, at: i) {
            if run(from: i + 8, while: alnum) >= 16 { return (i, i + 8 + run(from: i + 8, while: alnum)) }
        }
        if text.matchesExactly("xox", at: i), n > 5, [98, 97, 112, 114, 115, 101].contains(s[i + 3]), s[i + 4] == 45 {
            let len = run(from: i + 5, while: { Scalar.isASCIIAlnum($0) || $0 == 45 })
            if len >= 10 { return (i, i + 5 + len) }
        }
        if text.matchesExactly("AIza", at: i), run(from: i + 4, while: urlSafe) >= 35 { return (i, i + 39) }
        if text.matchesExactly("eyJ", at: i) {
            // header.payload.signature, each base64url.
            var k = i
            var parts = 0
            while parts < 3 {
                let len = run(from: k, while: urlSafe)
                guard len >= 8 else { break }
                parts += 1
                k += len
                if parts < 3 { guard k < end, s[k] == 46 else { break }; k += 1 }
            }
            if parts == 3 { return (i, k) }
        }
        return nil
    }

    /// Letters and digits both: generated keys have them, words do not.
    static func mixed(_ chars: ArraySlice<UInt32>) -> Bool {
        chars.contains(where: Scalar.isDigit) && chars.contains(where: Scalar.isASCIILetter)
    }

    /// Bits per character of the value's character distribution.
    static func entropy(_ chars: ArraySlice<UInt32>) -> Double {
        var counts: [UInt32: Int] = [:]
        for c in chars { counts[c, default: 0] += 1 }
        let n = Double(chars.count)
        return counts.values.reduce(0) { acc, k in
            let p = Double(k) / n
            return acc - p * log2(p)
        }
    }

    /// `-----BEGIN … PRIVATE KEY-----` to its END line (or the end of the text).
    func scanPEM(_ text: ScalarText, into findings: inout [PIIFinding]) {
        let s = text.scalars
        var i = 0
        while i + 11 < s.count {
            guard s[i] == 45, text.matchesExactly("-----BEGIN ", at: i) else { i += 1; continue }
            var j = i + 11
            while j < s.count && s[j] != 10 && s[j] != 45 { j += 1 }
            let label = text.slice(i + 11, j)
            guard label.hasSuffix("PRIVATE KEY") || label.hasSuffix("PRIVATE KEY BLOCK") else { i = j; continue }
            var end = s.count
            var k = j
            while k + 9 < s.count {
                if s[k] == 45, text.matchesExactly("-----END ", at: k) {
                    var m = k + 9
                    while m < s.count && s[m] != 45 { m += 1 }
                    while m < s.count && s[m] == 45 { m += 1 }
                    end = m
                    break
                }
                k += 1
            }
            findings.append(PIIFinding(type: .secret, start: i, end: end, score: 0.99))
            i = end
        }
    }

    /// `api_key = "…"`, `token: …`, `password=…`: the value, when it looks generated (or is a password).
    func scanAssignments(_ text: ScalarText, into findings: inout [PIIFinding]) {
        let s = text.scalars
        var i = 0
        while i < s.count {
            guard s[i] == 61 || s[i] == 58 else { i += 1; continue }
            // The identifier before the operator (spaces and a closing quote allowed).
            var k = i
            while k > 0 && (s[k - 1] == 32 || s[k - 1] == 34 || s[k - 1] == 39) { k -= 1 }
            let nameEnd = k
            while k > 0 && (Scalar.isASCIIAlnum(s[k - 1]) || s[k - 1] == 95 || s[k - 1] == 45 || s[k - 1] == 46) { k -= 1 }
            guard let word = Self.keyWord(named: s, k, nameEnd) else {
                i += 1
                continue
            }
            // The value after it.
            var v = i + 1
            while v < s.count && (s[v] == 32 || s[v] == 34 || s[v] == 39) { v += 1 }
            var e = v
            let isPassword = word.hasPrefix("pass") || word == "pwd"
            while e < s.count && (isPassword ? !(Scalar.isSpace(s[e]) || s[e] == 34 || s[e] == 39 || s[e] == 44 || s[e] == 59) : Self.isTokenChar(s[e])) { e += 1 }
            while e > v && (s[e - 1] == 46 || s[e - 1] == 44) { e -= 1 }
            let value = s[v..<e]
            let looksGenerated = value.count >= 16 && Self.entropy(value) >= 3.2 && Self.mixed(value)
            let looksPassword = isPassword && value.count >= 6 && value.contains(where: { !Scalar.isASCIILetter($0) })
            if looksGenerated || looksPassword {
                findings.append(PIIFinding(type: .secret, start: v, end: e, score: looksGenerated ? 0.9 : 0.8))
                i = e
            } else {
                i += 1
            }
        }
    }
}

extension ScalarText {
    /// Whether the text from `i` is exactly `word` (case-sensitive ASCII).
    func matchesExactly(_ word: String, at i: Int) -> Bool {
        var j = i
        for u in word.utf8 {
            guard j < scalars.count, scalars[j] == UInt32(u) else { return false }
            j += 1
        }
        return true
    }
}
