import Yams

/// Reads YAML into a `JSONValue` tree: `${VAR}` and `${VAR:-default}` are replaced from the
/// environment inside scalars, then plain scalars are typed (null, bool, int, float, string)
/// the way YAML 1.2's core schema does. Quoted scalars stay strings unless they were substituted.
public enum YAMLTree {
    public static func parse(_ text: String, environment: [String: String]) throws -> JSONValue {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(path: "", "not valid YAML: \(error)")
        }
        guard let node else { return .object([:]) }
        return try convert(node, path: "", environment: environment)
    }

    static func convert(_ node: Node, path: String, environment: [String: String]) throws -> JSONValue {
        switch node {
        case .scalar(let scalar):
            let text = try substitute(scalar.string, path: path, environment: environment)
            // `port: "${PORT}"` must be quoted in YAML, yet means a number: a scalar that was
            // substituted is typed like a plain one (string fields still accept it).
            let substituted = text != scalar.string || scalar.string.contains("${")
            switch scalar.style {
            case .plain, .any: return typed(text)
            default: return substituted ? typed(text) : .string(text)
            }
        case .sequence(let sequence):
            var out: [JSONValue] = []
            for (i, item) in sequence.enumerated() {
                out.append(try convert(item, path: "\(path)[\(i)]", environment: environment))
            }
            return .array(out)
        case .mapping(let mapping):
            var out: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard let name = key.string else {
                    throw ConfigError(path: path, "mapping keys must be strings")
                }
                let child = path.isEmpty ? name : "\(path).\(name)"
                if out[name] != nil { throw ConfigError(path: child, "duplicate key") }
                out[name] = try convert(value, path: child, environment: environment)
            }
            return .object(out)
        case .alias:
            throw ConfigError(path: path, "YAML aliases are not supported")
        }
    }

    static func typed(_ text: String) -> JSONValue {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        if let i = Int(text) { return .int(i) }
        if let first = text.first, first.isNumber || first == "-" || first == "+" || first == ".", let d = Double(text) {
            return .double(d)
        }
        return .string(text)
    }

    /// Replaces `${NAME}` and `${NAME:-default}`; an unset variable without a default is an error.
    static func substitute(_ text: String, path: String, environment: [String: String]) throws -> String {
        guard text.contains("${") else { return text }
        var out = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw ConfigError(path: path, "unterminated '${' in value")
            }
            let expression = rest[start.upperBound..<end]
            let name: Substring
            let fallback: Substring?
            if let sep = expression.range(of: ":-") {
                name = expression[..<sep.lowerBound]
                fallback = expression[sep.upperBound...]
            } else {
                name = expression
                fallback = nil
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw ConfigError(path: path, "invalid environment variable reference '${\(expression)}'")
            }
            if let value = environment[String(name)], !value.isEmpty || fallback == nil {
                out += value
            } else if let fallback {
                out += fallback
            } else {
                throw ConfigError(
                    path: path, "environment variable \(name) is not set (use ${\(name):-default} to allow it to be unset)")
            }
            rest = rest[rest.index(after: end)...]
        }
        out += rest
        return out
    }
}
