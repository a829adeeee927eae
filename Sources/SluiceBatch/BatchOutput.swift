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

    /// A batch as OpenAI writes it.
    public static func batch(_ b: BatchRecord) -> JSONValue {
        func time(_ t: Double?) -> JSONValue { t.map { .int(Int($0)) } ?? .null }
        let errors: JSONValue =
            b.errors.isEmpty
            ? .null
            : .object([
                "object": "list",
                "data": .array(
                    b.errors.map { e in
                        .object([
                            "code": .string(e.code), "message": .string(e.message), "param": e.param.map(JSONValue.string) ?? .null,
                            "line": e.line.map(JSONValue.int) ?? .null,
                        ])
                    }),
            ])
        return .object([
            "id": .string(b.id), "object": "batch", "endpoint": .string(b.endpoint), "errors": errors, "input_file_id": .string(b.inputFileID),
            "completion_window": .string(b.completionWindow), "status": .string(b.status.rawValue),
            "output_file_id": b.outputFileID.map(JSONValue.string) ?? .null, "error_file_id": b.errorFileID.map(JSONValue.string) ?? .null,
            "created_at": time(b.createdAt), "in_progress_at": time(b.inProgressAt), "expires_at": time(b.expiresAt),
            "finalizing_at": time(b.finalizingAt), "completed_at": time(b.completedAt), "failed_at": time(b.failedAt),
            "expired_at": time(b.expiredAt), "cancelling_at": time(b.cancellingAt), "cancelled_at": time(b.cancelledAt),
            "request_counts": .object(["total": .int(b.total), "completed": .int(b.completed), "failed": .int(b.failed)]),
            "metadata": .object(b.metadata.mapValues(JSONValue.string)),
        ])
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

extension BatchStore {
    /// Moves a validating or in-progress batch to `cancelling` (the runners stop claiming its
    /// lines, let the ones in flight finish and write what there is); a batch already cancelling
    /// or cancelled is answered as it is. Throws 409 for a batch that has ended otherwise.
    public func cancel(_ batch: BatchRecord) async throws -> BatchRecord {
        if batch.status != .cancelling && batch.status != .cancelled {
            guard try await transition(batchID: batch.id, from: [.validating, .inProgress], to: .cancelling, at: Date().timeIntervalSince1970) else {
                let now = try await self.batch(id: batch.id) ?? batch
                throw SluiceError(.invalidValue, "Cannot cancel a batch with status '\(now.status.rawValue)'.", status: 409)
            }
        }
        return try await self.batch(id: batch.id) ?? batch
    }
}
