import Foundation
import NIOCore
import SluiceCore

/// A `multipart/form-data` body (RFC 7578), as `POST /v1/files` takes it: each part's name,
/// filename and bytes. Anything malformed is a 400 saying what.
struct MultipartForm {
    struct Part {
        var name: String
        var filename: String?
        var contentType: String?
        var body: ArraySlice<UInt8>
    }

    var parts: [Part]

    func part(_ name: String) -> Part? { parts.first { $0.name == name } }

    func text(_ name: String) -> String? {
        part(name).map { String(decoding: $0.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// The boundary of a `multipart/form-data` content type.
    static func boundary(contentType: String?) throws -> String {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data") else {
            throw SluiceError(.invalidRequest, "Upload files as multipart/form-data with a 'file' part and a 'purpose' field.")
        }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == "boundary" {
                let value = pair[1].hasPrefix("\"") && pair[1].hasSuffix("\"") && pair[1].count >= 2 ? String(pair[1].dropFirst().dropLast()) : pair[1]
                guard !value.isEmpty, value.utf8.count <= 200 else { break }
                return value
            }
        }
        throw SluiceError(.invalidRequest, "The multipart/form-data content type has no boundary.")
    }

    static func parse(_ body: [UInt8], boundary: String) throws -> MultipartForm {
        let delimiter = Array("--\(boundary)".utf8)
        guard var position = find(delimiter, in: body, from: 0) else {
            throw SluiceError(.invalidRequest, "The multipart body does not contain its boundary.")
        }
        var parts: [Part] = []
        while true {
            position += delimiter.count
            // "--" after a delimiter ends the body.
            if body.count >= position + 2, body[position] == 0x2D, body[position + 1] == 0x2D { break }
            guard let lineEnd = find([0x0D, 0x0A], in: body, from: position) else {
                throw SluiceError(.invalidRequest, "The multipart body ends inside a part.")
            }
            let headersEnd = find([0x0D, 0x0A, 0x0D, 0x0A], in: body, from: lineEnd)
            guard let headersEnd else { throw SluiceError(.invalidRequest, "A multipart part has no end to its headers.") }
            let headerText = String(decoding: body[(lineEnd + 2)..<headersEnd], as: UTF8.self)
            let contentStart = headersEnd + 4
            guard let next = find([0x0D, 0x0A] + delimiter, in: body, from: contentStart) else {
                throw SluiceError(.invalidRequest, "The multipart body ends without its closing boundary.")
            }
            var name: String?
            var filename: String?
            var contentType: String?
            for line in headerText.split(separator: "\r\n") {
                let pair = line.split(separator: ":", maxSplits: 1)
                guard pair.count == 2 else { continue }
                let key = pair[0].trimmingCharacters(in: .whitespaces).lowercased()
                let value = pair[1].trimmingCharacters(in: .whitespaces)
                if key == "content-disposition" {
                    name = parameter("name", in: value)
                    filename = parameter("filename", in: value)
                } else if key == "content-type" {
                    contentType = value
                }
            }
            guard let name else { throw SluiceError(.invalidRequest, "A multipart part has no name in its Content-Disposition.") }
            parts.append(Part(name: name, filename: filename, contentType: contentType, body: body[contentStart..<next]))
            position = next + 2
        }
        return MultipartForm(parts: parts)
    }

    /// A `key="value"` (or bare `key=value`) parameter of a header value.
    static func parameter(_ key: String, in header: String) -> String? {
        for piece in header.split(separator: ";").dropFirst() {
            let pair = piece.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == key else { continue }
            var value = pair[1].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
                value = String(value.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"")
            }
            return value
        }
        return nil
    }

    /// The first index of `needle` in `haystack` at or after `start`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        let first = needle[0]
        var i = start
        let last = haystack.count - needle.count
        return haystack.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { n in
                while i <= last {
                    if h[i] == first {
                        var j = 1
                        while j < n.count, h[i + j] == n[j] { j += 1 }
                        if j == n.count { return i }
                    }
                    i += 1
                }
                return nil
            }
        }
    }
}
