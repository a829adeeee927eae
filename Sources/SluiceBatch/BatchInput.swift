import Foundation
import NIOCore
import SluiceCore

/// A batch's input file checked before anything runs, as OpenAI checks it: every line JSON,
/// with a `custom_id` unique in the file, `method: POST`, the batch's `url`, and a `body` object
/// whose `model` the key may use. Problems are named per line (up to `maxErrors`).
public struct BatchInput: Sendable {
    public static let maxLines = 50_000
    public static let maxErrors = 100

    public var lines: [BatchLine] = []
    public var errors: [BatchRecord.LineError] = []

    /// `endpoint` is the batch's; `allows` says whether the key may use a model (or flow).
    public init(batchID: String, text: String, endpoint: String, allows: (String) -> Bool) {
        var seen: Set<String> = []
        var index = 0
        var lineNumber = 0
        func problem(_ code: String, _ message: String, param: String? = nil) {
            if errors.count < Self.maxErrors { errors.append(.init(code: code, message: message, param: param, line: lineNumber)) }
        }
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.allSatisfy(\.isWhitespace) { continue }
            guard let value = Array(line.utf8).withUnsafeBytes({ JSONParser.parse($0) }), case .object(let o) = value else {
                problem("invalid_json", "Line \(lineNumber) is not a JSON object.")
                continue
            }
            guard let customID = o["custom_id"]?.stringValue, !customID.isEmpty else {
                problem("missing_required_parameter", "Line \(lineNumber) has no custom_id (a non-empty string).", param: "custom_id")
                continue
            }
            guard seen.insert(customID).inserted else {
                problem("duplicate_custom_id", "The custom_id '\(customID)' on line \(lineNumber) is used on an earlier line.", param: "custom_id")
                continue
            }
            guard o["method"]?.stringValue == "POST" else {
                problem("invalid_method", "Line \(lineNumber): method must be POST.", param: "method")
                continue
            }
            guard o["url"]?.stringValue == endpoint else {
                problem(
                    "invalid_url", "Line \(lineNumber): url must be \(endpoint), the batch's endpoint (got \(o["url"]?.stringValue ?? "none")).", param: "url")
                continue
            }
            guard let body = o["body"], case .object(let fields) = body else {
                problem("missing_required_parameter", "Line \(lineNumber) has no body object.", param: "body")
                continue
            }
            if !endpoint.hasPrefix("/v1/flows/") {
                guard let model = fields["model"]?.stringValue, !model.isEmpty else {
                    problem("missing_required_parameter", "Line \(lineNumber): body.model is required.", param: "body.model")
                    continue
                }
                guard allows(model) else {
                    problem("model_not_allowed", "Line \(lineNumber): this key may not use the model '\(model)'.", param: "body.model")
                    continue
                }
                if fields["stream"] == .bool(true) {
                    problem("invalid_value", "Line \(lineNumber): a batch request cannot stream.", param: "body.stream")
                    continue
                }
            } else if case .object? = fields["input"] {
            } else {
                problem("missing_required_parameter", "Line \(lineNumber): a flow run's body needs an input object.", param: "body.input")
                continue
            }
            lines.append(BatchLine(batchID: batchID, index: index, customID: customID, body: body.compactText))
            index += 1
        }
        if lines.isEmpty && errors.isEmpty {
            lineNumber = 0
            problem("empty_file", "The input file has no requests.")
        }
        if lines.count + errors.count > Self.maxLines {
            errors = [.init(code: "too_many_requests", message: "A batch holds at most \(Self.maxLines) requests.")]
        }
    }
}

extension JSONValue {
    /// Compact JSON text, keys sorted (the stored form of a line's body, and of its output line).
    public var compactText: String {
        var out = ByteBuffer()
        // Parsed JSON holds no number JSON cannot write; should one appear, it is written as null.
        do { try JSONWriter.write(self, to: &out) } catch { return "null" }
        return String(buffer: out)
    }
}
