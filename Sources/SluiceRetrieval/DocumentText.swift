import Foundation
import SluiceCore

/// A run of a document's text under one heading path: a paragraph, a list item, a table row, a
/// JSON string field. Chunks are packed from blocks and never mix two sections.
public struct TextBlock: Sendable, Hashable {
    /// The headings above the block, outermost first ("Install", "On Linux").
    public var headings: [String]
    public var text: String
    /// The PDF page the block is on (1-based), or the JSON Lines line.
    public var page: Int?

    public init(headings: [String] = [], text: String, page: Int? = nil) {
        self.headings = headings
        self.text = text
        self.page = page
    }
}

/// What kind of document a file is, from its name and its first bytes.
public enum DocumentFormat: String, Sendable, CaseIterable {
    case text, markdown, html, pdf, json, jsonLines = "jsonl"

    /// The format, or nil when Sluice cannot read the file (the caller names the type in the error).
    public static func detect(filename: String, bytes: [UInt8]) -> DocumentFormat? {
        let ext = (filename as NSString).pathExtension.lowercased()
        if bytes.starts(with: Array("%PDF-".utf8)) { return .pdf }
        switch ext {
        case "txt", "text", "log", "csv", "tsv", "rst": return .text
        case "md", "markdown", "mdx": return .markdown
        case "html", "htm", "xhtml": return .html
        case "pdf": return .pdf
        case "json": return .json
        case "jsonl", "ndjson": return .jsonLines
        case "":
            // No extension: text when it decodes as UTF-8 and has no NUL bytes.
            return looksLikeText(bytes) ? .text : nil
        default:
            return nil
        }
    }

    static func looksLikeText(_ bytes: [UInt8]) -> Bool {
        let head = bytes.prefix(4096)
        return !head.contains(0) && String(validating: head, as: UTF8.self) != nil
    }
}

/// Turns a file's bytes into text blocks: plain text and Markdown by paragraphs under their
/// headings, HTML as text with its headings kept (scripts, styles and markup dropped), PDF
/// through `pdftotext` (poppler-utils), JSON and JSON Lines as their string fields.
public enum DocumentText {
    /// Extracts `bytes`; errors are `SluiceError`s whose message names what is wrong with the file.
    public static func extract(_ bytes: [UInt8], format: DocumentFormat, pdftotext: String = "pdftotext") throws -> [TextBlock] {
        switch format {
        case .text: return markdown(try utf8(bytes), headings: false)
        case .markdown: return markdown(try utf8(bytes), headings: true)
        case .html: return html(String(decoding: bytes, as: UTF8.self))
        case .pdf: return try pdf(bytes, tool: pdftotext)
        case .json:
            guard let value = bytes.withUnsafeBytes({ JSONParser.parse($0) }) else {
                throw SluiceError(.invalidValue, "The file is not valid JSON.")
            }
            var out: [TextBlock] = []
            strings(value, path: [], into: &out, page: nil)
            return out
        case .jsonLines:
            var out: [TextBlock] = []
            var line = 0
            for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                line += 1
                let trimmed = raw.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
                if trimmed.isEmpty || trimmed.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                guard let value = Array(raw).withUnsafeBytes({ JSONParser.parse($0) }) else {
                    throw SluiceError(.invalidValue, "Line \(line) of the file is not valid JSON.")
                }
                // One record's string fields belong together: one block per record.
                var fields: [TextBlock] = []
                strings(value, path: [], into: &fields, page: line)
                let text = fields.map(\.text).joined(separator: "\n")
                if !text.isEmpty { out.append(TextBlock(headings: [], text: text, page: line)) }
            }
            return out
        }
    }

    static func utf8(_ bytes: [UInt8]) throws -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else { throw SluiceError(.invalidValue, "The file is not UTF-8 text.") }
        return s
    }

    // MARK: Markdown and plain text

    /// Paragraphs (blank-line separated; a list item or fenced code block is one) under their
    /// `#` headings; plain text has no headings.
    static func markdown(_ text: String, headings recognise: Bool) -> [TextBlock] {
        var out: [TextBlock] = []
        var path: [(level: Int, title: String)] = []
        var paragraph: [Substring] = []
        var inFence = false
        func flush() {
            let joined = paragraph.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            if !joined.isEmpty { out.append(TextBlock(headings: path.map(\.title), text: joined)) }
            paragraph.removeAll()
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            let trimmed = line.drop { $0 == " " }
            if recognise, trimmed.hasPrefix("```") || trimmed.hasPrefix("~~~") {
                inFence.toggle()
                paragraph.append(line)
                if !inFence { flush() }
                continue
            }
            if inFence {
                paragraph.append(line)
                continue
            }
            if recognise, let heading = heading(trimmed) {
                flush()
                while let last = path.last, last.level >= heading.level { path.removeLast() }
                path.append(heading)
                continue
            }
            if trimmed.isEmpty {
                flush()
                continue
            }
            // A new list item starts a new block.
            if recognise, isListItem(trimmed), !paragraph.isEmpty { flush() }
            paragraph.append(line)
        }
        flush()
        return out
    }

    static func heading(_ line: Substring) -> (level: Int, title: String)? {
        let hashes = line.prefix { $0 == "#" }.count
        guard (1...6).contains(hashes) else { return nil }
        let rest = line.dropFirst(hashes)
        guard rest.isEmpty || rest.first == " " || rest.first == "\t" else { return nil }
        let title = rest.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "#")).trimmingCharacters(in: .whitespaces)
        return title.isEmpty ? nil : (hashes, title)
    }

    static func isListItem(_ line: Substring) -> Bool {
        if line.hasPrefix("- ") || line.hasPrefix("* ") || line.hasPrefix("+ ") { return true }
        let digits = line.prefix { $0.isASCII && $0.isNumber }
        return !digits.isEmpty && digits.count <= 3 && line.dropFirst(digits.count).hasPrefix(". ")
    }

    // MARK: HTML

    static let blockTags: Set<String> = [
        "p", "div", "li", "tr", "td", "th", "br", "section", "article", "header", "footer", "blockquote", "pre", "table", "ul", "ol",
        "dd", "dt", "figcaption", "caption", "main", "nav", "aside", "form", "hr", "title",
    ]
    static let droppedTags: Set<String> = ["script", "style", "noscript", "template", "svg", "head"]

    /// Text with headings kept: `h1`–`h6` open sections, block elements end paragraphs, scripts
    /// and styles are dropped, entities decoded. Tolerant of broken markup (never throws).
    static func html(_ source: String) -> [TextBlock] {
        var out: [TextBlock] = []
        var path: [(level: Int, title: String)] = []
        var text = ""
        var headingLevel: Int?
        var headingText = ""
        var dropping: String?
        var title: String?
        var inTitle = false
        func flush() {
            let t = collapse(text)
            if !t.isEmpty { out.append(TextBlock(headings: path.map(\.title), text: t)) }
            text = ""
        }
        let chars = Array(source.unicodeScalars)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "<" {
                // Comments and declarations.
                if i + 3 < chars.count, chars[i + 1] == "!", chars[i + 2] == "-", chars[i + 3] == "-" {
                    var j = i + 4
                    while j + 2 < chars.count, !(chars[j] == "-" && chars[j + 1] == "-" && chars[j + 2] == ">") { j += 1 }
                    i = min(chars.count, j + 3)
                    continue
                }
                var j = i + 1
                var quote: Unicode.Scalar?
                while j < chars.count {
                    if let q = quote {
                        if chars[j] == q { quote = nil }
                    } else if chars[j] == "\"" || chars[j] == "'" {
                        quote = chars[j]
                    } else if chars[j] == ">" {
                        break
                    }
                    j += 1
                }
                var tag = ""
                tag.unicodeScalars.append(contentsOf: chars[(i + 1)..<min(j, chars.count)])
                i = min(chars.count, j + 1)
                let closing = tag.hasPrefix("/")
                let name = String(
                    tag.drop { $0 == "/" }.prefix { $0.isLetter || $0.isNumber }
                ).lowercased()
                if let d = dropping {
                    if closing && name == d { dropping = nil }
                    continue
                }
                if !closing, droppedTags.contains(name), !tag.hasSuffix("/") {
                    dropping = name
                    continue
                }
                if name == "title" {
                    inTitle = !closing
                    continue
                }
                if name.count == 2, name.first == "h", let level = Int(String(name.last!)), (1...6).contains(level) {
                    if closing {
                        if let l = headingLevel {
                            let t = collapse(headingText)
                            if !t.isEmpty {
                                while let last = path.last, last.level >= l { path.removeLast() }
                                path.append((l, t))
                            }
                        }
                        headingLevel = nil
                        headingText = ""
                    } else {
                        flush()
                        headingLevel = level
                        headingText = ""
                    }
                    continue
                }
                if blockTags.contains(name) {
                    if headingLevel != nil {
                        headingText += " "
                    } else if name == "td" || name == "th" || name == "br" {
                        text += name == "br" ? "\n" : " "
                    } else {
                        flush()
                    }
                }
                continue
            }
            if dropping != nil {
                i += 1
                continue
            }
            var piece = ""
            if c == "&" {
                var j = i + 1
                while j < chars.count, j - i <= 10, chars[j] != ";", chars[j] != "<", chars[j] != " " { j += 1 }
                if j < chars.count, chars[j] == ";" {
                    var name = ""
                    name.unicodeScalars.append(contentsOf: chars[(i + 1)..<j])
                    if let decoded = entity(name) {
                        piece = decoded
                        i = j + 1
                    }
                }
            }
            if piece.isEmpty {
                piece.unicodeScalars.append(c)
                i += 1
            }
            if inTitle {
                title = (title ?? "") + piece
            } else if headingLevel != nil {
                headingText += piece
            } else {
                text += piece
            }
        }
        flush()
        if let title = title.map(collapse), !title.isEmpty {
            out = out.map { TextBlock(headings: [title] + $0.headings.filter { $0 != title }, text: $0.text, page: $0.page) }
        }
        return out
    }

    static func entity(_ name: String) -> String? {
        switch name {
        case "amp": return "&"
        case "lt": return "<"
        case "gt": return ">"
        case "quot": return "\""
        case "apos", "#39": return "'"
        case "nbsp": return " "
        case "mdash": return "—"
        case "ndash": return "–"
        case "hellip": return "…"
        case "rsquo", "lsquo": return "'"
        case "rdquo", "ldquo": return "\""
        default:
            if name.hasPrefix("#x") || name.hasPrefix("#X"), let v = UInt32(name.dropFirst(2), radix: 16), let s = Unicode.Scalar(v) {
                return String(Character(s))
            }
            if name.hasPrefix("#"), let v = UInt32(name.dropFirst()), let s = Unicode.Scalar(v) { return String(Character(s)) }
            return nil
        }
    }

    /// Whitespace runs become one space; newlines from `<br>` are kept.
    static func collapse(_ s: String) -> String {
        s.split(separator: "\n").map { $0.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ") }.filter { !$0.isEmpty }
            .joined(separator: "\n")
    }

    // MARK: PDF

    /// Text through `pdftotext` (pages split at form feeds); a file it cannot read is an error
    /// quoting its message.
    static func pdf(_ bytes: [UInt8], tool: String) throws -> [TextBlock] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-pdf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("in.pdf")
        let output = directory.appendingPathComponent("out.txt")
        try Data(bytes).write(to: input)
        let process = Process()
        if tool.contains("/") {
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = ["-enc", "UTF-8", "-q", input.path, output.path]
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [tool, "-enc", "UTF-8", "-q", input.path, output.path]
        }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw SluiceError(.unsupported, "Cannot read PDF files: \(tool) (poppler-utils) is not installed.")
        }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus == 127 {
            throw SluiceError(.unsupported, "Cannot read PDF files: \(tool) (poppler-utils) is not installed.")
        }
        guard process.terminationStatus == 0, let data = try? Data(contentsOf: output) else {
            let detail = message.trimmingCharacters(in: .whitespacesAndNewlines)
            throw SluiceError(.invalidValue, "The PDF could not be read\(detail.isEmpty ? "" : ": \(detail.prefix(200))").")
        }
        var out: [TextBlock] = []
        for (n, page) in String(decoding: data, as: UTF8.self).split(separator: "\u{0C}", omittingEmptySubsequences: false).enumerated() {
            for block in markdown(String(page), headings: false) {
                out.append(TextBlock(headings: [], text: block.text, page: n + 1))
            }
        }
        return out
    }

    // MARK: JSON

    /// Every string field, its key path as its heading ("items[2].description").
    static func strings(_ value: JSONValue, path: [String], into out: inout [TextBlock], page: Int?) {
        switch value {
        case .string(let s):
            let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
            if !t.isEmpty { out.append(TextBlock(headings: path.isEmpty ? [] : [path.joined(separator: ".")], text: t, page: page)) }
        case .array(let items):
            for (i, item) in items.enumerated() {
                var p = path
                if let last = p.popLast() { p.append("\(last)[\(i)]") } else { p.append("[\(i)]") }
                strings(item, path: p, into: &out, page: page)
            }
        case .object(let members):
            for key in members.keys.sorted() { strings(members[key]!, path: path + [key], into: &out, page: page) }
        default:
            break
        }
    }
}
