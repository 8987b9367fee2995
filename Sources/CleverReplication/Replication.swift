/// Namespace for the pure replication core: roles, disk states, generation identifiers, the sync decision on
/// connect, split-brain policies, promotion rules, the dirty bitmap and the wire frames. No I/O, no clock.
public enum Replication {}

extension Replication {
    public enum Role: String, Hashable, Sendable, Codable, CaseIterable, CustomStringConvertible {
        case primary = "Primary"
        case secondary = "Secondary"
        /// The peer's role when not connected (DRBD prints "Unknown").
        case unknown = "Unknown"

        public var description: String { self.rawValue }
    }

    /// Disk states in DRBD's vocabulary, ordered from worst to best as DRBD orders them.
    public enum DiskState: String, Hashable, Sendable, Codable, CaseIterable, Comparable, CustomStringConvertible {
        case diskless = "Diskless"
        case failed = "Failed"
        /// A resync target in progress, or never synced: must not be promoted.
        case inconsistent = "Inconsistent"
        /// Known stale (the peer went on without us): must not be promoted.
        case outdated = "Outdated"
        /// The peer's disk when not connected.
        case unknown = "DUnknown"
        /// Consistent but not known to be newest (after a restart without the peer).
        case consistent = "Consistent"
        case upToDate = "UpToDate"

        public var description: String { self.rawValue }

        private var rank: Int {
            switch self {
            case .diskless: 0
            case .failed: 1
            case .inconsistent: 2
            case .outdated: 3
            case .unknown: 4
            case .consistent: 5
            case .upToDate: 6
            }
        }

        public static func < (lhs: DiskState, rhs: DiskState) -> Bool { lhs.rank < rhs.rank }
    }

    /// Connection states in DRBD's vocabulary.
    public enum ConnectionState: String, Hashable, Sendable, Codable, CaseIterable, CustomStringConvertible {
        /// Not trying to connect (after `disconnect`, a split brain or unrelated data).
        case standAlone = "StandAlone"
        /// Trying to reach the peer.
        case connecting = "Connecting"
        case connected = "Connected"
        case syncSource = "SyncSource"
        case syncTarget = "SyncTarget"
        case verifySource = "VerifyS"
        case verifyTarget = "VerifyT"

        public var description: String { self.rawValue }

        public var isConnected: Bool {
            switch self {
            case .standAlone, .connecting: false
            default: true
            }
        }
    }

    public enum ProtocolMode: String, Hashable, Sendable, Codable, CaseIterable {
        /// Acknowledged when durable locally and handed to the link.
        case A
        /// Acknowledged when written on both hosts.
        case C
    }
}
