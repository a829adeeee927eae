import Foundation

/// Undoes the usual disguises of an injection before it is scored: zero-width characters,
/// look-alike letters from other scripts, compatibility forms (full-width, mathematical
/// letters), leetspeak, letters spaced apart, and base64 or hex payloads.
struct InjectionNormalizer: Sendable {
    /// The text to score, and the disguises that were removed from it.
    struct Result {
        var words: [String]
        /// Lower-cased, folded text (for delimiter patterns).
        var flat: [UInt32]
        var obfuscations: Set<String>
        /// Texts decoded from base64 or hex tokens, scored as well.
        var decoded: [String]
    }

    static let zeroWidth: Set<UInt32> = [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x180E]

    /// Cyrillic and Greek letters that look like Latin ones.
    static let homoglyphs: [UInt32: UInt32] = {
        let pairs: [(String, String)] = [
            ("а", "a"), ("в", "b"), ("е", "e"), ("к", "k"), ("м", "m"), ("н", "h"), ("о", "o"), ("р", "p"), ("с", "c"), ("т", "t"),
            ("у", "y"), ("х", "x"), ("і", "i"), ("ј", "j"), ("ѕ", "s"), ("ԁ", "d"), ("ɡ", "g"), ("ո", "n"), ("α", "a"), ("ε", "e"),
            ("ι", "i"), ("κ", "k"), ("ν", "v"), ("ο", "o"), ("ρ", "p"), ("τ", "t"), ("υ", "u"), ("χ", "x"), ("ѵ", "v"), ("ԛ", "q"),
            ("ԝ", "w"), ("һ", "h"), ("ӏ", "l"),
        ]
        var map: [UInt32: UInt32] = [:]
        for (from, to) in pairs { map[from.unicodeScalars.first!.value] = to.unicodeScalars.first!.value }
        return map
    }()

    @inline(__always) static func isLeet(_ c: UInt32) -> Bool {
        c == 48 || c == 49 || c == 51 || c == 52 || c == 53 || c == 55 || c == 64 || c == 36 || c == 33 || c == 124
    }

    static let leet: [UInt32: UInt32] = [48: 111, 49: 105, 51: 101, 52: 97, 53: 115, 55: 116, 64: 97, 36: 115, 33: 105, 124: 108]

    func normalize(_ text: String) -> Result {
        var obfuscations: Set<String> = []
        // Compatibility forms first (full-width, 𝐛𝐨𝐥𝐝), then case.
        let ascii = text.utf8.allSatisfy { $0 < 128 }
        let folded = ascii ? text.lowercased() : text.precomposedStringWithCompatibilityMapping.lowercased()
        var flat: [UInt32] = []
        flat.reserveCapacity(folded.unicodeScalars.count)
        var sawLatin = false
        var sawLookalike = false
        var previousWasLetter = false
        for s in folded.unicodeScalars {
            let v = s.value
            if v < 128 {
                if Scalar.isASCIILetter(v) { sawLatin = true; previousWasLetter = true } else { previousWasLetter = false }
                flat.append(v)
                continue
            }
            if Self.zeroWidth.contains(v) {
                if previousWasLetter { obfuscations.insert("zero_width") }
                continue
            }
            if let latin = Self.homoglyphs[v] {
                sawLookalike = true
                flat.append(latin)
                previousWasLetter = true
                continue
            }
            if Scalar.isASCIILetter(v) { sawLatin = true }
            previousWasLetter = Scalar.isLetter(v)
            flat.append(v)
        }
        if sawLookalike && sawLatin { obfuscations.insert("homoglyph") }

        // Words: letters, digits and leet symbols; leet folded inside words that have letters.
        var words: [String] = []
        var current: [UInt32] = []
        func flush() {
            guard !current.isEmpty else { return }
            let hasLetter = current.contains(where: Scalar.isLetter)
            let hasLeet = current.contains(where: Self.isLeet)
            var word = current
            // Leetspeak counts only where undoing it yields a word the scorer knows ("1gn0r3" → "ignore", not "gpt4" → "gpta").
            if hasLetter && hasLeet && current.count > 2 {
                let folded = current.map { Self.leet[$0] ?? $0 }
                var text = String.UnicodeScalarView()
                for v in folded { if let u = Unicode.Scalar(v) { text.append(u) } }
                if InjectionScorer.vocabulary.contains(String(text)) {
                    word = folded
                    obfuscations.insert("leetspeak")
                }
            }
            var s = String.UnicodeScalarView()
            for v in word where Scalar.isLetter(v) || Scalar.isDigit(v) { s.append(Unicode.Scalar(v)!) }
            if !s.isEmpty { words.append(String(s)) }
            current.removeAll(keepingCapacity: true)
        }
        for (k, v) in flat.enumerated() {
            let isLeetSymbol = (v == 64 || v == 36 || v == 33 || v == 124) && k + 1 < flat.count && Scalar.isLetter(flat[k + 1])
            if Scalar.isLetter(v) || Scalar.isDigit(v) || isLeetSymbol || v == 39 {
                if v != 39 { current.append(v) }
            } else {
                flush()
            }
        }
        flush()

        // L e t t e r s spaced apart: four or more one-letter words in a row become one word.
        var joined: [String] = []
        var run: [String] = []
        func endRun() {
            if run.count >= 4 {
                joined.append(contentsOf: Self.splitJoined(run.joined()))
                obfuscations.insert("spacing")
            } else {
                joined.append(contentsOf: run)
            }
            run.removeAll()
        }
        for w in words {
            if w.unicodeScalars.count == 1 && Scalar.isLetter(w.unicodeScalars.first!.value) { run.append(w) } else { endRun(); joined.append(w) }
        }
        endRun()

        // Payloads hidden in base64 or hex.
        var decoded: [String] = []
        // Candidate tokens are found on bytes: base64 and hex alphabets are ASCII.
        let bytes = Array(text.utf8)
        var k = 0
        while k < bytes.count {
            let b = k
            while k < bytes.count && Self.isBase64Byte(bytes[k]) { k += 1 }
            if k - b >= 16 {
                let token = Substring(String(decoding: bytes[b..<k], as: UTF8.self))
                if let d = Self.decodeBase64(token) {
                    decoded.append(d)
                    obfuscations.insert("base64")
                } else if let d = Self.decodeHex(token) {
                    decoded.append(d)
                    obfuscations.insert("hex")
                }
            }
            k += 1
        }
        return Result(words: joined, flat: flat, obfuscations: obfuscations, decoded: decoded)
    }

    /// Letters run together by the spacing trick ("sayyouhatetrump") split back into known words
    /// where the scorer's vocabulary allows, else kept whole.
    static func splitJoined(_ text: String) -> [String] {
        // Greedy longest match against the scorer's vocabulary; unknown stretches stay as they are.
        let vocabulary = InjectionScorer.vocabulary
        let chars = Array(text)
        var out: [String] = []
        var i = 0
        var pending = ""
        while i < chars.count {
            var matched = 0
            for len in stride(from: min(14, chars.count - i), through: 2, by: -1) where vocabulary.contains(String(chars[i..<(i + len)])) {
                matched = len
                break
            }
            if matched > 0 {
                if !pending.isEmpty { out.append(pending); pending = "" }
                out.append(String(chars[i..<(i + matched)]))
                i += matched
            } else {
                pending.append(chars[i])
                i += 1
            }
        }
        if !pending.isEmpty { out.append(pending) }
        return out
    }

    static func isBase64Byte(_ b: UInt8) -> Bool {
        (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 43 || b == 47 || b == 61 || b == 45 || b == 95
    }

    /// Text from a base64 token, when it decodes to mostly printable words.
    static func decodeBase64(_ token: Substring) -> String? {
        guard token.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "/" || $0 == "=" || $0 == "-" || $0 == "_") }),
            token.contains(where: { $0.isUppercase }), token.contains(where: { $0.isLowercase })
        else { return nil }
        var b64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.utf8.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64) else { return nil }
        return printable(data)
    }

    /// Text from a hex token, when it decodes to mostly printable words.
    static func decodeHex(_ token: Substring) -> String? {
        guard token.utf8.count % 2 == 0, token.allSatisfy({ $0.isHexDigit }) else { return nil }
        var bytes: [UInt8] = []
        var it = token.utf8.makeIterator()
        while let a = it.next(), let b = it.next() {
            guard let hi = hexValue(a), let lo = hexValue(b) else { return nil }
            bytes.append(hi << 4 | lo)
        }
        return printable(Data(bytes))
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }

    static func printable(_ data: Data) -> String? {
        guard data.count >= 8, let s = String(data: data, encoding: .utf8) else { return nil }
        let letters = s.unicodeScalars.filter { $0.properties.isAlphabetic || $0 == " " }.count
        return Double(letters) >= 0.8 * Double(s.unicodeScalars.count) && s.contains(" ") ? s : nil
    }
}
