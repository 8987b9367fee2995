extension Replication {
    /// Everything one side tells the other when a connection is made; the sync decision is a pure function
    /// of both sides' reports, computed symmetrically on both hosts.
    public struct NodeReport: Hashable, Sendable, Codable {
        public var name: String
        public var role: Role
        public var disk: DiskState
        public var generations: GenerationIDs
        /// Set while primary and cleared on a clean demote: a crashed primary's in-flight writes may be missing
        /// on the peer, so it becomes the sync source for its activity-log extents.
        public var crashedPrimary: Bool
        /// Blocks marked in this node's dirty bitmap (changes the peer lacks).
        public var dirtyBlocks: UInt64
        /// The operator asked this side to discard its data on this connect (manual split-brain recovery).
        public var discardMyData: Bool
        /// The operator, on this side, named the peer as the side to discard (`resolve --discard PEER`).
        public var discardPeerData: Bool

        public init(
            name: String, role: Role, disk: DiskState, generations: GenerationIDs, crashedPrimary: Bool = false,
            dirtyBlocks: UInt64 = 0, discardMyData: Bool = false, discardPeerData: Bool = false
        ) {
            self.discardPeerData = discardPeerData
            self.name = name
            self.role = role
            self.disk = disk
            self.generations = generations
            self.crashedPrimary = crashedPrimary
            self.dirtyBlocks = dirtyBlocks
            self.discardMyData = discardMyData
        }
    }

    /// The raw result of comparing generation identifiers (DRBD's drbd_uuid_compare), from the local side.
    public enum GenerationComparison: Hashable, Sendable {
        case equal
        /// Local is the bitmap sync source (the peer's Current is our Bitmap).
        case bitmapSource
        /// Local is the bitmap sync target (our Current is the peer's Bitmap).
        case bitmapTarget
        /// The peer's Current is in our History: we are several generations ahead; full sync to the peer.
        case fullSource
        /// Our Current is in the peer's History: full sync from the peer.
        case fullTarget
        /// Both went on from the same generation (equal non-zero Bitmaps): split brain; policies may resolve it.
        case splitBrainAutoRecoverable
        /// Related only through History: split brain that needs an operator.
        case splitBrainDisconnect
        /// No common ancestry at all.
        case unrelated
    }

    /// What happens on connect.
    public enum SyncDecision: Hashable, Sendable, CustomStringConvertible {
        case noSync
        /// Sync the blocks marked in both bitmaps (OR-ed) from source to target.
        case bitmapSync(localIsSource: Bool)
        /// Sync every block.
        case fullSync(localIsSource: Bool)
        /// A split brain the policies did not resolve: refuse the connection, go StandAlone.
        case splitBrain(reason: String)
        /// The two disks share no history: refuse, go StandAlone.
        case unrelatedData

        public var description: String {
            switch self {
            case .noSync: "no sync"
            case .bitmapSync(let source): "bitmap sync, local is \(source ? "source" : "target")"
            case .fullSync(let source): "full sync, local is \(source ? "source" : "target")"
            case .splitBrain(let reason): "split brain: \(reason)"
            case .unrelatedData: "unrelated data"
            }
        }
    }

    /// The three after-split-brain policies, agreed by both sides.
    public struct SplitBrainPolicies: Hashable, Sendable, Codable {
        public enum ZeroPrimaries: String, Hashable, Sendable, Codable, CaseIterable {
            case disconnect
            case discardYoungerPrimary = "discard-younger-primary"
            case discardOlderPrimary = "discard-older-primary"
            case discardZeroChanges = "discard-zero-changes"
            case discardLeastChanges = "discard-least-changes"
        }
        public enum OnePrimary: String, Hashable, Sendable, Codable, CaseIterable {
            case disconnect, consensus
            case discardSecondary = "discard-secondary"
        }
        public enum TwoPrimaries: String, Hashable, Sendable, Codable, CaseIterable { case disconnect }

        public var zeroPrimaries: ZeroPrimaries
        public var onePrimary: OnePrimary
        public var twoPrimaries: TwoPrimaries

        public init(
            zeroPrimaries: ZeroPrimaries = .disconnect, onePrimary: OnePrimary = .disconnect,
            twoPrimaries: TwoPrimaries = .disconnect
        ) {
            self.zeroPrimaries = zeroPrimaries
            self.onePrimary = onePrimary
            self.twoPrimaries = twoPrimaries
        }
    }

    public static func compare(local: GenerationIDs, peer: GenerationIDs, localCrashedPrimary: Bool,
        peerCrashedPrimary: Bool, localWinsTies: Bool) -> GenerationComparison
    {
        let mine = GenerationIDs.masked(local.current)
        let theirs = GenerationIDs.masked(peer.current)
        let justCreated = GenerationIDs.justCreated
        if mine == justCreated && theirs == justCreated { return .equal }
        if mine == justCreated { return .fullTarget }
        if theirs == justCreated { return .fullSource }
        if mine == theirs {
            switch (localCrashedPrimary, peerCrashedPrimary) {
            case (true, true): return localWinsTies ? .bitmapSource : .bitmapTarget
            case (true, false): return .bitmapSource
            case (false, true): return .bitmapTarget
            case (false, false): return .equal
            }
        }
        let peerBitmap = GenerationIDs.masked(peer.bitmap)
        let localBitmap = GenerationIDs.masked(local.bitmap)
        if peerBitmap != 0 && mine == peerBitmap { return .bitmapTarget }
        if localBitmap != 0 && localBitmap == theirs { return .bitmapSource }
        let peerHistory = peer.history.map(GenerationIDs.masked).filter { $0 != 0 }
        let localHistory = local.history.map(GenerationIDs.masked).filter { $0 != 0 }
        if peerHistory.contains(mine) { return .fullTarget }
        if localHistory.contains(theirs) { return .fullSource }
        if localBitmap != 0 && localBitmap == peerBitmap { return .splitBrainAutoRecoverable }
        let localAll = Set(localHistory + (localBitmap != 0 ? [localBitmap] : []))
        let peerAll = Set(peerHistory + (peerBitmap != 0 ? [peerBitmap] : []))
        if !localAll.isDisjoint(with: peerAll) { return .splitBrainDisconnect }
        return .unrelated
    }

    /// DRBD's decision on connect: generation identifiers first, then disk states, then the after-split-brain
    /// policies and the operator's discard-my-data. Both sides compute it; the results mirror each other.
    public static func decide(local: NodeReport, peer: NodeReport, policies: SplitBrainPolicies) -> SyncDecision {
        // The side with the greater name breaks ties (DRBD's RESOLVE_CONFLICTS flag), so both agree.
        let localWinsTies = local.name > peer.name
        let comparison = Self.compare(
            local: local.generations, peer: peer.generations, localCrashedPrimary: local.crashedPrimary,
            peerCrashedPrimary: peer.crashedPrimary, localWinsTies: localWinsTies)
        var decision: SyncDecision
        switch comparison {
        case .equal: decision = .noSync
        case .bitmapSource: decision = .bitmapSync(localIsSource: true)
        case .bitmapTarget: decision = .bitmapSync(localIsSource: false)
        case .fullSource: decision = .fullSync(localIsSource: true)
        case .fullTarget: decision = .fullSync(localIsSource: false)
        case .unrelated: return .unrelatedData
        case .splitBrainAutoRecoverable, .splitBrainDisconnect:
            decision = Self.resolveSplitBrain(
                local: local, peer: peer, policies: policies, autoRecoverable: comparison == .splitBrainAutoRecoverable,
                localWinsTies: localWinsTies)
        }
        // An Inconsistent disk is always the target, whatever the identifiers say.
        let localInconsistent = local.disk <= .inconsistent
        let peerInconsistent = peer.disk <= .inconsistent
        if localInconsistent != peerInconsistent {
            let full: Bool
            switch decision {
            case .fullSync, .splitBrain: full = true
            default: full = false
            }
            let localIsSource = peerInconsistent
            decision = full ? .fullSync(localIsSource: localIsSource) : .bitmapSync(localIsSource: localIsSource)
        } else if localInconsistent && peerInconsistent {
            if case .splitBrain = decision { return decision }
            if case .unrelatedData = decision { return decision }
            // Neither has good data: nothing to sync until an operator forces one primary.
            return .noSync
        }
        // An Outdated disk never becomes a source.
        if case .bitmapSync(true) = decision, local.disk == .outdated, peer.disk > .outdated {
            return .splitBrain(reason: "\(local.name) is Outdated but its identifiers say it is newer")
        }
        return decision
    }

    static func resolveSplitBrain(
        local: NodeReport, peer: NodeReport, policies: SplitBrainPolicies, autoRecoverable: Bool, localWinsTies: Bool
    ) -> SyncDecision {
        // Manual recovery: one side named as the victim. Without a common bitmap generation the bitmaps do not
        // cover the divergence, so that case is a full sync.
        let localDiscards = local.discardMyData || peer.discardPeerData
        let peerDiscards = peer.discardMyData || local.discardPeerData
        if localDiscards != peerDiscards {
            let localIsSource = peerDiscards
            return autoRecoverable ? .bitmapSync(localIsSource: localIsSource) : .fullSync(localIsSource: localIsSource)
        }
        if localDiscards && peerDiscards {
            return .splitBrain(reason: "both sides asked to discard their data")
        }
        guard autoRecoverable else {
            return .splitBrain(reason: "the disks are related only through history; resolve with --discard")
        }
        let primaries = [local.role, peer.role].filter { $0 == .primary }.count
        let verdict: Int?  // +1 local is source, -1 local is target, nil: disconnect
        switch primaries {
        case 0:
            verdict = Self.zeroPrimaries(policies.zeroPrimaries, local: local, peer: peer, localWinsTies: localWinsTies)
        case 1:
            switch policies.onePrimary {
            case .disconnect: verdict = nil
            case .consensus:
                let zero = Self.zeroPrimaries(
                    policies.zeroPrimaries, local: local, peer: peer, localWinsTies: localWinsTies)
                // Accept only a result that discards the secondary's changes.
                if zero == -1 && local.role == .secondary { verdict = -1 }
                else if zero == 1 && local.role == .primary { verdict = 1 }
                else { verdict = nil }
            case .discardSecondary:
                verdict = local.role == .primary ? 1 : -1
            }
        default:
            verdict = nil
        }
        guard let verdict else {
            let policy: String
            switch primaries {
            case 0: policy = "after-sb-0pri \(policies.zeroPrimaries.rawValue)"
            case 1: policy = "after-sb-1pri \(policies.onePrimary.rawValue)"
            default: policy = "after-sb-2pri \(policies.twoPrimaries.rawValue)"
            }
            // Nodes in name order: both hosts print the same reason.
            let counts = [local, peer].sorted { $0.name < $1.name }
                .map { "\($0.name): \($0.dirtyBlocks) changed blocks" }.joined(separator: ", ")
            return .splitBrain(reason: "\(policy) did not resolve it (\(counts))")
        }
        return .bitmapSync(localIsSource: verdict > 0)
    }

    /// DRBD's drbd_asb_recover_0p: +1 local keeps its data, -1 local discards, nil disconnect.
    static func zeroPrimaries(
        _ policy: SplitBrainPolicies.ZeroPrimaries, local: NodeReport, peer: NodeReport, localWinsTies: Bool
    ) -> Int? {
        // Bitmap role bit set: this node was primary when it lost the peer (the older primary).
        let localWasPrimary = local.generations.bitmap & 1 == 1
        let peerWasPrimary = peer.generations.bitmap & 1 == 1
        let tie = localWinsTies ? 1 : -1
        switch policy {
        case .disconnect:
            return nil
        case .discardYoungerPrimary, .discardOlderPrimary:
            if localWasPrimary != peerWasPrimary {
                let localIsOlder = localWasPrimary
                return (policy == .discardYoungerPrimary) == localIsOlder ? 1 : -1
            }
            // No decision from the roles: DRBD falls back to discard-least-changes.
            return Self.zeroPrimaries(.discardLeastChanges, local: local, peer: peer, localWinsTies: localWinsTies)
        case .discardZeroChanges:
            switch (local.dirtyBlocks, peer.dirtyBlocks) {
            case (0, 0): return tie
            case (_, 0): return 1
            case (0, _): return -1
            default: return nil
            }
        case .discardLeastChanges:
            if local.dirtyBlocks < peer.dirtyBlocks { return -1 }
            if local.dirtyBlocks > peer.dirtyBlocks { return 1 }
            return tie
        }
    }
}
