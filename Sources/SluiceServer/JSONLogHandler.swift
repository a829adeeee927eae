import Foundation
import Logging

/// Writes one JSON object per log line to standard output: `ts`, `level`, `msg`, `label`, and
/// the metadata as string fields. For log shippers; the text handler is swift-log's own.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (k, v) in metadata { fields[k] = "\(v)" }
        for (k, v) in event.metadata ?? [:] { fields[k] = "\(v)" }
        fields["ts"] = LogTimestamp.now()
        fields["level"] = event.level.rawValue
        fields["msg"] = event.message.description
        fields["label"] = label
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(fields) else { return }
        LogOutput.write(String(decoding: data, as: UTF8.self) + "\n")
    }
}
