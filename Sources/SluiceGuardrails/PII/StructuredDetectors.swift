// Detectors of PII with a checkable structure: e-mail, phone, card (Luhn), SSN, IBAN (mod-97), IP.
// Hand-written scanners over code points: a 1 KB prompt is checked in microseconds, which
// regular expressions on this platform cannot do.

/// E-mail addresses: a local part, `@`, and a domain with a top-level label of letters.
struct EmailDetector: PIIDetector {
    var type: PIIType { .email }

    static func isLocal(_ c: UInt32) -> Bool {
        Scalar.isASCIIAlnum(c) || c == 46 || c == 95 || c == 37 || c == 43 || c == 45 || c == 39 || (c > 127 && Scalar.isLetter(c))
    }

    static func isDomain(_ c: UInt32) -> Bool { Scalar.isASCIIAlnum(c) || c == 45 || c == 46 || (c > 127 && Scalar.isLetter(c)) }

    func scan(_ text: ScalarText, into findings: inout [PIIFinding]) {
        let s = text.scalars
        var i = 0
        while i < s.count {
            guard s[i] == 64 else { i += 1; continue }
            var a = i
            while a > 0 && Self.isLocal(s[a - 1]) { a -= 1 }
            while a < i && (s[a] == 46 || s[a] == 39) { a += 1 }
            var b = i + 1
            while b < s.count && Self.isDomain(s[b]) { b += 1 }
            while b > i + 1 && (s[b - 1] == 46 || s[b - 1] == 45) { b -= 1 }
            var lastDot = -1
            for k in (i + 1)..<max(i + 1, b) where s[k] == 46 { lastDot = k }
            if a < i, lastDot > i + 1, b - lastDot - 1 >= 2, (lastDot + 1..<b).allSatisfy({ Scalar.isLetter(s[$0]) }) {
                findings.append(PIIFinding(type: .email, start: a, end: b, score: 0.99))
                i = b
                continue
            }
            i += 1
        }
    }
}

/// Digit groups as written: runs of digits and the single separators between them.
struct DigitGroups {
    var groups: [Int] = []  // digits per group
    var separators: [UInt32] = []
    var end = 0  // offset after the last digit
    var digits = 0

    /// Reads groups from `start`, accepting the separators in `allowed` (one between two groups).
    /// Without `keepingGroups` only `end` and `digits` are filled: most digit runs in a text are
    /// not candidates, and the detectors look at the groups only after the digit count passes.
    static func read(_ s: [UInt32], from start: Int, allowed: (UInt32) -> Bool, maxDigits: Int, keepingGroups: Bool = true) -> DigitGroups {
        var g = DigitGroups()
        var j = start
        while j < s.count && g.digits < maxDigits {
            var n = 0
            while j < s.count && Scalar.isDigit(s[j]) { n += 1; j += 1 }
            guard n > 0 else { break }
            if keepingGroups { g.groups.append(n) }
            g.digits += n
            g.end = j
            if j + 1 < s.count, allowed(s[j]), Scalar.isDigit(s[j + 1]) {
                if keepingGroups { g.separators.append(s[j]) }
                j += 1
            } else {
                break
            }
        }
        return g
    }
}

/// Payment card numbers: 13–19 digits, plain or in groups, that pass the Luhn check.
struct CreditCardDetector: PIIDetector {
    var type: PIIType { .creditCard }

    static func luhn(_ digits: [UInt32]) -> Bool {
        var sum = 0
        for (i, d) in digits.reversed().enumerated() {
            var v = Int(d - 48)
            if i % 2 == 1 { v *= 2; if v > 9 { v -= 9 } }
            sum += v
        }
        return sum % 10 == 0
    }

    func scan(_ text: ScalarText, into findings: inout [PIIFinding]) {
        let s = text.scalars
        var i = 0
        while i < s.count {
            guard Scalar.isDigit(s[i]), i == 0 || !(Scalar.isWordChar(s[i - 1]) || s[i - 1] == 46 || s[i - 1] == 45) else { i += 1; continue }
            let allowed: (UInt32) -> Bool = { $0 == 32 || $0 == 45 }
            var g = DigitGroups.read(s, from: i, allowed: allowed, maxDigits: 24, keepingGroups: false)
            defer { i = max(g.end, i + 1) }
            guard g.digits >= 13, (50...54).contains(s[i]) else { continue }  // cards start with 2-6
            g = DigitGroups.read(s, from: i, allowed: allowed, maxDigits: 24)
            // Longest prefix of whole groups that is a valid card number.
            for count in stride(from: g.groups.count, through: 1, by: -1) {
                let groups = Array(g.groups.prefix(count))
                let n = groups.reduce(0, +)
                guard (13...19).contains(n) else { continue }
                if groups.count > 1 && !Self.plausibleGrouping(groups) { continue }
                let end = i + n + (count - 1)
                if end < s.count && (Scalar.isWordChar(s[end])) { continue }
                let digits = s[i..<end].filter(Scalar.isDigit)
                if Self.issued(Array(digits)) && Self.luhn(Array(digits)) {
                    let cue = text.lowercasedContext(before: i, window: 30)
                    let score = ["card", "visa", "master", "amex", "credit", "karte"].contains(where: cue.contains) ? 0.99 : 0.9
                    findings.append(PIIFinding(type: .creditCard, start: i, end: end, score: score))
                    break
                }
            }
        }
    }

    /// Whether an issuer gives out numbers with this prefix and length (IIN ranges of the card
    /// networks). One digit run in ten passes Luhn by chance; most of those (order and tracking
    /// numbers, account references) fall outside every network's ranges.
    static func issued(_ digits: [UInt32]) -> Bool {
        func prefix(_ n: Int) -> Int { digits.prefix(n).reduce(0) { $0 * 10 + Int($1 - 48) } }
        let length = digits.count
        switch prefix(1) {
        case 4: return [13, 16, 19].contains(length)  // Visa
        case 2:
            let p4 = prefix(4)
            if (2221...2720).contains(p4) { return length == 16 }  // Mastercard
            if (2200...2204).contains(p4) { return (16...19).contains(length) }  // Mir
            return false
        case 3:
            let p2 = prefix(2)
            if p2 == 34 || p2 == 37 { return length == 15 }  // American Express
            if (3528...3589).contains(prefix(4)) { return (16...19).contains(length) }  // JCB
            if (300...305).contains(prefix(3)) || p2 == 36 || p2 == 38 || p2 == 39 { return (14...19).contains(length) }  // Diners
            return false
        case 5:
            let p2 = prefix(2)
            if (51...55).contains(p2) { return length == 16 }  // Mastercard
            return p2 == 50 || (56...58).contains(p2) ? (12...19).contains(length) : false  // Maestro
        case 6:
            let p2 = prefix(2)
            if prefix(4) == 6011 || p2 == 65 || (644...649).contains(prefix(3)) { return (16...19).contains(length) }  // Discover
            if p2 == 62 { return (16...19).contains(length) }  // UnionPay
            if p2 == 60 || p2 == 63 || p2 == 67 || p2 == 69 { return (12...19).contains(length) }  // Maestro, RuPay
            return false
        default: return false
        }
    }

    /// Groups of four (the last may be shorter), or American Express's 4-6-5.
    static func plausibleGrouping(_ groups: [Int]) -> Bool {
        if groups == [4, 6, 5] || groups == [4, 6, 4] { return true }
        return groups.dropLast().allSatisfy { $0 == 4 } && (1...4).contains(groups.last!)
    }
}

/// US Social Security numbers with a valid area, group and serial; unseparated only with a cue.
struct SSNDetector: PIIDetector {
    var type: PIIType { .usSSN }

    static func valid(area: Int, group: Int, serial: Int) -> Bool {
        area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
    }

    func scan(_ text: ScalarText, into findings: inout [PIIFinding]) {
        let s = text.scalars
        var i = 0
        while i < s.count {
            guard Scalar.isDigit(s[i]), i == 0 || !(Scalar.isWordChar(s[i - 1]) || s[i - 1] == 45 || s[i - 1] == 46) else { i += 1; continue }
            let allowed: (UInt32) -> Bool = { $0 == 45 || $0 == 32 }
            var g = DigitGroups.read(s, from: i, allowed: allowed, maxDigits: 10, keepingGroups: false)
            defer { i = max(g.end, i + 1) }
            // Both forms below have nine digits.
            guard g.digits == 9 else { continue }
            g = DigitGroups.read(s, from: i, allowed: allowed, maxDigits: 10)
            let after = g.end < s.count ? s[g.end] : 0
            guard !(Scalar.isWordChar(after)) && !(after == 45 && Scalar.isDigit(text[g.end + 1])) else { continue }
            let digits = s[i..<g.end].filter(Scalar.isDigit).map { Int($0 - 48) }
            func number(_ r: Range<Int>) -> Int { digits[r].reduce(0) { $0 * 10 + $1 } }
            if g.groups == [3, 2, 4], g.separators[0] == g.separators[1] {
                guard Self.valid(area: number(0..<3), group: number(3..<5), serial: number(5..<9)) else { continue }
                let cue = text.lowercasedContext(before: i, window: 40)
                let score = ["ssn", "social security", "social sec"].contains(where: cue.contains) ? 0.99 : 0.85
                findings.append(PIIFinding(type: .usSSN, start: i, end: g.end, score: score))
            } else if g.groups == [9] {
                let cue = text.lowercasedContext(before: i, window: 40)
                guard ["ssn", "social security"].contains(where: cue.contains),
                    Self.valid(area: number(0..<3), group: number(3..<5), serial: number(5..<9))
                else { continue }
                findings.append(PIIFinding(type: .usSSN, start: i, end: g.end, score: 0.9))
            }
        }
    }
}

/// International bank account numbers: country letters, check digits, account, mod-97 valid.
struct IBANDetector: PIIDetector {
    var type: PIIType { .iban }

    static func mod97(_ chars: [UInt32]) -> Bool {
        guard chars.count >= 15 else { return false }
        let rotated = chars[4...] + chars[..<4]
        var r = 0
        for c in rotated {
            let v: Int
            if Scalar.isDigit(c) { v = Int(c - 48) } else if Scalar.isASCIILetter(c) { v = Int(Scalar.lower(c) - 97 + 10) } else { return false }
            r = v >= 10 ? (r * 100 + v) % 97 : (r * 10 + v) % 97
        }
        return r == 1
    }

    func scan(_ text: ScalarText, into findings: inout [PIIFinding]) {
        let s = text.scalars
        var i = 0
        while i + 15 <= s.count {
            guard Scalar.isASCIILetter(s[i]), Scalar.isASCIILetter(s[i + 1]), Scalar.isDigit(s[i + 2]), Scalar.isDigit(s[i + 3]),
                i == 0 || !Scalar.isWordChar(s[i - 1])
            else { i += 1; continue }
            // Blocks: the first token, then space-separated groups of at most four.
            var blocks: [(start: Int, end: Int)] = []
            var j = i
            while j < s.count {
                let b = j
                while j < s.count && Scalar.isASCIIAlnum(s[j]) { j += 1 }
                guard j > b else { break }
                blocks.append((b, j))
                if j + 1 < s.count, s[j] == 32, Scalar.isASCIIAlnum(s[j + 1]), j - b == 4 { j += 1 } else { break }
            }
            var matched = false
            for count in stride(from: blocks.count, through: 1, by: -1) {
                let end = blocks[count - 1].end
                let chars = s[i..<end].filter { $0 != 32 }
                guard (15...34).contains(chars.count) else { continue }
                if Self.mod97(Array(chars)) {
                    findings.append(PIIFinding(type: .iban, start: i, end: end, score: 0.99))
                    i = end
                    matched = true
                    break
                }
            }
            if !matched { i += 1 }
        }
    }
}

/// IPv4 dotted quads and IPv6 addresses (full, compressed, with an embedded IPv4 tail).
struct IPAddressDetector: PIIDetector {
    var type: PIIType { .ipAddress }

    /// The end of an IPv4 address starting at `i`, if one does.
    static func ipv4(_ s: [UInt32], at i: Int) -> Int? {
        var j = i
        for part in 0..<4 {
            var n = 0
            var v = 0
            while j < s.count && Scalar.isDigit(s[j]) && n < 4 { v = v * 10 + Int(s[j] - 48); n += 1; j += 1 }
            guard (1...3).contains(n), v <= 255 else { return nil }
            if part < 3 {
                guard j < s.count, s[j] == 46 else { return nil }
                j += 1
            }
        }
        if j < s.count && (Scalar.isWordChar(s[j]) || (s[j] == 46 && Scalar.isDigit(j + 1 < s.count ? s[j + 1] : 0))) { return nil }
        return j
    }

    func scan(_ text: ScalarText, into findings: inout [PIIFinding]) {
        let s = text.scalars
        var i = 0
        while i < s.count {
            let c = s[i]
            let boundary = i == 0 || !(Scalar.isWordChar(s[i - 1]) || s[i - 1] == 46 || s[i - 1] == 58)
            guard boundary, Scalar.isHex(c) || c == 58 else { i += 1; continue }
            if Scalar.isDigit(c), let end = Self.ipv4(s, at: i) {
                findings.append(PIIFinding(type: .ipAddress, start: i, end: end, score: 0.95))
                i = end
                continue
            }
            if let end = Self.ipv6(s, at: i) {
                findings.append(PIIFinding(type: .ipAddress, start: i, end: end, score: 0.95))
                i = end
                continue
            }
            // Skip the rest of this word.
            while i < s.count && (Scalar.isWordChar(s[i]) || s[i] == 58) { i += 1 }
        }
    }

    /// The end of an IPv6 address starting at `i`, if one does.
    static func ipv6(_ s: [UInt32], at i: Int) -> Int? {
        var j = i
        var groups = 0
        var compressed = false
        var longGroup = false
        var end = i
        if j + 1 < s.count && s[j] == 58 && s[j + 1] == 58 { compressed = true; j += 2; end = j }
        else if s[j] == 58 { return nil }
        while j < s.count {
            // An embedded IPv4 tail ends the address.
            if Scalar.isDigit(s[j]), groups <= 6, let v4 = ipv4(s, at: j) { groups += 2; end = v4; j = v4; break }
            var n = 0
            while j < s.count && Scalar.isHex(s[j]) && n < 5 { n += 1; j += 1 }
            guard (1...4).contains(n) else { if n == 0 { break } else { return nil } }
            groups += 1
            if n >= 3 { longGroup = true }
            end = j
            guard j < s.count, s[j] == 58 else { break }
            if j + 1 < s.count && s[j + 1] == 58 {
                if compressed { return nil }
                compressed = true
                j += 2
                end = j
                continue
            }
            guard j + 1 < s.count, Scalar.isHex(s[j + 1]) else { break }
            j += 1
        }
        if end < s.count && (Scalar.isWordChar(s[end])) { return nil }
        if compressed {
            guard groups < 8, groups >= 1, longGroup || groups >= 2 else {
                // "::1" and "::" alone.
                return groups == 1 && s[end - 1] == 49 && end - i == 3 ? end : nil
            }
            return end
        }
        return groups == 8 ? end : nil
    }
}

/// Phone numbers: international (`+` and country code) and national formats written in groups;
/// an unbroken run of digits counts only after a cue such as "phone" or "call".
struct PhoneDetector: PIIDetector {
    var type: PIIType { .phone }
    static let cues = ["phone", "tel", "call", "mobile", "cell", "fax", "whatsapp", "sms", "text me", "contact", "telefon", "handy", "número", "answering at", "reach"]
    static let cuesAfter = ["office", "fax", "mobile", "cell", "phone", "home", "work"]
    /// A number right after these is part of an address.
    static let addressCues = ["apt. ", "apt ", "suite ", "unit ", "no. ", "zip ", "zip: ", "box "]
    static let cueScalars = cues.map { $0.unicodeScalars.map(\.value) }
    static let afterScalars = cuesAfter.map { $0.unicodeScalars.map(\.value) }
    static let addressScalars = addressCues.map { $0.unicodeScalars.map(\.value) }

    func scan(_ text: ScalarText, into findings: inout [PIIFinding]) {
        let s = text.scalars
        var i = 0
        while i < s.count {
            let c = s[i]
            guard c == 43 || c == 40 || Scalar.isDigit(c) else { i += 1; continue }
            if i > 0 {
                let p = s[i - 1]
                if Scalar.isWordChar(p) || p == 36 || p == 35 || p == 46 || p == 45 || p == 47 || p == 43 {
                    i += 1
                    continue
                }
            }
            if let (end, score) = match(text, at: i) {
                findings.append(PIIFinding(type: .phone, start: i, end: end, score: score))
                i = end
            } else {
                i += 1
                while i < s.count && Scalar.isDigit(s[i]) { i += 1 }
            }
        }
    }

    /// How many different separators a number uses (a handful at most: no set needed).
    static func distinctCount(_ seps: [UInt32]) -> Int {
        var count = 0
        for (i, sep) in seps.enumerated() where !seps[..<i].contains(sep) { count += 1 }
        return count
    }

    func match(_ text: ScalarText, at start: Int) -> (Int, Double)? {
        let s = text.scalars
        var j = start
        let plus = s[j] == 43
        if plus { j += 1 }
        // Room for the groups and separators of any phone number, so that neither grows.
        var groups: [Int] = []
        groups.reserveCapacity(8)
        var seps: [UInt32] = []
        seps.reserveCapacity(8)
        var paren = false
        var end = j
        while j < s.count {
            var closeParen = false
            if s[j] == 40 {
                var k = j + 1
                while k < s.count && Scalar.isDigit(s[k]) { k += 1 }
                guard k < s.count, s[k] == 41, k - j - 1 >= 1, k - j - 1 <= 5 else { break }
                groups.append(k - j - 1)
                paren = true
                closeParen = true
                j = k + 1
                end = j
            } else if Scalar.isDigit(s[j]) {
                var n = 0
                while j < s.count && Scalar.isDigit(s[j]) { n += 1; j += 1 }
                groups.append(n)
                end = j
            } else {
                break
            }
            // A separator, then another group.
            if j < s.count, s[j] == 32 || s[j] == 45 || s[j] == 46 || s[j] == 47 {
                if j + 1 < s.count, Scalar.isDigit(s[j + 1]) || s[j + 1] == 40 {
                    seps.append(s[j])
                    j += 1
                    continue
                }
                break
            }
            if closeParen, j < s.count, Scalar.isDigit(s[j]) { seps.append(41); continue }
            break
        }
        guard !groups.isEmpty else { return nil }
        let digits = groups.reduce(0, +)
        guard (7...15).contains(digits) else { return nil }
        // An extension: "x123", " ext. 123".
        var k = end
        if k < s.count {
            var m = k
            if s[m] == 32 { m += 1 }
            if text.matches("ext", at: m) { m += 3; if m < s.count && s[m] == 46 { m += 1 }; if m < s.count && s[m] == 32 { m += 1 } }
            else if m < s.count && (s[m] == 120 || s[m] == 88) { m += 1 }
            else { m = -1 }
            if m > 0 {
                var n = 0
                while m < s.count && Scalar.isDigit(s[m]) && n < 6 { m += 1; n += 1 }
                if n > 0 { k = m }
            }
        }
        if k < s.count && Scalar.isWordChar(s[k]) { return nil }
        if k + 1 < s.count && (s[k] == 45 || s[k] == 46) && Scalar.isDigit(s[k + 1]) { return nil }
        if k + 1 < s.count && s[k] == 58 && Scalar.isDigit(s[k + 1]) { return nil }  // a time: "… 14:56"
        let hasCue = text.containsCue(Self.cueScalars, from: start - 32, to: start) || text.containsCue(Self.afterScalars, from: k, to: k + 12)
        if Self.addressScalars.contains(where: { cue in cue.count <= start && (0..<cue.count).allSatisfy { Scalar.lower(s[start - cue.count + $0]) == cue[$0] } }) {
            return nil
        }
        if groups.count == 1 {
            // One run of digits: an order number or an id unless said to be a phone.
            guard plus || (hasCue && digits >= 8) else { return nil }
            return (k, plus ? 0.85 : 0.8)
        }
        // Not a phone: dates (2023-01-04, 3/23/1940, also before a time), SSN-shaped 3-2-4, lists of years or card-like groups.
        if !plus && !paren && groups.count >= 3 && seps[0] == seps[1] && seps[0] != 32 {
            let g3 = Array(groups.prefix(3))
            if g3 == [4, 2, 2] || ((g3[0] <= 2 && g3[1] <= 2) && (g3[2] == 4 || g3[2] == 2) && groups.count == 3) { return nil }
        }
        if groups == [3, 2, 4] && !plus && !hasCue { return nil }
        if !plus && !paren && !hasCue && groups.count >= 3 && groups.allSatisfy({ $0 == 4 }) { return nil }
        if !plus && !hasCue && groups.allSatisfy({ $0 == 4 }) {
            let years = (0..<groups.count).allSatisfy { g in
                let o = start + g * 5
                return (s[o] == 49 && s[o + 1] == 57) || (s[o] == 50 && s[o + 1] == 48)
            }
            if years { return nil }
        }
        // After a country code the area code may be one digit (+33 1 …, +61 2 …); elsewhere a
        // one-digit group is a list or a score, not a phone number.
        if groups.dropFirst(plus ? 2 : 1).contains(where: { $0 < 2 }) { return nil }
        if Self.distinctCount(seps) > 2 { return nil }
        if !plus && !paren && !hasCue {
            // Without a country code, brackets or a cue, only the national layouts that phone
            // numbers actually have: North America's 3-3-4 (area code and exchange from 2), with
            // or without its 1, or a trunk 0 and 9 to 12 digits (most of the rest of the world).
            // Other grouped digit runs are order, serial and reference numbers.
            let nanp = (groups == [3, 3, 4] && s[start] >= 50 && s[start + 4] >= 50) || (groups == [1, 3, 3, 4] && s[start] == 49 && s[start + 2] >= 50)
            let trunk = s[start] == 48 && (9...12).contains(digits)
            if !(nanp || trunk) { return nil }
        }
        return (k, plus || paren || hasCue ? 0.9 : 0.75)
    }
}
