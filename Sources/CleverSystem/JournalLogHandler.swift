import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One line per record on stderr, for journald (which reads the `<N>` syslog priority prefix and keeps its own
/// time) and for the lab's log files (which get the time of day in milliseconds):
/// `<6>01:55:00.123 info alpha: running start mba7 on alpha (…) op=start resource=mba7`.
/// Only executables bootstrap it; libraries take a `Logger`.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = self.metadata
        if let provided = self.metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        let line = Self.line(level: event.level, message: "\(event.message)", metadata: merged, time: Self.timeOfDay())
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// One record as written: `node` names the line's host up front; the rest follow as key=value, sorted.
    public static func line(level: Logger.Level, message: String, metadata: Logger.Metadata, time: String) -> String {
        var metadata = metadata
        let node = metadata.removeValue(forKey: "node").map { " \($0):" } ?? ":"
        let rest = metadata.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        return "<\(Self.priority(level))>\(time) \(level)\(node) \(message)\(rest)"
    }

    /// syslog priorities (sd-daemon(3)).
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    static func timeOfDay() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let day = Int(now.tv_sec) % 86400
        return String(format: "%02d:%02d:%02d.%03d", day / 3600, day % 3600 / 60, day % 60, Int(now.tv_nsec) / 1_000_000)
    }
}
