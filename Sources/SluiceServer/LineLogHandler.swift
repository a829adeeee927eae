import Foundation
import Logging

/// One line per log event on standard output, as text
/// (`2026-11-23T13:00:00.123Z info sluice: message key=value …`) or as a JSON object
/// (`{"label":…,"level":…,"msg":…,"ts":…, <metadata>}`) for log shippers.
///
/// Unlike swift-log's `StreamLogHandler`, setting metadata is a dictionary write: a line is only
/// rendered when an event passes the level. (Every request sets its id on the logger;
/// `StreamLogHandler` re-renders all metadata on each set, which showed in profiles.)
public struct LineLogHandler: LogHandler {
    /// How lines are written.
    public enum Format: Sendable { case text, json }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let format: Format

    public init(label: String, format: Format) {
        self.label = label
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        LogOutput.write(line(level: event.level, message: event.message, metadata: event.metadata, timestamp: LogTimestamp.now()))
    }

    /// The line for one event, ending in a newline.
    func line(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, timestamp: String) -> String {
        var merged = metadata
        if let extra { merged.merge(extra) { _, new in new } }
        switch format {
        case .text:
            var line = "\(timestamp) \(level.rawValue) \(label): \(message)"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                line += " \(key)=\(value)"
            }
            return line + "\n"
        case .json:
            var fields: [String: String] = [:]
            for (k, v) in merged { fields[k] = "\(v)" }
            fields["ts"] = timestamp
            fields["level"] = level.rawValue
            fields["msg"] = message.description
            fields["label"] = label
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            guard let data = try? encoder.encode(fields) else { return "" }
            return String(decoding: data, as: UTF8.self) + "\n"
        }
    }
}

/// Serialises whole lines onto standard output.
enum LogOutput {
    private static let lock = NSLock()

    static func write(_ line: String) {
        var line = line
        lock.lock()
        defer { lock.unlock() }
        line.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let n = Foundation.write(1, base + offset, bytes.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}

/// UTC timestamps with milliseconds, without a formatter object.
enum LogTimestamp {
    static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = tm()
        var seconds = ts.tv_sec
        gmtime_r(&seconds, &t)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(t.tm_year + 1900, 4))-\(pad(t.tm_mon + 1, 2))-\(pad(t.tm_mday, 2))T\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):\(pad(t.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }
}
