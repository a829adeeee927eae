import Foundation
import SluiceCore

/// How one line of a batch ended, as the executor reports it.
public enum BatchExecution: Sendable {
    /// A final answer: 2xx goes to the output file, anything else to the error file.
    case answered(statusCode: Int, body: JSONValue)
    /// An upstream failure worth another attempt (429, 5xx, a timeout).
    case retryable(statusCode: Int, body: JSONValue)
    /// Sluice's own limit or budget said not now: the line waits without using an attempt.
    case paused(statusCode: Int, body: JSONValue)
}

/// The lines of a batch's output and error files, exactly as OpenAI writes them:
/// `{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`.
public enum BatchOutput {
    /// The request id a line runs under: the same on every attempt and every replica, so that a
    /// line run again after a crash replaces its audit row rather than being billed twice.
    public static func requestID(_ line: BatchLine) -> String { "\(line.batchID)-\(line.index)" }

    static func lineID(_ line: BatchLine) -> String {
        "batch_req_" + String(StableHash.hash(line.batchID + "\u{0}" + String(line.index)), radix: 16)
    }

    /// An answered line (success or an error response).
    public static func answered(_ line: BatchLine, statusCode: Int, body: JSONValue) -> String {
        JSONValue.object([
            "id": .string(lineID(line)), "custom_id": .string(line.customID),
            "response": .object(["status_code": .int(statusCode), "request_id": .string(requestID(line)), "body": body]), "error": .null,
        ]).compactText
    }

    /// A line that never ran (the batch was cancelled or expired).
    public static func notRun(_ line: BatchLine, code: String, message: String) -> String {
        JSONValue.object([
            "id": .string(lineID(line)), "custom_id": .string(line.customID), "response": .null,
            "error": .object(["code": .string(code), "message": .string(message)]),
        ]).compactText
    }
}

/// FNV-1a: a line's output id, stable across replicas.
enum StableHash {
    static func hash(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        return h
    }
}
