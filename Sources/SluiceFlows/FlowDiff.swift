import Foundation
import SluiceCore

extension FlowDefinition {
    /// The definition as the admin API shows it: the keys of a `flows:` entry.
    public var definitionJSON: JSONValue {
        let c = config
        var o: [String: JSONValue] = ["model": .string(c.model)]
        if let d = c.description { o["description"] = .string(d) }
        if !c.messages.isEmpty {
            o["messages"] = .array(c.messages.map { .object(["role": .string($0.role.rawValue), "content": .string($0.content)]) })
        }
        if let t = c.template { o["template"] = .string(t) }
        if let input = c.input { o["input"] = input }
        if case .schema(let schema) = c.output { o["output"] = schema } else { o["output"] = "text" }
        var params: [String: JSONValue] = [:]
        if let v = c.params.temperature { params["temperature"] = .double(v) }
        if let v = c.params.topP { params["top_p"] = .double(v) }
        if let v = c.params.maxTokens { params["max_tokens"] = .int(v) }
        if let v = c.params.seed { params["seed"] = .int(v) }
        if let v = c.params.stop { params["stop"] = .array(v.map(JSONValue.string)) }
        if !params.isEmpty { o["params"] = .object(params) }
        if let g = c.guardrails { o["guardrails"] = .string(g) }
        if let slo = c.slo {
            var s: [String: JSONValue] = [:]
            for (k, v) in [("p50_ms", slo.p50Ms), ("p95_ms", slo.p95Ms), ("p99_ms", slo.p99Ms), ("success_rate", slo.successRate), ("max_cost_usd", slo.maxCostUSD)] {
                if let v { s[k] = .double(v) }
            }
            o["slo"] = .object(s)
        }
        return .object(o)
    }

    /// The definition as indented JSON with sorted keys, one line per value: what diffs compare.
    public var rendered: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(definitionJSON), as: UTF8.self)) ?? ""
    }
}

/// A unified diff of two texts, line by line (longest common subsequence), with `context` lines
/// around each change, as `diff -u` writes it.
public enum UnifiedDiff {
    public static func make(from a: String, to b: String, fromName: String, toName: String, context: Int = 3) -> String {
        let old = a.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let new = b.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // lcs[i][j]: the longest common subsequence of old[i...] and new[j...].
        var lcs = Array(repeating: Array(repeating: 0, count: new.count + 1), count: old.count + 1)
        for i in stride(from: old.count - 1, through: 0, by: -1) {
            for j in stride(from: new.count - 1, through: 0, by: -1) {
                lcs[i][j] = old[i] == new[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        enum Line { case same(String), removed(String), added(String) }
        var lines: [Line] = []
        var i = 0
        var j = 0
        while i < old.count || j < new.count {
            if i < old.count, j < new.count, old[i] == new[j] {
                lines.append(.same(old[i]))
                i += 1
                j += 1
            } else if i < old.count, j == new.count || lcs[i + 1][j] >= lcs[i][j + 1] {
                // Removals before additions, as diff -u writes a change.
                lines.append(.removed(old[i]))
                i += 1
            } else {
                lines.append(.added(new[j]))
                j += 1
            }
        }
        let changed = lines.indices.filter { if case .same = lines[$0] { return false } else { return true } }
        guard !changed.isEmpty else { return "" }
        // Group changes whose context overlaps into hunks.
        var hunks: [ClosedRange<Int>] = []
        for index in changed {
            let range = max(0, index - context)...min(lines.count - 1, index + context)
            if let last = hunks.last, range.lowerBound <= last.upperBound + 1 {
                hunks[hunks.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                hunks.append(range)
            }
        }
        var out = "--- \(fromName)\n+++ \(toName)\n"
        for hunk in hunks {
            // Line numbers where the hunk starts in each text.
            var oldStart = 1
            var newStart = 1
            for k in 0..<hunk.lowerBound {
                switch lines[k] {
                case .same: oldStart += 1; newStart += 1
                case .removed: oldStart += 1
                case .added: newStart += 1
                }
            }
            var oldCount = 0
            var newCount = 0
            var body = ""
            for k in hunk {
                switch lines[k] {
                case .same(let l): body += " \(l)\n"; oldCount += 1; newCount += 1
                case .removed(let l): body += "-\(l)\n"; oldCount += 1
                case .added(let l): body += "+\(l)\n"; newCount += 1
                }
            }
            out += "@@ -\(oldCount == 0 ? oldStart - 1 : oldStart),\(oldCount) +\(newCount == 0 ? newStart - 1 : newStart),\(newCount) @@\n" + body
        }
        return out
    }
}
