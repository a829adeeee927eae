// The wire types' public API is made of the runtime's JSON values, and every stage uses its
// deadlines: whoever imports the core gets them too.
@_exported import SluiceRuntime
import Foundation

extension JSONValue {
    /// The value as compact JSON text with sorted keys (stable across runs).
    public var compactJSON: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }
}

