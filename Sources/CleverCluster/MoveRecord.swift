import CleverModel
import Foundation

/// A VM's move between hosts, as its agent reported it: live (with QEMU's measured downtime) or by
/// hibernating on one host and resuming on another.
public struct MoveRecord: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Mode: String, Hashable, Sendable, Codable {
        case live, hibernate
        /// Booted from its disk on another host than where it last ran: its host failed (or it was stopped
        /// with `stop-mode: shutdown`); the guest's RAM did not come along.
        case coldBoot = "cold-boot"
    }

    public var resource: String
    public var at: Timestamp
    public var from: String?
    public var to: String
    public var mode: Mode
    public var downtimeMilliseconds: Int?

    /// A live `migrate_to`, a `start` that resumed a hibernated guest, or a cold-boot `start` on another host than
    /// `previousHost` (where it last ran); nil for anything else.
    public init?(result: OperationResult, previousHost: String? = nil) {
        guard let report = result.report else { return nil }
        switch result.action {
        case .migrateTo:
            guard let target = result.migrationTarget else { return nil }
            self.init(resource: result.resource, at: result.at, from: result.node, to: target,
                      mode: report.mode == .hibernate ? .hibernate : .live, downtimeMilliseconds: report.downtimeMs)
        case .start where report.mode == .resume:
            self.init(resource: result.resource, at: result.at, from: previousHost, to: result.node, mode: .hibernate,
                      downtimeMilliseconds: nil)
        case .start where report.mode == .cold:
            guard let previousHost, previousHost != result.node else { return nil }
            self.init(resource: result.resource, at: result.at, from: previousHost, to: result.node, mode: .coldBoot,
                      downtimeMilliseconds: nil)
        default:
            return nil
        }
    }

    public init(resource: String, at: Timestamp, from: String?, to: String, mode: Mode, downtimeMilliseconds: Int?) {
        self.resource = resource
        self.at = at
        self.from = from
        self.to = to
        self.mode = mode
        self.downtimeMilliseconds = downtimeMilliseconds
    }

    public var description: String {
        let origin = self.from.map { " from \($0)" } ?? ""
        switch self.mode {
        case .live:
            return "\(self.resource) moved live\(origin) to \(self.to)" + (self.downtimeMilliseconds.map { ", guest downtime \($0) ms" } ?? "")
        case .hibernate:
            return "\(self.resource) resumed from hibernation on \(self.to)" + (self.from.map { " (hibernated on \($0))" } ?? "")
        case .coldBoot:
            return "\(self.resource) booted from its disk on \(self.to)" + (self.from.map { " after running on \($0)" } ?? "") + " (RAM state lost)"
        }
    }
}
