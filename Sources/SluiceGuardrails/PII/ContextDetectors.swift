// Detectors that need a context cue or a vocabulary: dates of birth, US-style street
// addresses, and person names introduced by a cue ("my name is", "Dr.", "Dear").

/// A word of letters at `i`: its end, or nil.
private func wordEnd(_ s: [UInt32], _ i: Int) -> Int? {
    var j = i
    while j < s.count && (Scalar.isLetter(s[j]) || ((s[j] == 39 || s[j] == 45) && j > i && j + 1 < s.count && Scalar.isLetter(s[j + 1]))) { j += 1 }
    return j > i ? j : nil
}

/// Dates (numeric or with month names) that a cue marks as a date of birth.
struct DateOfBirthDetector: PIIDetector {
    var type: PIIType { .dateOfBirth }
    static let cues = ["born", "birth", "dob", "d.o.b", "geboren", "né le", "née le", "nacimiento", "nascita", "b-day", "bday"]
    static let cueScalars: [[UInt32]] = cues.map { $0.unicodeScalars.map(\.value) }
    static let months: [[UInt32]] = [
        "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    ].map { $0.unicodeScalars.map(\.value) }

    /// Whether a lower-cased code point starts a month name (j, f, m, a, s, o, n, d).
    @inline(__always) static func isMonthInitial(_ c: UInt32) -> Bool {
        c == 106 || c == 102 || c == 109 || c == 97 || c == 115 || c == 111 || c == 110 || c == 100
    }

    /// Whether the code points from `a` to `b` spell a month name, ignoring case (no `String` is built).
    static func isMonth(_ s: [UInt32], _ a: Int, _ b: Int) -> Bool {
        months.contains { m in
            m.count == b - a && m.indices.allSatisfy { Scalar.lower(s[a + $0]) == m[$0] }
        }
    }

    func scan(_ text: ScalarText, into findings: inout [PIIFinding]) {
        let s = text.scalars
        var i = 0
        while i < s.count {
            guard i == 0 || !Scalar.isWordChar(s[i - 1]) else { i += 1; continue }
            guard Scalar.isDigit(s[i]) || Self.isMonthInitial(Scalar.lower(s[i])), let end = Self.date(text, at: i) else { i += 1; continue }
            if text.containsCue(Self.cueScalars, from: i - 40, to: i) {
                findings.append(PIIFinding(type: .dateOfBirth, start: i, end: end, score: 0.85))
            }
            i = end
        }
    }

    /// The end of a date starting at `i`: 3/23/1940, 1993-01-04, 23.03.1940, March 3, 1990, 3 March 1990.
    static func date(_ text: ScalarText, at i: Int) -> Int? {
        let s = text.scalars
        if Scalar.isDigit(s[i]) {
            let allowed: (UInt32) -> Bool = { $0 == 47 || $0 == 45 || $0 == 46 }
            // A numeric date has 4 (1/2/90) to 8 (1990-03-02) digits; only then are its groups read.
            let digits = DigitGroups.read(s, from: i, allowed: allowed, maxDigits: 8, keepingGroups: false).digits
            let g = (4...8).contains(digits) ? DigitGroups.read(s, from: i, allowed: allowed, maxDigits: 8) : DigitGroups()
            if g.groups.count == 3, g.separators[0] == g.separators[1] {
                let ok = (g.groups[0] <= 2 && g.groups[1] <= 2 && (g.groups[2] == 4 || g.groups[2] == 2)) || (g.groups == [4, 2, 2])
                if ok, !(g.end < s.count && Scalar.isWordChar(s[g.end])) { return g.end }
            }
            // 3 March 1990, 3rd of March 1990
            var j = i
            while j < s.count && Scalar.isDigit(s[j]) { j += 1 }
            guard j - i <= 2 else { return nil }
            if text.matches("st", at: j) || text.matches("nd", at: j) || text.matches("rd", at: j) || text.matches("th", at: j) { j += 2 }
            guard j < s.count, s[j] == 32 else { return nil }
            j += 1
            if text.matches("of ", at: j) { j += 3 }
            guard let w = wordEnd(s, j), isMonth(s, j, w) else { return nil }
            j = w
            if j < s.count && s[j] == 46 { j += 1 }
            if j < s.count && s[j] == 44 { j += 1 }
            guard j < s.count, s[j] == 32 else { return nil }
            j += 1
            var n = 0
            while j < s.count && Scalar.isDigit(s[j]) { j += 1; n += 1 }
            return n == 4 ? j : nil
        }
        // March 3, 1990
        guard isMonthInitial(Scalar.lower(s[i])), let w = wordEnd(s, i), (3...9).contains(w - i), isMonth(s, i, w)
        else { return nil }
        var j = w
        if j < s.count && s[j] == 46 { j += 1 }
        guard j < s.count, s[j] == 32 else { return nil }
        j += 1
        var n = 0
        while j < s.count && Scalar.isDigit(s[j]) { j += 1; n += 1 }
        guard (1...2).contains(n) else { return nil }
        if text.matches("st", at: j) || text.matches("nd", at: j) || text.matches("rd", at: j) || text.matches("th", at: j) { j += 2 }
        if j < s.count && s[j] == 44 { j += 1 }
        guard j < s.count, s[j] == 32 else { return nil }
        j += 1
        n = 0
        while j < s.count && Scalar.isDigit(s[j]) { j += 1; n += 1 }
        return n == 4 ? j : nil
    }
}

/// US-style street addresses: a house number, street words, a street suffix; then an optional
/// unit, city, state and ZIP code.
struct StreetAddressDetector: PIIDetector {
    var type: PIIType { .streetAddress }
    static let suffixes: Set<String> = [
        "street", "st", "avenue", "ave", "av", "road", "rd", "boulevard", "blvd", "lane", "ln", "drive", "dr", "court", "ct", "way",
        "place", "pl", "terrace", "ter", "circle", "cir", "parkway", "pkwy", "highway", "hwy", "square", "sq", "trail", "trl",
        "plaza", "plz", "alley", "crescent", "cres", "close", "row", "loop", "path", "pike", "freeway", "fwy", "expressway",
        "route", "rte", "turnpike", "walk", "heights", "hts", "point", "pt", "ridge", "view", "crossing", "xing", "junction",
        "mall", "manor", "mews", "park", "commons", "green", "gardens", "grove", "hill", "hills", "estates", "ranch", "run",
    ]
    static let units: Set<String> = ["apt", "apartment", "suite", "ste", "unit", "floor", "fl", "room", "rm", "bldg", "building", "#"]
    static let states: Set<String> = [
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA",
        "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN",
        "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "DC", "PR",
    ]

    func scan(_ text: ScalarText, into findings: inout [PIIFinding]) {
        let s = text.scalars
        var i = 0
        while i < s.count {
            guard Scalar.isDigit(s[i]), i == 0 || !(Scalar.isWordChar(s[i - 1]) || s[i - 1] == 45 || s[i - 1] == 46) else { i += 1; continue }
            if let end = match(text, at: i) {
                findings.append(PIIFinding(type: .streetAddress, start: i, end: end, score: 0.8))
                i = end
            } else {
                while i < s.count && Scalar.isWordChar(s[i]) { i += 1 }
            }
        }
    }

    /// Next word (letters, digits, `#`) after spaces and an optional comma: (start, end).
    private func nextWord(_ s: [UInt32], _ from: Int, allowComma: Bool) -> (Int, Int)? {
        var j = from
        if allowComma && j < s.count && s[j] == 44 { j += 1 }
        var spaces = 0
        while j < s.count && (s[j] == 32 || s[j] == 10) { j += 1; spaces += 1 }
        guard spaces > 0 || (j > from && allowComma), j < s.count else { return nil }
        let b = j
        while j < s.count && (Scalar.isWordChar(s[j]) || s[j] == 35 || s[j] == 39 || (s[j] == 45 && j + 1 < s.count && Scalar.isWordChar(s[j + 1]))) { j += 1 }
        return j > b ? (b, j) : nil
    }

    func match(_ text: ScalarText, at i: Int) -> Int? {
        let s = text.scalars
        var j = i
        var n = 0
        while j < s.count && Scalar.isDigit(s[j]) { j += 1; n += 1 }
        guard n <= 6 else { return nil }
        if j < s.count && Scalar.isASCIILetter(s[j]) && !(j + 1 < s.count && Scalar.isLetter(s[j + 1])) { j += 1 }  // 12B
        // Up to five street words, the last of which is a suffix.
        var end: Int?
        var k = j
        for wordIndex in 0..<6 {
            guard let (b, e) = nextWord(s, k, allowComma: false) else { break }
            let word = text.slice(b, e).lowercased()
            if wordIndex > 0, Self.suffixes.contains(word) {
                end = e
                if e < s.count && s[e] == 46 { end = e + 1 }
                break
            }
            // Street names are words or ordinals ("40th"), not numbers.
            guard Scalar.isLetter(s[b]) || (Scalar.isDigit(s[b]) && ["st", "nd", "rd", "th"].contains(where: word.hasSuffix)) else { break }
            k = e
        }
        guard var stop = end else { return nil }
        // Unit: ", Apt 4B", " Suite 603", " #12".
        if let (b, e) = nextWord(s, stop, allowComma: true) {
            let word = text.slice(b, e).lowercased().trimmingDot
            if Self.units.contains(word) || word.hasPrefix("#") {
                var m = e
                if m < s.count && s[m] == 46 { m += 1 }
                if word.count > 1 && word.hasPrefix("#") {
                    stop = e
                } else if let (b2, e2) = nextWord(s, m, allowComma: false), Scalar.isDigit(s[b2]) || e2 - b2 <= 3 {
                    stop = e2
                }
            }
        }
        // City, ST 12345: up to three city words, a state code, a ZIP.
        var k2 = stop
        var cityWords = 0
        while cityWords < 3, let (b, e) = nextWord(s, k2, allowComma: true), Scalar.isUpper(s[b]), !Self.states.contains(text.slice(b, e)) {
            k2 = e
            cityWords += 1
        }
        if cityWords > 0, let (b, e) = nextWord(s, k2, allowComma: true), Self.states.contains(text.slice(b, e)) {
            stop = e
            if let (zb, ze) = nextWord(s, e, allowComma: false), ze - zb == 5 || ze - zb == 10, Scalar.isDigit(s[zb]) { stop = ze }
        }
        return stop
    }
}

extension String {
    fileprivate var trimmingDot: String { hasSuffix(".") ? String(dropLast()) : self }
}

/// Person names that a cue introduces: "my name is …", "Dr. …", "Dear …", "Sincerely, …".
struct PersonDetector: PIIDetector {
    var type: PIIType { .person }
    /// Cues, lower-case, each followed by the name; the score says how strongly each implies one.
    static let cues: [(String, Double)] = [
        ("my name is ", 0.9), ("name is ", 0.8), ("name: ", 0.85), ("named ", 0.75), ("called ", 0.6), ("i am ", 0.6), ("i'm ", 0.6),
        ("this is ", 0.55), ("dear ", 0.85), ("mr. ", 0.9), ("mr ", 0.85), ("mrs. ", 0.9), ("mrs ", 0.85), ("ms. ", 0.9), ("ms ", 0.8),
        ("miss ", 0.8), ("dr. ", 0.85), ("prof. ", 0.85), ("sincerely, ", 0.85), ("regards, ", 0.8), ("thanks, ", 0.6),
        ("signed, ", 0.8), ("signed by ", 0.8), ("contact ", 0.55), ("patient ", 0.65), ("ich heiße ", 0.9), ("je m'appelle ", 0.9),
        ("me llamo ", 0.9), ("mi chiamo ", 0.9), ("hi ", 0.55), ("hello ", 0.55), ("sr. ", 0.8), ("sra. ", 0.8), ("herr ", 0.85),
        ("frau ", 0.85),
    ]
    /// The cues' code points by their (ASCII) first letter: an array, not a dictionary, as it is
    /// read for every word. Code points, not UTF-8, so that "ich heiße " matches its `ß`.
    static let cuesByInitial: [[(cue: [UInt32], score: Double)]] = (0..<128).map { c in
        cues.filter { $0.0.unicodeScalars.first!.value == c }.map { (Array($0.0.unicodeScalars.map(\.value)), $0.1) }
    }
    /// Titles between a cue and the name: "Dear Dr. Ana Souza".
    static let titles: [[UInt32]] = ["dr. ", "mr. ", "mrs. ", "ms. ", "prof. ", "miss "].map { Array($0.unicodeScalars.map(\.value)) }

    /// Capitalised words that follow weak cues but are not names.
    static let notNames: Set<String> = [
        "I", "The", "A", "An", "Not", "So", "Very", "Here", "There", "Just", "Also", "Going", "Looking", "Sorry", "Happy", "Glad",
        "Sure", "Trying", "Writing", "Calling", "Interested", "In", "On", "At", "From", "With", "It", "This", "That", "We", "You",
        "He", "She", "They", "My", "Our", "Your", "Team", "All", "Everyone", "There", "Again", "Today", "Please", "Thank", "Thanks",
        "Sir", "Madam", "Customer", "Support", "Hiring", "New", "Currently", "Still", "Now", "What", "How", "Who", "Why", "When",
    ]
    static let particles: Set<String> = ["van", "der", "de", "den", "da", "di", "von", "la", "le", "del", "della", "bin", "al", "dos", "du", "ter"]

    func scan(_ text: ScalarText, into findings: inout [PIIFinding]) {
        let s = text.scalars
        var i = 0
        while i < s.count {
            guard i == 0 || !Scalar.isWordChar(s[i - 1]), Scalar.isLetter(s[i]) else { i += 1; continue }
            var matched = false
            let initial = Scalar.lower(s[i])
            for (cue, score) in initial < 128 ? Self.cuesByInitial[Int(initial)] : [] where text.matches(cue, at: i) {
                var start = i + cue.count
                for title in Self.titles where text.matches(title, at: start) { start += title.count }
                if let end = nameEnd(text, at: start, weak: score < 0.7) {
                    findings.append(PIIFinding(type: .person, start: start, end: end, score: score))
                    i = end
                    matched = true
                }
                break
            }
            if !matched { while i < s.count && Scalar.isWordChar(s[i]) { i += 1 } }
        }
    }

    /// One to four capitalised words (particles such as "van der" between them).
    func nameEnd(_ text: ScalarText, at start: Int, weak: Bool) -> Int? {
        let s = text.scalars
        var j = start
        var end: Int?
        var words = 0
        while words < 4, j < s.count {
            guard let e = wordEnd(s, j) else { break }
            let word = text.slice(j, e)
            if Scalar.isUpper(s[j]), !Self.notNames.contains(word), !(e - j > 1 && (j + 1..<e).allSatisfy({ Scalar.isUpper(s[$0]) })) {
                end = e
                words += 1
            } else if end != nil, Self.particles.contains(word) {
                // Only part of a name if a capitalised word follows.
            } else {
                break
            }
            guard e < s.count, s[e] == 32 else { break }
            j = e + 1
        }
        guard let end else { return nil }
        if weak && words < 1 { return nil }
        return end
    }
}
