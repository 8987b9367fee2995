extension Replication {
    /// The persistent replication state of the local disk (what meta.json holds besides its identity).
    public struct DiskData: Sendable, Hashable {
        public var disk: DiskState
        public var generations: GenerationIDs
        public var crashedPrimary: Bool
        public var peerOutdated: Bool

        public init(disk: DiskState, generations: GenerationIDs, crashedPrimary: Bool, peerOutdated: Bool) {
            self.disk = disk
            self.generations = generations
            self.crashedPrimary = crashedPrimary
            self.peerOutdated = peerOutdated
        }
    }

    /// What the dirty bitmap becomes when a connection is established.
    public enum BitmapChange: Sendable, Hashable {
        case unchanged
        /// Both sides agree and hold the same data: nothing is out of sync.
        case clear
        /// OR in the peer's bitmap (every block either side changed).
        case mergePeer
        /// Every block (a full sync).
        case setAll
    }

    /// What a new connection changes on this side.
    public struct Establishment: Sendable, Hashable {
        public var data: DiskData
        public var connection: ConnectionState
        public var peerDisk: DiskState
        public var bitmap: BitmapChange
        /// Set when a resync starts.
        public var resync: ResyncStart?
    }

    /// A resync that starts: whether this side sends, and whether every block goes.
    public struct ResyncStart: Sendable, Hashable {
        public var localIsSource: Bool
        public var full: Bool
    }

    /// The handshake decided `decision` (not a split brain): the local state that follows.
    public static func establish(
        _ data: DiskData, role: Role, peer: NodeReport, decision: SyncDecision
    ) -> Establishment {
        var result = Establishment(data: data, connection: .connected, peerDisk: peer.disk, bitmap: .unchanged)
        switch decision {
        case .noSync:
            if data.disk > .inconsistent && peer.disk > .inconsistent {
                result.data.generations.clearBitmap()
                result.data.disk = .upToDate
                result.peerDisk = .upToDate
                result.bitmap = .clear
                if role == .secondary { result.data.crashedPrimary = false }
            }
            result.data.peerOutdated = false
        case .bitmapSync(let source), .fullSync(let source):
            var full = false
            if case .fullSync = decision { full = true }
            result.bitmap = full ? .setAll : .mergePeer
            result.resync = ResyncStart(localIsSource: source, full: full)
            if source {
                result.connection = .syncSource
                result.peerDisk = .inconsistent
            } else {
                result.connection = .syncTarget
                result.data.disk = .inconsistent
            }
        case .splitBrain, .unrelatedData:
            break
        }
        return result
    }

    /// The link broke: a primary now records what the peer lacks under a new generation (the old one becomes
    /// the Bitmap identifier), unless it already does.
    public static func linkLost(_ data: DiskData, role: Role, random: UInt64) -> DiskData {
        var data = data
        if role == .primary && data.generations.bitmap == 0 {
            data.generations.startNewGeneration(random: random, asPrimary: true)
        }
        return data
    }

    /// The resync source sent everything and the peer acknowledged it.
    public static func resyncSourceFinished(_ data: DiskData, role: Role) -> DiskData {
        var data = data
        data.generations.clearBitmap()
        if role == .secondary { data.crashedPrimary = false }
        data.peerOutdated = false
        return data
    }

    /// The resync target received everything: it now holds the source's generation.
    public static func resyncTargetFinished(_ data: DiskData, source: GenerationIDs) -> DiskData {
        var data = data
        data.generations.adoptAfterSync(from: source)
        data.disk = .upToDate
        data.crashedPrimary = false
        return data
    }

    /// What the link must do after a promotion.
    public enum PromotionLinkAction: Sendable, Hashable {
        /// Tell the peer our new role.
        case announceRole
        /// Drop the connection so the next handshake decides the (full) sync toward the peer.
        case reconnectToSync
    }

    public struct Promotion: Sendable, Hashable {
        public var data: DiskData
        public var linkAction: PromotionLinkAction
    }

    /// `promote`: DRBD's rules (`checkPromotion`), then the generation this side's writes go to. `random` must
    /// come from a good random source (the shell provides it).
    public static func promote(
        volume: String, _ data: DiskData, connection: ConnectionState, peerRole: Role, peerDisk: DiskState,
        hasPeer: Bool, configAllowsTwoPrimaries: Bool, request: PromotionRequest, random: UInt64
    ) -> Result<Promotion, PromotionRefusal> {
        if request.allowTwoPrimaries && !configAllowsTwoPrimaries {
            return .failure(PromotionRefusal(
                message: "volume \(volume): two primaries requested but the config does not allow them"))
        }
        let decision = Self.checkPromotion(
            volume: volume, localDisk: data.disk, connection: connection, peerRole: peerRole, peerDisk: peerDisk,
            hasPeer: hasPeer, request: request)
        if case .refused(let reason) = decision { return .failure(PromotionRefusal(message: reason)) }
        var data = data
        let wasJustCreated = GenerationIDs.masked(data.generations.current) == GenerationIDs.justCreated
        if wasJustCreated {
            // First use: this side's data becomes generation one.
            var fresh = random & ~1
            if fresh == 0 || fresh == GenerationIDs.justCreated { fresh = 0x5EED_0000_0000_0010 }
            data.generations.current = fresh
        } else if (!connection.isConnected && hasPeer) || data.disk <= .inconsistent {
            data.generations.startNewGeneration(random: random, asPrimary: true)
        }
        if data.disk < .upToDate { data.disk = .upToDate }
        if request.peerFencedOrOutdated { data.peerOutdated = true }
        data.crashedPrimary = true
        data.generations.setRole(primary: true)
        return .success(Promotion(
            data: data, linkAction: wasJustCreated || request.force ? .reconnectToSync : .announceRole))
    }

    public struct PromotionRefusal: Error, Sendable, Hashable {
        public var message: String
    }
}
