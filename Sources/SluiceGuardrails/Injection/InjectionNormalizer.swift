import Foundation

/// Words as ranges over one buffer of folded code points, each with its hash, so that the
/// scorer looks words up without building a `String` per word.
struct WordList {
    var store: [UInt32] = []
    var ranges: [Range<Int>] = []
    var hashes: [UInt64] = []

    var count: Int { ranges.count }

    mutating func append(_ word: some Collection<UInt32>) {
        let start = store.count
        store.append(contentsOf: word)
        ranges.append(start..<store.count)
        hashes.append(WordHash.of(store[start..<store.count]))
    }

    /// The word at `i` as a string (for tests and the rare re-splitting path).
    func string(_ i: Int) -> String {
        var s = String.UnicodeScalarView()
        for v in store[ranges[i]] { if let u = Unicode.Scalar(v) { s.append(u) } }
        return String(s)
    }

    var strings: [String] { (0..<count).map(string) }
}

/// FNV-1a over code points: a word's hash is built one code point at a time, so every prefix's
/// hash is on the way to the whole word's (the scorer's stems are matched that way).
enum WordHash {
    static let seed: UInt64 = 0xcbf2_9ce4_8422_2325
    @inline(__always) static func step(_ h: UInt64, _ c: UInt32) -> UInt64 { (h ^ UInt64(c)) &* 0x100_0000_01b3 }
    static func of(_ s: some Sequence<UInt32>) -> UInt64 { s.reduce(seed, step) }
    static func of(_ s: String) -> UInt64 { of(s.unicodeScalars.lazy.map(\.value)) }
}

/// A fixed open-addressing table from word hashes to small integers, built once: the keys are
/// already well-mixed hashes, so a lookup is a mask and a compare.
struct WordTable: Sendable {
    private var keys: [UInt64]
    private var values: [Int32]
    private let mask: Int

    init(_ entries: [UInt64: Int]) {
        var capacity = 16
        while capacity < entries.count * 4 { capacity *= 2 }
        mask = capacity - 1
        keys = Array(repeating: 0, count: capacity)
        values = Array(repeating: -1, count: capacity)
        for (key, value) in entries {
            var slot = Int(truncatingIfNeeded: key) & mask
            while values[slot] >= 0 { slot = (slot + 1) & mask }
            keys[slot] = key
            values[slot] = Int32(value)
        }
    }

    @inline(__always) func lookup(_ key: UInt64) -> Int? {
        var slot = Int(truncatingIfNeeded: key) & mask
        while values[slot] >= 0 {
            if keys[slot] == key { return Int(values[slot]) }
            slot = (slot + 1) & mask
        }
        return nil
    }
}

/// Undoes the usual disguises of an injection before it is scored: zero-width characters,
/// look-alike letters from other scripts, compatibility forms (full-width, mathematical
/// letters), leetspeak, letters spaced apart, and base64 or hex payloads.
struct InjectionNormalizer: Sendable {
    /// The text to score, and the disguises that were removed from it.
    struct Result {
        var words: WordList
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

    @inline(__always) static func isApostrophe(_ c: UInt32) -> Bool { c == 39 || c == 0x2019 }

    func normalize(_ text: String) -> Result {
        var obfuscations: Set<String> = []
        // Compatibility forms first (full-width, 𝐛𝐨𝐥𝐝), then case. ASCII text, the usual case,
        // is folded byte by byte.
        let ascii = text.utf8.allSatisfy { $0 < 128 }
        var flat: [UInt32] = []
        var sawLatin = false
        if ascii {
            flat.reserveCapacity(text.utf8.count)
            for b in text.utf8 {
                let v = Scalar.lower(UInt32(b))
                if !sawLatin && Scalar.isASCIILetter(v) { sawLatin = true }
                flat.append(v)
            }
        } else {
            let folded = text.precomposedStringWithCompatibilityMapping.lowercased()
            flat.reserveCapacity(folded.utf8.count)
            for s in folded.unicodeScalars {
                let v = s.value
                if v >= 128 && Self.zeroWidth.contains(v) {
                    if let last = flat.last, Scalar.isLetter(last) { obfuscations.insert("zero_width") }
                    continue
                }
                if !sawLatin && Scalar.isASCIILetter(v) { sawLatin = true }
                flat.append(v)
            }
        }

        // Words: letters, digits and leet symbols. Look-alike letters are mapped inside words
        // that could be Latin; leet is folded inside words that have letters.
        var words = WordList()
        words.store.reserveCapacity(flat.count)
        words.ranges.reserveCapacity(flat.count / 4 + 8)
        words.hashes.reserveCapacity(flat.count / 4 + 8)
        var current: [UInt32] = []
        var hasLetter = false
        var hasNonASCII = false
        var hasLeetSymbol = false
        var spaced: [UInt32] = []  // a run of one-letter words ("I g n o r e")
        func endSpacedRun() {
            guard !spaced.isEmpty else { return }
            if spaced.count >= 4 {
                var joined = String.UnicodeScalarView()
                for v in spaced { if let u = Unicode.Scalar(v) { joined.append(u) } }
                for part in Self.splitJoined(String(joined)) { words.append(part.unicodeScalars.map(\.value)) }
                obfuscations.insert("spacing")
            } else {
                for v in spaced { words.append(CollectionOfOne(v)) }
            }
            spaced.removeAll(keepingCapacity: true)
        }
        func flush() {
            defer {
                current.removeAll(keepingCapacity: true)
                hasLetter = false
                hasNonASCII = false
                hasLeetSymbol = false
            }
            guard !current.isEmpty else { return }
            // Most words need no change: append them from `current` without copying it (a copy
            // would make the `removeAll(keepingCapacity:)` above allocate afresh for every word).
            if !hasNonASCII && !hasLeetSymbol && !(hasLetter && current.count > 2 && current.contains(where: Self.isLeet)) {
                if current.count == 1 && Scalar.isLetter(current[0]) {
                    spaced.append(current[0])
                } else {
                    endSpacedRun()
                    words.append(current)
                }
                return
            }
            var word = current
            if hasNonASCII, sawLatin, let mapped = Self.unmaskHomoglyphs(word) {
                word = mapped
                obfuscations.insert("homoglyph")
            }
            // Leetspeak counts only where undoing it yields a word the scorer knows ("1gn0r3" → "ignore", not "gpt4" → "gpta").
            if hasLetter && word.count > 2 && word.contains(where: Self.isLeet) {
                let folded = word.map { Self.leet[$0] ?? $0 }
                if InjectionScorer.vocabularyHashes.contains(WordHash.of(folded)) {
                    word = folded
                    obfuscations.insert("leetspeak")
                }
            }
            if hasLeetSymbol { word.removeAll { !(Scalar.isLetter($0) || Scalar.isDigit($0)) } }
            guard !word.isEmpty else { return }
            if word.count == 1 && Scalar.isLetter(word[0]) {
                spaced.append(word[0])
            } else {
                endSpacedRun()
                words.append(word)
            }
        }
        for k in flat.indices {
            let v = flat[k]
            if v < 128 {
                if Scalar.isASCIILetter(v) {
                    current.append(v)
                    hasLetter = true
                } else if Scalar.isDigit(v) {
                    current.append(v)
                } else if (v == 64 || v == 36 || v == 33 || v == 124) && k + 1 < flat.count && Scalar.isLetter(flat[k + 1]) {
                    current.append(v)
                    hasLeetSymbol = true
                } else if v != 39 {
                    flush()
                }
            } else if Scalar.isLetter(v) {
                current.append(v)
                hasLetter = true
                hasNonASCII = true
            } else if !Self.isApostrophe(v) {
                flush()
            }
        }
        flush()
        endSpacedRun()

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
        return Result(words: words, flat: flat, obfuscations: obfuscations, decoded: decoded)
    }

    /// The word with look-alike letters mapped to Latin, when it has some and every other letter
    /// is Latin; nil otherwise. A word wholly in another script ("забудьте") is left alone.
    static func unmaskHomoglyphs(_ word: [UInt32]) -> [UInt32]? {
        var mapped = word
        var changed = false
        for (i, v) in word.enumerated() where v >= 128 && Scalar.isLetter(v) {
            guard let latin = homoglyphs[v] else { return nil }
            mapped[i] = latin
            changed = true
        }
        return changed ? mapped : nil
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
