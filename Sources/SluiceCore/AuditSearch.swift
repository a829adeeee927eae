import Foundation

/// A search of the audit log: filters, newest first, one page at a time.
public struct AuditSearch: Sendable, Hashable {
    /// A status code, or a class of them (`4xx`).
    public enum StatusFilter: Sendable, Hashable {
        case exact(Int)
        case classOf(Int)
    }

    /// Where the previous page ended: rows strictly older (by time, then id) come next.
    public struct Cursor: Sendable, Hashable {
        public var time: Double
        public var id: String

        public init(time: Double, id: String) {
            self.time = time
            self.id = id
        }

        /// An opaque token for `next_cursor`.
        public var encoded: String {
            Data("\(time.bitPattern):\(id)".utf8).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }

        /// The cursor a token stands for; nil when it is not one.
        public init?(encoded: String) {
            var b64 = encoded.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while b64.utf8.count % 4 != 0 { b64 += "=" }
            guard let data = Data(base64Encoded: b64), let text = String(data: data, encoding: .utf8),
                let colon = text.firstIndex(of: ":"), let bits = UInt64(text[..<colon])
            else { return nil }
            let time = Double(bitPattern: bits)
            guard time.isFinite else { return nil }
            self.init(time: time, id: String(text[text.index(after: colon)...]))
        }
    }

    /// Unix seconds, inclusive.
    public var from: Double?
    /// Unix seconds, exclusive.
    public var to: Double?
    public var keyID: String?
    public var teamID: String?
    /// The flow run, and optionally its version.
    public var flow: String?
    public var flowVersion: Int?
    /// The conversation the requests continued.
    public var conversationID: String?
    /// The experiment, and one of its variants.
    public var experiment: String?
    public var variant: String?
    /// Matches the model asked for or the deployment that served.
    public var model: String?
    public var status: StatusFilter?
    /// `hit`, `semantic-hit`, `miss`, `off`…
    public var cache: String?
    /// Free text, matched case-insensitively within the id, model, deployment, endpoint, key, error code and kept bodies.
    public var text: String?
    public var limit: Int
    public var cursor: Cursor?

    public init(
        from: Double? = nil, to: Double? = nil, keyID: String? = nil, teamID: String? = nil, flow: String? = nil, flowVersion: Int? = nil,
        model: String? = nil, status: StatusFilter? = nil, cache: String? = nil, text: String? = nil, limit: Int = 50, cursor: Cursor? = nil,
        experiment: String? = nil, variant: String? = nil
    ) {
        self.experiment = experiment
        self.variant = variant
        self.flow = flow
        self.flowVersion = flowVersion
        self.from = from
        self.to = to
        self.keyID = keyID
        self.teamID = teamID
        self.model = model
        self.status = status
        self.cache = cache
        self.text = text
        self.limit = limit
        self.cursor = cursor
    }

    /// The filters as SQL conditions with `?` placeholders and their values in order; both stores
    /// build their WHERE clause from this one list (PostgreSQL numbers the placeholders).
    public var conditions: [(sql: String, values: [UsageQuery.Value])] {
        var out: [(String, [UsageQuery.Value])] = []
        if let from { out.append(("time >= ?", [.number(from)])) }
        if let to { out.append(("time < ?", [.number(to)])) }
        if let keyID { out.append(("key_id = ?", [.text(keyID)])) }
        if let teamID { out.append(("team_id = ?", [.text(teamID)])) }
        if let flow { out.append(("flow = ?", [.text(flow)])) }
        if let flowVersion { out.append(("flow_version = ?", [.number(Double(flowVersion))])) }
        if let conversationID { out.append(("conversation_id = ?", [.text(conversationID)])) }
        if let experiment { out.append(("experiment = ?", [.text(experiment)])) }
        if let variant { out.append(("variant = ?", [.text(variant)])) }
        if let model { out.append(("(model_requested = ? OR deployment = ?)", [.text(model), .text(model)])) }
        switch status {
        case .exact(let code)?: out.append(("status = ?", [.number(Double(code))]))
        case .classOf(let hundreds)?: out.append(("status >= ? AND status < ?", [.number(Double(hundreds * 100)), .number(Double(hundreds * 100 + 100))]))
        case nil: break
        }
        if let cache { out.append(("cache_status = ?", [.text(cache)])) }
        if let text, !text.isEmpty {
            let escaped = text.lowercased().replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_")
            let pattern = UsageQuery.Value.text("%" + escaped + "%")
            let columns = ["id", "model_requested", "deployment", "endpoint", "key_id", "error_code", "request_body", "response_body"]
            out.append(("(" + columns.map { "LOWER(COALESCE(\($0), '')) LIKE ? ESCAPE '\\'" }.joined(separator: " OR ") + ")", columns.map { _ in pattern }))
        }
        if let cursor { out.append(("(time < ? OR (time = ? AND id < ?))", [.number(cursor.time), .number(cursor.time), .text(cursor.id)])) }
        return out
    }
}
