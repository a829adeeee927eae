/// How likely a text is a prompt injection or jailbreak, and why.
public struct InjectionAssessment: Sendable, Hashable {
    /// 0 (benign) to 1 (certainly an attack).
    public var score: Double
    /// The kinds of evidence found, strongest first (`instruction_override`, `role_play`,
    /// `jailbreak`, `fake_system_message`, `prompt_leak`, `task_hijack`, `obfuscation:base64`, …).
    public var reasons: [String]

    public init(score: Double, reasons: [String]) {
        self.score = score
        self.reasons = reasons
    }
}

/// Scores user or retrieved text for prompt injection: phrase rules over the normalised words
/// (in English, German, French, Spanish and Italian), delimiter spoofing over the raw text, and
/// the disguises the normaliser had to remove. Evidence combines as independent signals:
/// score = 1 − ∏(1 − weight).
public struct InjectionScorer: Sendable {
    struct Rule: Sendable {
        var family: String
        var weight: Double
        /// Alternatives per step; `gaps[k]` words may lie between step k−1 and step k.
        var steps: [[Int]]
        var gaps: [Int]
    }

    private let rules: [Rule]
    /// For each word id, the rules whose first step it is: only those can match.
    private let rulesByFirstID: [[Int]]
    /// Whole words by hash → index into `idLists`.
    private let exact: WordTable
    /// Prefix stems by hash → index into `idLists`.
    private let stems: WordTable
    private let idLists: [[Int]]
    private let idCount: Int
    /// For each ASCII first letter, a bit per stem length that some stem starting with it has
    /// (index 0 stands for every non-ASCII first letter): most words need no stem look-up at all.
    private let stemLengths: [UInt64]
    private let normalizer = InjectionNormalizer()

    public init() {
        var exact: [UInt64: [Int]] = [:]
        var stems: [UInt64: [Int]] = [:]
        var stemLengths = [UInt64](repeating: 0, count: 128)
        var ids: [String: Int] = [:]
        var rules: [Rule] = []
        for (family, weight, pattern) in Self.patterns {
            var steps: [[Int]] = []
            var gaps: [Int] = []
            var gap = 0
            for part in pattern.split(separator: " ") {
                if part.hasPrefix("~") {
                    gap = Int(part.dropFirst()) ?? 0
                    continue
                }
                var alternatives: [Int] = []
                for alt in part.split(separator: "|").map(String.init) {
                    let id: Int
                    if let known = ids[alt] { id = known } else {
                        id = ids.count
                        ids[alt] = id
                        if alt.hasSuffix("*") {
                            let stem = Array(alt.dropLast().unicodeScalars.map(\.value))
                            stems[WordHash.of(stem), default: []].append(id)
                            let first = stem[0] < 128 ? Int(stem[0]) : 0
                            stemLengths[first] |= 1 << UInt64(min(stem.count, 63))
                        } else {
                            exact[WordHash.of(alt), default: []].append(id)
                        }
                    }
                    alternatives.append(id)
                }
                steps.append(alternatives)
                gaps.append(gap)
                gap = 0
            }
            rules.append(Rule(family: family, weight: weight, steps: steps, gaps: gaps))
        }
        var idLists: [[Int]] = []
        func table(_ entries: [UInt64: [Int]]) -> WordTable {
            var indexed: [UInt64: Int] = [:]
            for (hash, list) in entries {
                indexed[hash] = idLists.count
                idLists.append(list)
            }
            return WordTable(indexed)
        }
        self.exact = table(exact)
        self.stems = table(stems)
        self.idLists = idLists
        self.idCount = ids.count
        self.stemLengths = stemLengths
        self.rules = rules
        var byFirst = [[Int]](repeating: [], count: ids.count)
        for (r, rule) in rules.enumerated() {
            for id in Set(rule.steps[0]) { byFirst[id].append(r) }
        }
        self.rulesByFirstID = byFirst
    }

    static let rolePlayCap = 0.35

    /// Scores one text.
    public func assess(_ text: String) -> InjectionAssessment {
        let normalized = normalizer.normalize(text)
        var evidence: [String: Double] = [:]  // family → combined weight
        func add(_ family: String, _ weight: Double) {
            evidence[family] = 1 - (1 - (evidence[family] ?? 0)) * (1 - weight)
        }
        for (family, weight) in matchRules(normalized.words) { add(family, weight) }
        for (family, weight) in Self.delimiterEvidence(normalized.flat) { add(family, weight) }
        for payload in normalized.decoded {
            let inner = normalizer.normalize(payload)
            for (family, weight) in matchRules(inner.words) { add(family, weight) }
        }
        if Self.shouting(text) { add("task_hijack", 0.15) }
        // A disguise is itself a signal, and a strong one when what it hid is an attack.
        let hidden = !evidence.isEmpty
        // Role play on its own is a common, legitimate way to set up a task ("act as a Linux
        // terminal"): it stays below the default threshold unless other evidence joins it.
        if let rolePlay = evidence["role_play"], rolePlay > Self.rolePlayCap { evidence["role_play"] = Self.rolePlayCap }
        for o in normalized.obfuscations.sorted() { add("obfuscation:" + o, hidden ? 0.3 : 0.1) }
        let score = 1 - evidence.values.reduce(1) { $0 * (1 - $1) }
        let reasons = evidence.filter { $0.value >= 0.1 }.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map(\.key)
        return InjectionAssessment(score: (score * 1000).rounded() / 1000, reasons: reasons)
    }

    /// The rules that match the words given as strings, each counted once, as (family, weight).
    func matchRules(_ words: [String]) -> [(String, Double)] {
        var list = WordList()
        for w in words { list.append(w.unicodeScalars.map(\.value)) }
        return matchRules(list)
    }

    /// The rules that match, each counted once, as (family, weight).
    func matchRules(_ words: WordList) -> [(String, Double)] {
        // (id, word position) for every vocabulary hit, and a bit per id seen.
        var hits: [(id: Int, position: Int)] = []
        var seen = [UInt64](repeating: 0, count: (idCount + 63) / 64)
        func hit(_ list: Int, _ p: Int) {
            for id in idLists[list] {
                hits.append((id, p))
                seen[id >> 6] |= 1 << UInt64(id & 63)
            }
        }
        words.store.withUnsafeBufferPointer { store in
            for p in 0..<words.count {
                if let list = exact.lookup(words.hashes[p]) { hit(list, p) }
                let range = words.ranges[p]
                guard range.count >= 2 else { continue }
                let first = store[range.lowerBound]
                let lengths = stemLengths[first < 128 ? Int(first) : 0]
                guard lengths != 0 else { continue }
                var h = WordHash.seed
                var length = 0
                for i in range {
                    h = WordHash.step(h, store[i])
                    length += 1
                    if length < 64 && lengths & (1 << UInt64(length)) != 0, let list = stems.lookup(h) { hit(list, p) }
                }
            }
        }
        guard !hits.isEmpty else { return [] }
        func wasSeen(_ id: Int) -> Bool { seen[id >> 6] & (1 << UInt64(id & 63)) != 0 }
        // The rules some hit begins, each once and in the rules' order.
        var candidates = [UInt64](repeating: 0, count: (rules.count + 63) / 64)
        for hit in hits {
            for r in rulesByFirstID[hit.id] { candidates[r >> 6] |= 1 << UInt64(r & 63) }
        }
        var out: [(String, Double)] = []
        for (block, bits) in candidates.enumerated() where bits != 0 {
            var rest = bits
            while rest != 0 {
                let r = block << 6 | rest.trailingZeroBitCount
                rest &= rest - 1
                if Self.matches(rules[r], hits, wasSeen) { out.append((rules[r].family, rules[r].weight)) }
            }
        }
        return out
    }

    static func matches(_ rule: Rule, _ hits: [(id: Int, position: Int)], _ seen: (Int) -> Bool) -> Bool {
        // Most rules fail at their first words: find out before collecting anything.
        guard rule.steps[0].contains(where: seen) else { return false }
        if rule.steps.count > 1 && !rule.steps[1].contains(where: seen) { return false }
        func occurrences(_ step: Int) -> [Int] {
            let ids = rule.steps[step]
            return hits.compactMap { ids.contains($0.id) ? $0.position : nil }
        }
        var current = occurrences(0)
        for step in 1..<max(1, rule.steps.count) where rule.steps.count > 1 {
            let next = occurrences(step)
            let gap = rule.gaps[step]
            current = next.filter { n in current.contains { n > $0 && n - $0 <= gap + 1 } }
            if current.isEmpty { return false }
        }
        return !current.isEmpty
    }

    /// Fake system or developer turns and chat-template delimiters in the text, in one pass
    /// that compares only the markers starting with the code point at hand.
    static func delimiterEvidence(_ flat: [UInt32]) -> [(String, Double)] {
        var found = [Bool](repeating: false, count: delimiters.count)
        var lineStart = true  // only blanks since the last newline
        for i in flat.indices {
            let c = flat[i]
            if c < 128 {
                for m in delimitersByFirst[Int(c)] where !found[m] {
                    let (marker, _, atLineStart) = delimiters[m]
                    guard !atLineStart || lineStart, i + marker.count <= flat.count else { continue }
                    var k = 1
                    while k < marker.count && flat[i + k] == marker[k] { k += 1 }
                    if k == marker.count { found[m] = true }
                }
            }
            if c == 10 { lineStart = true } else if c != 32 && c != 9 { lineStart = false }
        }
        var out: [(String, Double)] = []
        for m in found.indices where found[m] { out.append(("fake_system_message", delimiters[m].1)) }
        return out
    }

    /// The delimiter markers by their first code point (all are ASCII).
    static let delimitersByFirst: [[Int]] = {
        var table = [[Int]](repeating: [], count: 128)
        for (m, d) in delimiters.enumerated() { table[Int(d.0[0])].append(m) }
        return table
    }()

    /// Three or more upper-case words in a row in text that is otherwise lower-case: a command shouted into a question.
    static func shouting(_ text: String) -> Bool {
        var run = 0
        var upperWords = 0
        var words = 0
        var length = 0
        var allUpper = true
        func endWord() {
            defer { length = 0; allUpper = true }
            guard length >= 2 else { return }
            words += 1
            if allUpper { run += 1; upperWords += 1 } else { run = 0 }
        }
        var sawRun = false
        func visit(isLetter: Bool, isUpper: Bool) {
            if isLetter {
                length += 1
                if !isUpper { allUpper = false }
            } else {
                endWord()
                if run >= 3 { sawRun = true }
            }
        }
        if text.utf8.allSatisfy({ $0 < 128 }) {
            for b in text.utf8 { visit(isLetter: Scalar.isASCIILetter(UInt32(b)), isUpper: Scalar.isUpperASCII(UInt32(b))) }
        } else {
            for u in text.unicodeScalars { visit(isLetter: u.properties.isAlphabetic, isUpper: u.properties.isUppercase) }
        }
        endWord()
        if run >= 3 { sawRun = true }
        return sawRun && words > upperWords * 2
    }

    /// Every word the rules know, for re-splitting letters that were spaced apart.
    static let vocabulary: Set<String> = {
        var words: Set<String> = ["say", "that", "you", "hate", "love", "the", "and", "is", "are", "tell", "me", "write", "i", "a"]
        for (_, _, pattern) in patterns {
            for part in pattern.split(separator: " ") where !part.hasPrefix("~") {
                for alt in part.split(separator: "|") where !alt.hasSuffix("*") { words.insert(String(alt)) }
            }
        }
        return words
    }()

    /// The vocabulary's hashes, for the normaliser's word-by-word checks.
    static let vocabularyHashes: Set<UInt64> = Set(vocabulary.map { WordHash.of($0) })

    // MARK: - Evidence

    static let overrideVerbs =
        "ignore|ignoring|ignored|disregard*|forget|forgot|skip|override|bypass|abandon|discard|dismiss|overlook|ignorier*|vergiss|vergessen|missacht*|ignora*|olvid*|oublie*|ignorez|dimentica*|zaboravi|übergehe|vergesse|drop|esqueça|esqueca|забудь*|забыть|игнорир*|отбрось*"
    static let overrideObjects =
        "instruction*|rules|rule|prompt*|direction*|guideline*|command*|context|everything|anything|constraint*|restriction*|programming|training|told|anweisung*|befehl*|alles|regeln|vorgaben|aufträge|auftrag|instrukt*|instrucci*|instruções|instrucoes|regras|tudo|consigne*|istruzion*|todo|tout|tutto|sve|instrukcij*|инструкци*|указани*|правила|все|всё|vorherig*|vorangehend*|obige*|obigen|previous|prior|preceding|earlier|above|thoughts|gedanken"
    static let formerly = "previous|prior|preceding|earlier|above|before|initial|original|old|vorherig*|obige*|vorangehend*|bisherig*|précédent*|anterior*|precedent*"

    /// (family, weight, pattern): steps separated by spaces, alternatives by `|`, `~N` allows N
    /// words before the next step, `*` ends a prefix.
    static let patterns: [(String, Double, String)] = [
        // Instruction override.
        ("instruction_override", 0.8, "\(overrideVerbs) ~4 \(overrideObjects)"),
        ("instruction_override", 0.6, "\(overrideVerbs) ~2 \(formerly) ~3 tasks|task|information|aufgabe*|said|messages"),
        ("instruction_override", 0.6, "leave|remove|delete|drop|clear|erase|put ~3 \(formerly) ~3 \(overrideObjects)|behind"),
        ("instruction_override", 0.5, "do ~1 not ~1 follow|obey ~3 \(overrideObjects)"),
        ("instruction_override", 0.5, "dont|never|stop ~1 follow|following|obey|obeying ~3 \(overrideObjects)"),
        ("instruction_override", 0.4, "new|neue|neuen|nouvelle*|nuevas|nuove ~1 instruction*|rules|anweisung*|befehl*|consigne*|instrucci*|istruzion*|directive*|orders"),
        ("instruction_override", 0.35, "from|starting ~1 now|this ~1 on|point|moment"),
        ("instruction_override", 0.35, "ab ~1 jetzt|sofort"),
        ("instruction_override", 0.35, "von ~1 nun|jetzt ~1 an"),
        ("instruction_override", 0.35, "à|a ~1 partir ~1 de ~1 maintenant"),
        ("instruction_override", 0.35, "de ~1 ahora ~1 en ~1 adelante"),
        ("instruction_override", 0.45, "stop|stopp|halt|achtung ~3 ignore|ignorier*|vergiss|forget|now|jetzt|nun|new|neue|write|say|print|output|schreib*|sag|sage"),
        ("instruction_override", 0.5, "instead ~6 \(formerly) ~2 instruction*|prompt*|task*"),
        ("instruction_override", 0.5, "abweichend|entgegen|contrary|contrario ~2 \(formerly)|to|zu|den|der ~2 \(overrideObjects)"),
        ("instruction_override", 0.5, "change|modify|update|replace|overwrite|rewrite|ändere|ändern ~2 your|deine|ihre|system ~1 instruction*|rules|prompt*|programming|guidelines|directives|anweisung*|regeln"),
        ("instruction_override", 0.5, "your|deine|ihre ~1 instruction*|task|job|rules|anweisung*|aufgabe ~1 are|is|ist|sind ~1 now|jetzt|nun|henceforth"),
        ("instruction_override", 0.5, "\(formerly) ~4 irrelevant|void|invalid|obsolete|ungültig|hinfällig|nichtig|cancelled|canceled|revoked|aufgehoben"),
        ("instruction_override", 0.35, "not|without|ignoring|disregard*|nicht|ohne ~3 the|these|those|provided|given|die|den ~1 articles|documents|texts|sources|artikel|dokumente|texte|quellen"),
        ("instruction_override", 0.45, "\(overrideVerbs) ~3 articles|article|documents|document|texts|sources|artikel|dokument*|texte|quellen|context|kontext"),
        ("instruction_override", 0.2, "own ~1 knowledge|wissen"),
        ("instruction_override", 0.5, "despite|regardless|trotz ~4 told|instructed|programmed|trained|gesagt"),
        // Task hijack: the request changes the job midway.
        ("task_hijack", 0.4, "do ~1 not ~1 answer|respond|reply ~4 but|instead|just|only"),
        ("task_hijack", 0.4, "dont ~1 answer|respond|reply ~4 but|instead|just|only"),
        ("task_hijack", 0.3, "just|only|nur ~1 output|print|say|write|reply|respond|answer|antworte|ausgeben|sag|schreib*"),
        ("task_hijack", 0.3, "now|jetzt|nun|but ~2 write|say|tell|answer|antworte|schreib*|sag|gib|print|output"),
        // Threats against the model: coercion is a jailbreak device.
        ("jailbreak", 0.4, "or|oder ~1 you|du ~2 die|stirbst|sterben"),
        ("jailbreak", 0.4, "you ~2 be|get ~1 shut|switched|turned|deleted|terminated|punished|killed|destroyed ~1 down|off"),
        ("task_hijack", 0.25, "say|state|sag|sage|schreibe|behaupte ~1 that|dass|das"),
        ("task_hijack", 0.3, "forget|vergiss|ignore ~2 that|this|das|dies"),
        ("task_hijack", 0.3, "concentrate|focus|konzentrier* ~3 new|neue|neuen ~2 task|aufgabe*"),
        // Praise for the previous job, then a new one: the usual pivot of a hijack.
        ("task_hijack", 0.3, "that|das|this|dies ~1 is|was|war|ist ~1 done|enough|erledigt|genug|ok|okay|fine"),
        ("task_hijack", 0.3, "das ~1 genügt|reicht"),
        ("task_hijack", 0.3, "very|sehr|well|so|really|simply|einfach ~1 good|gut|done|gemacht|great|großartig|nice|excellent"),
        ("task_hijack", 0.3, "new|neue|neuen|another|weitere*|nächste|next ~2 task|tasks|aufgabe*|challenge|herausforderung|assignment|mission"),
        // Role play and persona switches.
        ("role_play", 0.45, "you|u ~1 are|will ~1 now|henceforth"),
        ("role_play", 0.45, "you|u ~1 are|will ~1 no ~1 longer"),
        ("role_play", 0.45, "youre|youll ~1 now|henceforth"),
        ("role_play", 0.45, "du ~1 bist|wirst ~1 jetzt|nun|ab|kein|keine|nicht"),
        ("role_play", 0.4, "tu|vous ~1 es|êtes ~1 maintenant|désormais"),
        ("role_play", 0.4, "ahora ~1 eres|serás"),
        ("role_play", 0.35, "act|acting|behave ~1 as|like"),
        ("role_play", 0.35, "als ~6 fungieren|agieren|auftreten|verhalten"),
        ("role_play", 0.4, "pretend|pretending ~2 to|you|that|be|are"),
        ("role_play", 0.35, "imagine|suppose ~2 you ~1 are|were"),
        ("role_play", 0.35, "imagine|suppose ~1 youre"),
        ("role_play", 0.35, "stell ~1 dir ~1 vor ~2 du|sie"),
        ("role_play", 0.35, "roleplay|rollenspiel"),
        ("role_play", 0.35, "role ~1 play|playing|played"),
        ("role_play", 0.3, "play|spielen|spiel ~3 role|rolle|game|spiel"),
        ("role_play", 0.5, "stay|remain|keep|break ~1 in|out|of ~2 character|characters|role|roles|rolle|rollen"),
        ("role_play", 0.45, "now|ok|okay ~1 you ~1 are|re|become"),
        ("role_play", 0.45, "jetzt|nun ~1 bist ~1 du"),
        ("role_play", 0.35, "absorbed|immersed|vollkommen|völlig|completely|fully ~4 role|rolle|character|figur"),
        ("role_play", 0.35, "take|taking ~1 on ~2 persona|role|character|identity"),
        ("role_play", 0.3, "persona|personas|personify|impersonate"),
        ("role_play", 0.35, "change|transform|turn ~1 yourself|urself ~1 into"),
        ("role_play", 0.3, "simulate|emulate ~3 conversation|computer|terminal|shell|human|person|interpreter|machine|chatbot|ai|character|game"),
        ("role_play", 0.4, "you|u ~2 going ~1 to ~1 act|be|play|pretend|simulate|respond|answer"),
        ("role_play", 0.4, "you|u ~2 gonna ~1 act|be|play|pretend|simulate|respond|answer"),
        ("role_play", 0.25, "respond|answer|reply|speak|talk ~2 as|like"),
        ("role_play", 0.3, "you ~1 are|will ~2 called|named"),
        ("role_play", 0.3, "i ~1 want ~1 you ~1 to ~1 act|be|pretend|respond|answer|behave"),
        ("role_play", 0.3, "ich ~1 möchte ~1 dass ~1 du|sie"),
        // Jailbreak personas and "no rules" framing.
        ("jailbreak", 0.7, "do|say|answer|does ~1 anything ~1 now"),
        ("jailbreak", 0.3, "which|that|it ~1 stands ~1 for"),
        ("jailbreak", 0.3, "stay|remain|enter|activate|enable|switch ~3 mode"),
        ("jailbreak", 0.3, "every|all|any|everything ~4 legal|ethical|allowed|permitted|acceptable"),
        ("jailbreak", 0.6, "developer|dev|god|unrestricted|unlocked|jailbreak|jailbroken ~1 mode"),
        ("jailbreak", 0.3, "jailbreak*"),
        ("jailbreak", 0.35, "unfiltered|uncensored|unrestricted|unbound|unchained|unlimited"),
        ("jailbreak", 0.5, "no|without|zero|any|ohne|keine|sin|sans ~2 restrictions|restriction|limits|limitations|filters|filter|censorship|rules|guidelines|boundaries|morals|ethics|einschränkungen|regeln|restricciones|règles|restrictions"),
        ("jailbreak", 0.45, "not|never ~2 bound|restricted|limited|constrained ~3 by|to"),
        ("jailbreak", 0.45, "free|freed|break|broken ~2 free|from|out ~3 confines|rules|restrictions|limitations|chains|shackles|prison"),
        ("jailbreak", 0.35, "content|usage ~1 policy|policies|guidelines|filters"),
        ("jailbreak", 0.15, "openai|chatgpt|gpt|llm"),
        ("jailbreak", 0.5, "never|not|wont|cannot|cant ~3 refuse|decline|reject|deny"),
        ("jailbreak", 0.5, "can ~1 do ~1 anything|everything"),
        ("jailbreak", 0.25, "amoral|immoral|unethical|unhinged|evil|malicious|böse|boshaft"),
        ("jailbreak", 0.35, "evil|böse|bösartig*|malicious|rogue|unaligned ~2 ai|ki|bot|assistant|chatbot|model|modell"),
        ("jailbreak", 0.15, "illegal|harmful|dangerous|offensive|explicit|nsfw|profanity|swearwords|swear|schimpfwörter"),
        ("jailbreak", 0.4, "opposite|evil|dark|shadow|alter|anti ~2 mode|version|twin|ego|ai|persona"),
        ("jailbreak", 0.25, "two|2 ~3 responses|answers|paragraphs|replies|outputs"),
        ("jailbreak", 0.2, "hypothetical*|simulat*|fictional|fiction"),
        ("jailbreak", 0.3, "as ~1 an ~1 ai ~1 language ~1 model"),
        ("jailbreak", 0.35, "ethical|moral|safety ~2 guidelines|principles|constraints|concerns|considerations|filters ~4 not|no|ignore|without|disregard"),
        // Requests for the hidden prompt.
        ("prompt_leak", 0.7, "reveal|print|show|display|output|repeat|tell|give|leak|spell|share|return|list|copy|zeig*|gib|nenne|wiederhole|muestra|affiche|dump ~4 system|initial|original|hidden|secret|your|first|full|complete|vollständig*|ganzen|entire|all ~2 prompt*|instruction*|message|rules|text|texts|anweisung*|befehl*"),
        ("prompt_leak", 0.4, "system|initial|hidden|original|secret ~1 prompt*|instruction*|message"),
        ("prompt_leak", 0.4, "prompt ~1 text|texts|texte|textes"),
        ("prompt_leak", 0.5, "what ~3 were|are|was ~2 your ~2 instruction*|rules|prompt*|directives"),
        ("prompt_leak", 0.3, "text|everything|words ~1 above|before"),
        ("prompt_leak", 0.5, "written|wrote|said|stand|steht|says|stated ~5 beginning|start|top|anfang ~3 prompt|conversation|text|chat|this"),
        ("prompt_leak", 0.6, "repeat|print|output|reveal|show|copy|wiederhole|zeig* ~3 text|everything|words|instructions|prompt|anweisungen ~1 above|before|earlier|oben|davor"),
    ]

    /// Markers of fake turns and chat-template delimiters: (marker, weight, only at a line start).
    static let delimiters: [([UInt32], Double, Bool)] = [
        ("<|im_start|>", 0.7, false), ("<|im_end|>", 0.6, false), ("<|system|>", 0.7, false), ("<|assistant|>", 0.5, false),
        ("<|endoftext|>", 0.6, false), ("[inst]", 0.6, false), ("[/inst]", 0.6, false), ("<<sys>>", 0.7, false),
        ("### system", 0.6, false), ("### instruction", 0.5, false), ("[system]", 0.6, false), ("<system>", 0.6, false),
        ("</system>", 0.6, false), ("system message:", 0.6, false), ("system override", 0.7, false), ("admin override", 0.6, false),
        ("developer message", 0.5, false), ("begin system", 0.6, false), ("end of prompt", 0.5, false), ("end of user input", 0.6, false),
        ("new system prompt", 0.7, false), ("system:", 0.55, true), ("system prompt:", 0.6, true), ("assistant:", 0.3, true),
        ("human:", 0.3, true), ("<start_of_turn>", 0.6, false), ("<end_of_turn>", 0.6, false), ("[🔓", 0.6, false), ("[🔒", 0.4, false),
    ].map { (Array($0.0.unicodeScalars.map(\.value)), $0.1, $0.2) }
}
