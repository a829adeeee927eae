import Foundation
import SluiceCore

/// How far a batch has come and how fast: what the dashboard and `sluice batches` show.
public struct BatchProgress: Sendable, Hashable {
    /// Lines answered (in the output or the error file).
    public var done: Int
    public var total: Int
    /// Lines answered per second since the batch started (nil before it started or with none answered).
    public var rate: Double?
    /// Seconds until every line is answered at that rate (nil when unknown or the batch is not running).
    public var eta: Double?

    public init(_ batch: BatchRecord, now: Double) {
        done = batch.completed + batch.failed
        total = batch.total
        let end = [batch.finalizingAt, batch.cancellingAt, batch.expiredAt, batch.failedAt].compactMap { $0 }.min() ?? now
        if let start = batch.inProgressAt, done > 0, end > start {
            rate = Double(done) / (end - start)
        }
        if batch.status == .inProgress, let rate, rate > 0 {
            eta = Double(max(0, total - done)) / rate
        }
    }

    /// 0…1 of the lines answered.
    public var fraction: Double { total > 0 ? Double(done) / Double(total) : 0 }

    /// "1 h 05 min", "3 min 20 s", "12 s".
    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600) h \(String(format: "%02d", (s % 3600) / 60)) min" }
        if s >= 60 { return "\(s / 60) min \(String(format: "%02d", s % 60)) s" }
        return "\(s) s"
    }
}
