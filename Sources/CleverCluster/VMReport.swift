import CleverModel
import Foundation

/// What a VM action reports (`AgentOutcome.report`), typed. On the group's wire it travels as one line of JSON in the
/// result's `output` (keys sorted, absent values omitted), as in every release so far; `OperationResult.report` reads
/// it back. docs/architecture-vm.md lists the fields.
public struct VMReport: Hashable, Sendable {
    /// How the action went about it.
    public enum Mode: String, Hashable, Sendable, Codable {
        /// start: booted from the disk.
        case cold
        /// start (and a hibernate move's target): resumed from the hibernate image.
        case resume
        /// start: a QEMU of this VM already ran here and was kept.
        case attached
        /// stop: RAM saved to the image; migrate_to: moved by hibernate and resume.
        case hibernate
        /// stop: ACPI or guest-agent shutdown.
        case shutdown
        /// stop: SIGKILL (immediate stop, or a guest that did not shut down in time).
        case killed
        /// stop: no QEMU ran.
        case absent
        /// stop: the QEMU held no guest of its own (left waiting for or after a migration) and was ended.
        case discarded
        /// migrate_to / migrate_from: a live migration.
        case live
    }

    public var action: ResourceAction
    public var mode: Mode?
    /// QEMU's run state after the action (query-status), when known.
    public var status: RunState?
    /// migrate_to: how QEMU's migration ended (query-migrate `status`).
    public var migration: MigrationStatus?
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

    public init(action: ResourceAction, mode: Mode? = nil) {
        self.action = action
        self.mode = mode
    }

    /// The wire form: one line of JSON.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "{}"
    }

    /// Reads the wire form back; nil for any other text (what other resource agents put in `output`).
    public static func parse(_ text: String?) -> VMReport? {
        guard let text, text.hasPrefix("{") else { return nil }
        return try? JSONDecoder().decode(VMReport.self, from: Data(text.utf8))
    }
}

extension VMReport: Codable {
    /// Wire keys, fixed: renaming a property must not change what goes between hosts.
    enum CodingKeys: String, CodingKey {
        case action, mode, status, migration, elapsedMs, downtimeMs, totalMs, setupMs, transferredBytes, incoming, target, pid, message
    }
}

extension OperationResult {
    /// A VM action's report, read from `output`.
    public var report: VMReport? { VMReport.parse(self.output) }
}
