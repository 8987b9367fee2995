extension Replication {
    /// DRBD's `fencing` option: what a primary does when its replication link breaks while the peer may still
    /// be alive (and so may be promoted by a cluster that sees only its own half).
    public enum FencingPolicy: String, Sendable, Hashable, Codable, CaseIterable {
        /// Writes go on alone; the peer's disk stays UpToDate in its own eyes.
        case dontCare = "dont-care"
        /// DRBD's `resource-only`: new writes (and the acknowledgements of writes in flight when the link
        /// broke) are held until the cluster confirms the peer's disk is Outdated (`markPeerOutdated`, after
        /// it recorded that in the replicated ledger) or the link is back. So no write is acknowledged that a
        /// promotable peer lacks.
        case resourceOnly = "resource-only"
    }

    /// Whether writes must wait now (the fencing rule, in one place).
    public static func holdsWrites(
        policy: FencingPolicy, hasPeer: Bool, role: Role, replicating: Bool, peerOutdated: Bool
    ) -> Bool {
        policy == .resourceOnly && hasPeer && role == .primary && !replicating && !peerOutdated
    }
}
