import Foundation

/// A `.safetensors` file: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the raw data. Only what MiniLM needs is read
/// (`F32` tensors, copied out of a memory-mapped file).
public struct SafetensorsFile: Sendable {
    /// One tensor's entry in the header.
    public struct Entry: Sendable {
        public let dtype: String
        public let shape: [Int]
        let range: Range<Int>
    }

    /// Why a file cannot be read.
    public struct FormatError: Error, CustomStringConvertible {
        public let description: String
    }

    public let entries: [String: Entry]
    private let data: Data
    private let dataStart: Int

    public init(contentsOf url: URL) throws {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        guard data.count >= 8 else { throw FormatError(description: "\(url.lastPathComponent): too short for a safetensors file") }
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        guard headerLength > 0, 8 + headerLength <= data.count,
            let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any]
        else { throw FormatError(description: "\(url.lastPathComponent): bad safetensors header") }
        var entries: [String: Entry] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let e = value as? [String: Any], let dtype = e["dtype"] as? String, let shape = e["shape"] as? [Int],
                let offsets = e["data_offsets"] as? [Int], offsets.count == 2, offsets[0] <= offsets[1],
                8 + headerLength + offsets[1] <= data.count
            else { throw FormatError(description: "\(url.lastPathComponent): bad entry for \(name)") }
            entries[name] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        self.entries = entries
        self.data = data
        self.dataStart = 8 + headerLength
    }

    /// A float32 tensor's values (row-major) and shape.
    public func floats(_ name: String, shape expected: [Int]? = nil) throws -> [Float] {
        guard let e = entries[name] else { throw FormatError(description: "no tensor named \(name)") }
        guard e.dtype == "F32" else { throw FormatError(description: "\(name) is \(e.dtype), expected F32") }
        if let expected, expected != e.shape { throw FormatError(description: "\(name) has shape \(e.shape), expected \(expected)") }
        let count = e.shape.reduce(1, *)
        guard e.range.count == count * 4 else { throw FormatError(description: "\(name): \(e.range.count) bytes for \(count) floats") }
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBytes { dest in
            data.withUnsafeBytes { src in
                dest.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(dataStart + e.range.lowerBound)..<(dataStart + e.range.upperBound)]))
            }
        }
        // The file is little-endian, as is every machine Sluice runs on.
        return out
    }
}
