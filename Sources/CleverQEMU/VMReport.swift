import Foundation

/// What a VM action reports in `AgentOutcome.output`: one line of JSON (keys sorted; absent values omitted).
/// docs/architecture-vm.md lists the fields.
public struct VMReport: Codable, Hashable, Sendable {
    /// start | stop | migrate_to | migrate_from | monitor
    public var action: String
    /// start: cold | resume | attached (already running); stop: hibernate | shutdown | killed | absent;
    /// migrate_to / migrate_from: live | hibernate
    public var mode: String?
    /// QEMU's run state after the action (query-status), when known.
    public var status: String?
    /// Wall time of the whole action in milliseconds.
    public var elapsedMs: Int?
    /// Live migration: QEMU's measured downtime (query-migrate `downtime`), total time and setup time.
    public var downtimeMs: Int?
    public var totalMs: Int?
    public var setupMs: Int?
    /// Bytes of RAM sent (live migration) or written to the state file (hibernate).
    public var transferredBytes: Int?
    /// migrate_from: the URI the incoming QEMU listens on, for the source's `migrate`.
    public var incoming: String?
    /// migrate_to: the target host.
    public var target: String?
    public var pid: Int?
    public var message: String?

    public init(action: String, mode: String? = nil) {
        self.action = action
        self.mode = mode
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "{}"
    }

    /// Reads a report back (e.g. the source reading the target's migrate_from output); nil for other text.
    public static func parse(_ text: String?) -> VMReport? {
        guard let text else { return nil }
        return try? JSONDecoder().decode(VMReport.self, from: Data(text.utf8))
    }
}
