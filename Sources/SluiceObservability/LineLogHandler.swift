import Foundation
import Logging

/// One line per log event on standard output, as text
/// (`2026-11-23T13:00:00.123Z info sluice: message key=value …`) or as a JSON object
/// (`{"label":…,"level":…,"msg":…,"ts":…, <metadata>}`) for log shippers.
///
/// Unlike swift-log's `StreamLogHandler`, setting metadata is a dictionary write: a line is only
/// rendered when an event passes the level. (Every request sets its id on the logger;
/// `StreamLogHandler` re-renders all metadata on each set, which showed in profiles.)
/// Lines below `warning` are written by `LogOutput`'s flusher thread, not by the caller.
public struct LineLogHandler: LogHandler {
    /// How lines are written.
    public enum Format: Sendable { case text, json }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    package let label: String
    package let format: Format

    public init(label: String, format: Format) {
        self.label = label
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let line = line(level: event.level, message: event.message, metadata: event.metadata, timestamp: LogTimestamp.now())
        LogOutput.shared.write(line, now: event.level >= .warning)
    }

    /// Writes out every buffered line (call before the process exits).
    public static func flush() { LogOutput.shared.flush() }

    /// Logs one event whose fields come sorted by key, without building a metadata dictionary:
    /// the per-request line's path (`AuditRecorder`), where merging, hashing and sorting a
    /// dozen fields showed in profiles. Metadata providers are not consulted (Sluice sets none).
    public func log(level: Logger.Level, message: Logger.Message, sortedFields: [(key: String, value: String)]) {
        guard level >= logLevel else { return }
        let line = line(level: level, message: message, sortedFields: sortedFields, timestamp: LogTimestamp.now())
        LogOutput.shared.write(line, now: level >= .warning)
    }

    /// The line for one event, ending in a newline.
    package func line(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, timestamp: String) -> String {
        // The logger's and the event's metadata in one sorted list (the event's win), without
        // building a merged dictionary. Hummingbird's `hb.request.id` is left out: every request
        // line carries Sluice's `request_id`, which is also the `x-request-id` clients see.
        var fields: [(key: String, value: Logger.MetadataValue)] = []
        fields.reserveCapacity(metadata.count + (extra?.count ?? 0))
        for (key, value) in metadata where key != "hb.request.id" && extra?[key] == nil {
            fields.append((key, value))
        }
        if let extra {
            for (key, value) in extra { fields.append((key, value)) }
        }
        fields.sort { $0.key < $1.key }
        return render(level: level, message: message, fields: fields, timestamp: timestamp)
    }

    /// The line for an event whose fields are sorted by key, merged with the logger's metadata
    /// (the event's fields win).
    package func line(level: Logger.Level, message: Logger.Message, sortedFields: [(key: String, value: String)], timestamp: String) -> String {
        var fields: [(key: String, value: Logger.MetadataValue)] = []
        fields.reserveCapacity(metadata.count + sortedFields.count)
        for (key, value) in sortedFields { fields.append((key, .string(value))) }
        // The logger's own metadata is a key or two (`request_id`): each goes in at its place.
        for (key, value) in metadata where key != "hb.request.id" {
            let at = fields.firstIndex { $0.key >= key } ?? fields.endIndex
            if at < fields.count && fields[at].key == key { continue }
            fields.insert((key, value), at: at)
        }
        return render(level: level, message: message, fields: fields, timestamp: timestamp)
    }

    private func render(
        level: Logger.Level, message: Logger.Message, fields: [(key: String, value: Logger.MetadataValue)], timestamp: String
    ) -> String {
        var line = ""
        line.reserveCapacity(96 + fields.count * 24)
        switch format {
        case .text:
            line += timestamp
            line += " "
            line += level.rawValue
            line += " "
            line += label
            line += ": "
            LogfmtText.appendMessage(message.description, to: &line)
            for (key, value) in fields {
                line += " "
                line += key
                line += "="
                // Values carry client strings (a model name): quoted and escaped where needed, so
                // that no value can end the line, forge another field or drive a terminal.
                if case .string(let text) = value { LogfmtText.appendValue(text, to: &line) } else { LogfmtText.appendValue(value.description, to: &line) }
            }
        case .json:
            // Keys in order: the reserved ones and the metadata, sorted together.
            var all = fields.map { ($0.key, $0.value.description) }
            for (key, value) in [("label", label), ("level", level.rawValue), ("msg", message.description), ("ts", timestamp)] {
                all.removeAll { $0.0 == key }
                all.append((key, value))
            }
            all.sort { $0.0 < $1.0 }
            line += "{"
            for (i, (key, value)) in all.enumerated() {
                if i > 0 { line += "," }
                JSONText.appendString(key, to: &line)
                line += ":"
                JSONText.appendString(value, to: &line)
            }
            line += "}"
        }
        line += "\n"
        return line
    }
}

/// JSON string literals for log lines.
package enum JSONText {
    package static func appendString(_ s: String, to out: inout String) {
        out += "\""
        var plainStart = s.unicodeScalars.startIndex
        var i = plainStart
        let scalars = s.unicodeScalars
        while i < scalars.endIndex {
            let c = scalars[i]
            let escape: String?
            switch c {
            case "\"": escape = "\\\""
            case "\\": escape = "\\\\"
            case "\n": escape = "\\n"
            case "\r": escape = "\\r"
            case "\t": escape = "\\t"
            default:
                if c.value < 0x20 || (c.value >= 0x7F && c.value <= 0x9F) || c.value == 0x2028 || c.value == 0x2029 {
                    let hex = String(c.value, radix: 16)
                    escape = "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    escape = nil
                }
            }
            if let escape {
                out.unicodeScalars.append(contentsOf: scalars[plainStart..<i])
                out += escape
                plainStart = scalars.index(after: i)
            }
            i = scalars.index(after: i)
        }
        out.unicodeScalars.append(contentsOf: scalars[plainStart..<scalars.endIndex])
        out += "\""
    }
}

/// logfmt values for text log lines: bare when they are plain, else quoted with `\"`, `\\`,
/// `\n`, `\r`, `\t` and `\u{…}` escapes for every other control, line- or paragraph-separator
/// character.
package enum LogfmtText {
    @inline(__always) static func needsEscape(_ v: UInt32) -> Bool {
        v < 0x20 || (v >= 0x7F && v <= 0x9F) || v == 0x2028 || v == 0x2029
    }

    package static func appendValue(_ s: String, to out: inout String) {
        var plain = !s.isEmpty
        var ascii = true
        for b in s.utf8 {
            if b >= 0x80 {
                ascii = false
            } else if b <= 0x20 || b == 0x22 || b == 0x3D || b == 0x5C || b == 0x7F {
                plain = false
                break
            }
        }
        // Multi-byte text is plain unless it holds a control, separator or space character.
        if plain && !ascii && s.unicodeScalars.contains(where: { needsEscape($0.value) || $0.properties.isWhitespace }) { plain = false }
        if plain {
            out += s
            return
        }
        out += "\""
        appendEscaped(s, quote: true, to: &out)
        out += "\""
    }

    /// The text with its control and separator characters escaped (nothing quoted): for the
    /// audit log's searchable fields, which exports and terminals show line by line.
    package static func escapingControls(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { needsEscape($0.value) }) else { return s }
        var out = ""
        appendEscaped(s, quote: false, to: &out)
        return out
    }

    /// A message is not quoted (it is Sluice's own text), but a control character in it is escaped all the same.
    package static func appendMessage(_ s: String, to out: inout String) {
        if !s.unicodeScalars.contains(where: { needsEscape($0.value) }) {
            out += s
            return
        }
        appendEscaped(s, quote: false, to: &out)
    }

    private static func appendEscaped(_ s: String, quote: Bool, to out: inout String) {
        for c in s.unicodeScalars {
            switch c {
            case "\"" where quote: out += "\\\""
            case "\\" where quote: out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if needsEscape(c.value) {
                    out += "\\u{" + String(c.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
    }
}

/// Standard output, written in whole lines by one flusher thread.
///
/// A `write(2)` per request on the event loop cost about 4% of a proxied request's CPU (and more
/// of its latency when stdout is a pipe). Lines are appended to a buffer; the flusher wakes when
/// the buffer stops being empty, waits `gather` for more lines, and writes them in one call.
/// Under load it never sleeps on the condition, so the request path does no system call. Urgent
/// lines (warnings and worse) and a full buffer are written at once by the caller, in order.
/// A process killed with SIGKILL loses at most the lines of the last `gather`.
package final class LogOutput: @unchecked Sendable {
    package static let shared = LogOutput(fd: 1)

    private let fd: Int32
    private let gather: useconds_t = 10_000
    private let maxBuffered = 1 << 20
    // `buffer` and `flusherStarted` are guarded by `pending`; `writeLock` keeps writes in order.
    private let pending = NSCondition()
    private var buffer: [UInt8] = []
    private var flusherStarted = false
    private let writeLock = NSLock()

    package init(fd: Int32) { self.fd = fd }

    package func write(_ line: String, now: Bool) {
        pending.lock()
        let wasEmpty = buffer.isEmpty
        buffer.append(contentsOf: line.utf8)
        let full = buffer.count >= maxBuffered
        if !flusherStarted {
            flusherStarted = true
            let thread = Thread { [self] in
                #if os(Linux)
                // The name `top -H` and perf show: Foundation's `Thread.name` does not set it on
                // Linux, where the thread would otherwise carry the name of the loop that made it.
                try? "sluice-log".write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
                #endif
                runFlusher()
            }
            thread.name = "sluice-log"
            thread.start()
        }
        if wasEmpty { pending.signal() }
        pending.unlock()
        if now || full { flush() }
    }

    /// Writes out everything buffered so far.
    package func flush() {
        writeLock.lock()
        defer { writeLock.unlock() }
        pending.lock()
        let bytes = buffer
        buffer.removeAll(keepingCapacity: true)
        pending.unlock()
        bytes.withUnsafeBytes { raw in
            guard var base = raw.baseAddress else { return }
            var left = raw.count
            while left > 0 {
                let n = Foundation.write(fd, base, left)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                base += n
                left -= n
            }
        }
    }

    private func runFlusher() {
        while true {
            pending.lock()
            while buffer.isEmpty { pending.wait() }
            pending.unlock()
            usleep(gather)
            flush()
        }
    }
}

/// UTC timestamps with milliseconds, without a formatter object.
package enum LogTimestamp {
    package static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = tm()
        var seconds = ts.tv_sec
        gmtime_r(&seconds, &t)
        // "YYYY-MM-DDTHH:MM:SS.mmmZ", digit by digit.
        var bytes: [UInt8] = Array("0000-00-00T00:00:00.000Z".utf8)
        func put(_ value: Int, at end: Int, width: Int) {
            var v = value
            for i in stride(from: end, to: end - width, by: -1) {
                bytes[i] = UInt8(48 + v % 10)
                v /= 10
            }
        }
        put(Int(t.tm_year) + 1900, at: 3, width: 4)
        put(Int(t.tm_mon) + 1, at: 6, width: 2)
        put(Int(t.tm_mday), at: 9, width: 2)
        put(Int(t.tm_hour), at: 12, width: 2)
        put(Int(t.tm_min), at: 15, width: 2)
        put(Int(t.tm_sec), at: 18, width: 2)
        put(ts.tv_nsec / 1_000_000, at: 22, width: 3)
        return String(decoding: bytes, as: UTF8.self)
    }
}
