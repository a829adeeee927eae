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
    /// The header's `__metadata__` (string to string).
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    public init(contentsOf url: URL) throws {
        try self.init(data: try Data(contentsOf: url, options: .alwaysMapped), name: url.lastPathComponent)
    }

    /// A file's bytes already in memory; `name` is for errors.
    public init(data: Data, name: String) throws {
        guard data.count >= 8 else { throw FormatError(description: "\(name): too short for a safetensors file") }
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        guard headerLength > 0, 8 + headerLength <= data.count,
            let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any]
        else { throw FormatError(description: "\(name): bad safetensors header") }
        var entries: [String: Entry] = [:]
        for (tensor, value) in header where tensor != "__metadata__" {
            guard let e = value as? [String: Any], let dtype = e["dtype"] as? String, let shape = e["shape"] as? [Int],
                let offsets = e["data_offsets"] as? [Int], offsets.count == 2, offsets[0] <= offsets[1],
                8 + headerLength + offsets[1] <= data.count
            else { throw FormatError(description: "\(name): bad entry for \(tensor)") }
            entries[tensor] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        self.entries = entries
        self.metadata = header["__metadata__"] as? [String: String] ?? [:]
        self.data = data
        self.dataStart = 8 + headerLength
    }

    /// A float32 (or float16, widened) tensor's values, row-major.
    public func floats(_ name: String, shape expected: [Int]? = nil) throws -> [Float] {
        guard let e = entries[name] else { throw FormatError(description: "no tensor named \(name)") }
        guard e.dtype == "F32" || e.dtype == "F16" else { throw FormatError(description: "\(name) is \(e.dtype), expected F32 or F16") }
        if let expected, expected != e.shape { throw FormatError(description: "\(name) has shape \(e.shape), expected \(expected)") }
        let count = e.shape.reduce(1, *)
        let width = e.dtype == "F32" ? 4 : 2
        guard e.range.count == count * width else { throw FormatError(description: "\(name): \(e.range.count) bytes for \(count) floats") }
        if width == 2 {
            var halves = [UInt16](repeating: 0, count: count)
            halves.withUnsafeMutableBytes { dest in
                data.withUnsafeBytes { src in
                    dest.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(dataStart + e.range.lowerBound)..<(dataStart + e.range.upperBound)]))
                }
            }
            return halves.map { Float(Float16(bitPattern: $0)) }
        }
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
