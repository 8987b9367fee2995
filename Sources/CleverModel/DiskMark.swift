/// One replica of a replicated volume that missed writes: the volume's disk on `node` is Outdated (DRBD's
/// `fencing resource-only`). Kept in the replicated cluster document, so every agent knows it, also after a
/// restart; an Outdated disk is never promoted until it has resynced from current data.
public struct DiskMark: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var volume: String
    public var node: String

    public init(volume: String, node: String) {
        self.volume = volume
        self.node = node
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.volume, lhs.node) < (rhs.volume, rhs.node) }

    public var description: String { "\(self.volume) on \(self.node)" }

    /// The reason the scheduler, `explain` and `status` give for never promoting it.
    public var refusal: String {
        "the disk of \(self.volume) on \(self.node) is Outdated (it missed writes while the replication link was down)"
    }

    /// Wire keys, fixed: renaming a property must not change what goes between hosts.
    enum CodingKeys: String, CodingKey { case volume, node }
}
