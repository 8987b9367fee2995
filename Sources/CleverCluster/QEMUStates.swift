/// A QMP enumeration: QEMU's spelling of each known value, and `other` for one this release does not know (kept by
/// name, so a newer QEMU's answer is reported as it is, never guessed at). Encoded as that spelling.
public protocol QMPEnumeration: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Every known value with its QMP spelling.
    static var spellings: [(Self, String)] { get }
    static func other(_ name: String) -> Self
    /// The name of an `other` value.
    var otherName: String? { get }
}

extension QMPEnumeration {
    /// From QMP's spelling (`"finish-migrate"`).
    public init(qmp name: String) {
        self = Self.spellings.first { $0.1 == name }?.0 ?? .other(name)
    }

    /// QMP's spelling, also what `VMReport` carries.
    public var qmpName: String { self.otherName ?? Self.spellings.first { $0.0 == self }!.1 }

    public var description: String { self.qmpName }

    public init(from decoder: any Decoder) throws {
        self.init(qmp: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.qmpName)
    }
}

/// QEMU's run state as QMP `query-status` reports it (QEMU's qapi/run-state.json, `RunState`).
public enum RunState: QMPEnumeration {
    case running
    case paused
    /// Created, not started yet (`-S`).
    case prelaunch
    /// Waiting for an incoming migration stream (`-incoming`): it holds no guest of its own yet.
    case inmigrate
    /// The source of a completed migration: the guest runs elsewhere now.
    case postmigrate
    case finishMigrate
    case saveVM
    case restoreVM
    case shutdown
    case suspended
    case ioError
    case internalError
    case guestPanicked
    case watchdog
    case debug
    case colo
    case other(String)

    public static let spellings: [(RunState, String)] = [
        (.running, "running"), (.paused, "paused"), (.prelaunch, "prelaunch"), (.inmigrate, "inmigrate"),
        (.postmigrate, "postmigrate"), (.finishMigrate, "finish-migrate"), (.saveVM, "save-vm"), (.restoreVM, "restore-vm"),
        (.shutdown, "shutdown"), (.suspended, "suspended"), (.ioError, "io-error"), (.internalError, "internal-error"),
        (.guestPanicked, "guest-panicked"), (.watchdog, "watchdog"), (.debug, "debug"), (.colo, "colo"),
    ]

    public var otherName: String? {
        if case .other(let name) = self { return name }
        return nil
    }

    /// States in which the process holds no guest of its own (a QEMU found in one of them may be ended).
    public var holdsNoGuest: Bool { self == .inmigrate || self == .postmigrate }
}

/// A migration's status as QMP `query-migrate` reports it (qapi/migration.json, `MigrationStatus`); a hibernate is a
/// migration into the image.
public enum MigrationStatus: QMPEnumeration {
    case setup
    case active
    case completed
    case failed
    case cancelling
    case cancelled
    case other(String)

    public static let spellings: [(MigrationStatus, String)] = [
        (.setup, "setup"), (.active, "active"), (.completed, "completed"), (.failed, "failed"),
        (.cancelling, "cancelling"), (.cancelled, "cancelled"),
    ]

    public var otherName: String? {
        if case .other(let name) = self { return name }
        return nil
    }

    /// Whether the migration has ended, one way or the other.
    public var isFinal: Bool { self == .completed || self == .failed || self == .cancelled }
}
