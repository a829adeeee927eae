import SluiceCore

/// OpenAI's search `filters`: a comparison (`eq ne gt gte lt lte in nin`) of one attribute of a
/// file with a value, or an `and` / `or` of filters. A file without the attribute matches only `ne` and `nin`.
public indirect enum AttributeFilter: Sendable, Hashable {
    public enum Comparison: String, Sendable, Hashable, CaseIterable { case eq, ne, gt, gte, lt, lte, `in`, nin }

    case compare(Comparison, key: String, value: JSONValue)
    case and([AttributeFilter])
    case or([AttributeFilter])

    /// Parses a filter; errors name the JSON path (`param` is `filters...`).
    public static func parse(_ value: JSONValue, path: String = "filters") throws -> AttributeFilter {
        guard case .object(let o) = value else { throw SluiceError(.invalidType, "\(path) must be an object.", param: path) }
        guard let type = o["type"]?.stringValue else {
            throw SluiceError(.missingParameter, "\(path).type is required (eq, ne, gt, gte, lt, lte, in, nin, and, or).", param: "\(path).type")
        }
        if type == "and" || type == "or" {
            guard case .array(let items)? = o["filters"] else {
                throw SluiceError(.missingParameter, "\(path).filters must be an array of filters for '\(type)'.", param: "\(path).filters")
            }
            guard !items.isEmpty else { throw SluiceError(.invalidValue, "\(path).filters is empty.", param: "\(path).filters") }
            let parsed = try items.enumerated().map { try parse($0.element, path: "\(path).filters[\($0.offset)]") }
            return type == "and" ? .and(parsed) : .or(parsed)
        }
        guard let comparison = Comparison(rawValue: type) else {
            throw SluiceError(
                .invalidValue, "\(path).type '\(type)' is not one of eq, ne, gt, gte, lt, lte, in, nin, and, or.", param: "\(path).type")
        }
        guard let key = o["key"]?.stringValue, !key.isEmpty else {
            throw SluiceError(.missingParameter, "\(path).key is required: the attribute to compare.", param: "\(path).key")
        }
        guard let target = o["value"] else { throw SluiceError(.missingParameter, "\(path).value is required.", param: "\(path).value") }
        switch (comparison, target) {
        case (.in, .array(let items)), (.nin, .array(let items)):
            guard items.allSatisfy(\.isScalar) else {
                throw SluiceError(.invalidValue, "\(path).value must be an array of strings, numbers or booleans.", param: "\(path).value")
            }
        case (.in, _), (.nin, _):
            throw SluiceError(.invalidType, "\(path).value must be an array for '\(type)'.", param: "\(path).value")
        case (.gt, let v), (.gte, let v), (.lt, let v), (.lte, let v):
            guard v.doubleValue != nil || v.stringValue != nil else {
                throw SluiceError(.invalidType, "\(path).value must be a number or a string for '\(type)'.", param: "\(path).value")
            }
        default:
            guard target.isScalar else {
                throw SluiceError(.invalidType, "\(path).value must be a string, number or boolean.", param: "\(path).value")
            }
        }
        return .compare(comparison, key: key, value: target)
    }

    /// Whether a file with these attributes matches.
    public func matches(_ attributes: [String: JSONValue]) -> Bool {
        switch self {
        case .and(let all): return all.allSatisfy { $0.matches(attributes) }
        case .or(let any): return any.contains { $0.matches(attributes) }
        case .compare(let op, let key, let target):
            guard let value = attributes[key] else { return op == .ne || op == .nin }
            switch op {
            case .eq: return Self.equal(value, target)
            case .ne: return !Self.equal(value, target)
            case .in: return target.arrayValue?.contains { Self.equal(value, $0) } ?? false
            case .nin: return !(target.arrayValue?.contains { Self.equal(value, $0) } ?? false)
            case .gt, .gte, .lt, .lte:
                let order: Int
                if let a = value.doubleValue, let b = target.doubleValue {
                    order = a < b ? -1 : (a > b ? 1 : 0)
                } else if let a = value.stringValue, let b = target.stringValue {
                    order = a < b ? -1 : (a > b ? 1 : 0)
                } else {
                    return false
                }
                switch op {
                case .gt: return order > 0
                case .gte: return order >= 0
                case .lt: return order < 0
                default: return order <= 0
                }
            }
        }
    }

    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return a == b
    }
}

extension JSONValue {
    var isScalar: Bool {
        switch self {
        case .string, .int, .double, .bool: return true
        default: return false
        }
    }
}

/// Reciprocal rank fusion (Cormack et al.): each list gives an item `1 / (k + rank)`; items are
/// ordered by the sum. Robust to the lists' scores being on different scales (BM25 and cosine).
public enum RankFusion {
    public static func reciprocal<ID: Hashable>(_ lists: [[ID]], k: Double = 60) -> [(id: ID, score: Double)] {
        var scores: [ID: Double] = [:]
        var firstSeen: [ID: Int] = [:]
        var order = 0
        for list in lists {
            for (rank, id) in list.enumerated() {
                scores[id, default: 0] += 1 / (k + Double(rank + 1))
                if firstSeen[id] == nil {
                    firstSeen[id] = order
                    order += 1
                }
            }
        }
        return scores.map { (id: $0.key, score: $0.value) }.sorted {
            $0.score != $1.score ? $0.score > $1.score : firstSeen[$0.id]! < firstSeen[$1.id]!
        }
    }
}
