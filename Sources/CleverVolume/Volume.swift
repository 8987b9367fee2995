#if canImport(Glibc)
import Glibc
#endif
import CleverNBD
import CleverReplication
import Foundation
import Logging

/// A replicated volume on this host: the local disk, its metadata, the data path used by the NBD server, and
/// the state the replication link and the control socket act on. Decisions come from the pure
/// `Replication` core; this class performs them.
///
/// Locking: `lock` guards the mutable state below. It may be held while taking a link's `sendLock`, never the
/// other way round.
public final class Volume: @unchecked Sendable {
    public let config: VolumeConfig
    let store: MetadataStore
    let backing: BackingStore
    let activityLog: ActivityLog
    /// Also a condition: held writes wait on it (see `waitWhileFencedLocked`).
    let lock = NSCondition()
    /// Carries the metadata keys `node` and `volume`; records about one operation add `op`.
    let logger: Logger
    /// Local halves of replicated writes, applied one after another in the order their frames went to the
    /// peer (they are queued under the link's send lock).
    let localWrites = DispatchQueue(label: "clevervm.volume.local-writes")

    var metadata: VolumeMetadata
    var role: Replication.Role = .secondary
    var connection: Replication.ConnectionState
    var peerRole: Replication.Role = .unknown
    var peerDisk: Replication.DiskState = .unknown
    var bitmap: Replication.DirtyBitmap
    var bitmapChanged = false
    var link: PeerLink?
    /// Whether to connect, and which connection holds the link (split brain and resolve included).
    var linkControl: Replication.LinkControl
    /// Numbers connections for the link control.
    var connectionCounter: UInt64 = 0
    /// Accepted connections still in their handshake (bounded by `maxConcurrentHandshakes`).
    var handshakesInFlight = 0
    var lastPeerReport: Replication.NodeReport?
    var lastLinkError: String?
    /// Completions of writes in flight when the link broke, held while fencing holds writes.
    var heldCompletions: [@Sendable () -> Void] = []
    /// Since when writes are held (for status).
    var writesHeldSince: Date?
    var resync: ResyncProgress?
    var verify: VerifyProgress?
    var nbdClients: [ObjectIdentifier: NBDConnection] = [:]
    var bytesDirtied: UInt64 = 0
    var resyncBytesMoved: UInt64 = 0
    /// Bytes the NBD clients read or wrote (the resync controller yields while this grows).
    var applicationIOBytes: UInt64 = 0
    /// The backing store failed and is detached (Volume+DiskErrors): why. Nothing is acknowledged any more.
    var detachedReason: String?
    /// Metadata, bitmap or activity-log writes that failed, by what ("metadata", "bitmap", "activity log"):
    /// role changes are refused while any is set.
    var metadataErrors: [String: String] = [:]

    public var hasPeer: Bool { self.config.peer != nil }

    /// Blocks of the volume (the bitmap's size), without touching the bitmap.
    var blockCount: UInt64 { (self.config.size + Replication.DirtyBitmap.blockSize - 1) / Replication.DirtyBitmap.blockSize }

    /// The replication part of the metadata, as the pure core sees it.
    var diskData: Replication.DiskData {
        get {
            Replication.DiskData(
                disk: self.metadata.disk, generations: self.metadata.generations,
                crashedPrimary: self.metadata.crashedPrimary, peerOutdated: self.metadata.peerOutdated)
        }
        set {
            self.metadata.disk = newValue.disk
            self.metadata.generations = newValue.generations
            self.metadata.crashedPrimary = newValue.crashedPrimary
            self.metadata.peerOutdated = newValue.peerOutdated
        }
    }

    /// `logger`: where the volume's records go (the daemon's goes to stderr, for journald); none by default.
    /// `backing`: the local disk when not the file or device `config.backing` names (a fault-injecting one in tests).
    public init(config: VolumeConfig, logger: Logger = Logger(label: "clevervm.volume", factory: { _ in SwiftLogNoOpLogHandler() }),
                backing: BackingStore? = nil) throws {
        self.config = config
        var logger = logger
        logger[metadataKey: "node"] = "\(config.node)"
        logger[metadataKey: "volume"] = "\(config.name)"
        self.logger = logger
        self.store = try MetadataStore(directory: config.metaDir)
        self.backing = try backing ?? BackingStore(path: config.backing, size: config.size)
        self.activityLog = try ActivityLog(path: self.store.activityLogPath, capacity: config.activityLogExtents)
        var metadata = try self.store.loadMetadata(volume: config.name, size: config.size)
        var bitmap: Replication.DirtyBitmap
        if let saved = self.store.loadBitmap(volumeSize: config.size) {
            bitmap = saved
        } else {
            bitmap = Replication.DirtyBitmap(volumeSize: config.size)
            // A missing or damaged bitmap while diverged: every block may differ.
            if metadata.generations.bitmap != 0 { bitmap.setAll() }
        }
        if metadata.crashedPrimary {
            // The previous primary run ended without a clean demote: writes in flight then may be missing on
            // the peer. The activity log names the extents they can be in.
            let extents = self.activityLog.recordedExtents()
            for extent in extents {
                let start = UInt64(extent) * ActivityLog.extentSize
                bitmap.mark(offset: start, length: min(ActivityLog.extentSize, config.size - min(start, config.size)))
            }
            logger.warning("crashed primary: \(extents.count) activity-log extents marked dirty (\(bitmap.setCount) blocks)")
        }
        metadata.role = .secondary
        metadata.generations.setRole(primary: false)
        self.metadata = metadata
        self.bitmap = bitmap
        self.linkControl = Replication.LinkControl(hasPeer: config.peer != nil)
        self.connection = self.linkControl.connectionState
        try self.store.saveBitmap(bitmap)
        try self.activityLog.clear()
        try self.store.save(metadata)
    }

    // MARK: Export

    public var nbdExport: NBD.Export {
        NBD.Export(
            name: self.config.name, description: "CleverVM volume \(self.config.name)", size: self.config.size,
            flags: [.sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes, .canMultiConn])
    }

    /// Exports are offered only while primary.
    public var currentExports: [NBD.Export] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.role == .primary ? [self.nbdExport] : []
    }

    func persistLocked() {
        do {
            try self.store.save(self.metadata)
            self.noteMetadataLocked("metadata", nil)
        } catch {
            self.noteMetadataLocked("metadata", error)
        }
    }

    func saveBitmapLocked() {
        guard self.bitmapChanged else { return }
        do {
            try self.store.saveBitmap(self.bitmap)
            self.bitmapChanged = false
            self.noteMetadataLocked("bitmap", nil)
        } catch {
            self.noteMetadataLocked("bitmap", error)
        }
    }

    func markDirtyLocked(offset: UInt64, length: UInt64) {
        // Without a peer there is nobody to resync to: nothing to track.
        guard self.hasPeer else { return }
        let before = self.bitmap.setCount
        self.bitmap.mark(offset: offset, length: length)
        if self.bitmap.setCount != before {
            self.bitmapChanged = true
            self.bytesDirtied += (self.bitmap.setCount - before) * Replication.DirtyBitmap.blockSize
        }
    }

    /// Write-ahead activity-log step for a write about to happen (primary only).
    func activateExtentsLocked(offset: UInt64, length: UInt64) throws {
        guard self.hasPeer else { return }
        let plan = self.activityLog.plan(offset: offset, length: length)
        guard !plan.missing.isEmpty else { return }
        if !plan.evict.isEmpty {
            // Extents leave the log only once the bitmap covering them is durable.
            self.bitmapChanged = true
            self.saveBitmapLocked()
            if let failure = self.metadataErrors["bitmap"] { throw VolumeError("activity log: the bitmap cannot be saved: \(failure)") }
        }
        do {
            try self.activityLog.commit(missing: plan.missing, evict: plan.evict)
            self.noteMetadataLocked("activity log", nil)
        } catch {
            self.noteMetadataLocked("activity log", error)
            throw error
        }
    }

    /// The link to replicate to, when connected in a state that carries application writes.
    func replicationLinkLocked() -> PeerLink? {
        guard let link = self.link else { return nil }
        switch self.connection {
        case .connected, .syncSource, .syncTarget, .verifySource, .verifyTarget: return link
        default: return nil
        }
    }

    /// Whether new writes must wait (fencing `resource-only`, link lost, peer not yet known Outdated).
    var writesHeldLocked: Bool {
        Replication.holdsWrites(
            policy: self.config.fencing ?? .dontCare, hasPeer: self.hasPeer, role: self.role,
            replicating: self.replicationLinkLocked() != nil, peerOutdated: self.metadata.peerOutdated)
    }

    /// Blocks while fencing holds writes; returns with the lock held, once writes may go on (or the role or
    /// the process changed, which the caller checks).
    func waitWhileFencedLocked() {
        if self.writesHeldLocked && self.writesHeldSince == nil {
            self.writesHeldSince = Date()
            self.logger.warning("fencing: writes held until the peer is known Outdated or the link is back", metadata: ["op": "fence"])
        }
        while self.writesHeldLocked && !self.linkControl.isStopping { self.lock.wait() }
    }

    /// Fencing may have let go: wake held writes and run held completions (call with the lock not held).
    func releaseHeldWrites() {
        self.lock.lock()
        guard !self.writesHeldLocked || self.linkControl.isStopping || self.role != .primary else {
            self.lock.unlock()
            return
        }
        let completions = self.heldCompletions
        self.heldCompletions = []
        if let since = self.writesHeldSince {
            self.logger.warning("fencing: writes released after \(String(format: "%.1f", Date().timeIntervalSince(since))) s", metadata: ["op": "fence"])
        }
        self.writesHeldSince = nil
        self.lock.broadcast()
        self.lock.unlock()
        for completion in completions { completion() }
    }

    /// The cluster recorded the peer's disk as Outdated (DRBD's fence-peer handler returned "outdated").
    public func markPeerOutdated() -> Result<String, VolumeError> {
        self.lock.lock()
        guard self.hasPeer else {
            self.lock.unlock()
            return .failure(VolumeError("volume \(self.config.name) has no peer"))
        }
        self.metadata.peerOutdated = true
        self.persistLocked()
        self.lock.unlock()
        self.releaseHeldWrites()
        return .success("volume \(self.config.name): peer marked Outdated; writes go on alone")
    }

    /// Whether writes currently go to the peer (a hint: the write path decides again under the lock).
    var isReplicating: Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.replicationLinkLocked() != nil
    }

    // MARK: Data path (called by NBD connections)

    /// An errno from either half of a replicated write (ENOSPC stays ENOSPC; anything unknown is EIO).
    static func errorCode(_ error: UInt32) -> NBD.ErrorCode {
        error == 0 ? .none : NBD.ErrorCode(rawValue: error) ?? .io
    }

    static func errno(of error: any Error) -> NBD.ErrorCode {
        if let system = error as? SystemError, system.code == ENOSPC { return .noSpace }
        return .io
    }

    /// Writes `data` at `offset`; `done` runs once the write is acknowledged under the protocol.
    /// `release` runs once `data` is no longer needed (after the local write and the send).
    func write(
        offset: UInt64, data: UnsafeRawBufferPointer, fua: Bool, release: @escaping @Sendable () -> Void = {},
        done: @escaping @Sendable (NBD.ErrorCode) -> Void
    ) {
        self.lock.lock()
        self.waitWhileFencedLocked()
        guard self.role == .primary, !self.linkControl.isStopping else {
            self.lock.unlock()
            release()
            return done(.shutdown)
        }
        guard !self.detachedLocked else {
            self.lock.unlock()
            release()
            return done(.io)
        }
        self.applicationIOBytes &+= UInt64(data.count)
        do {
            try self.activateExtentsLocked(offset: offset, length: UInt64(data.count))
        } catch {
            self.lock.unlock()
            release()
            self.logger.error("activity log: \(error)")
            return done(.io)
        }
        let link = self.replicationLinkLocked()
        if link == nil { self.markDirtyLocked(offset: offset, length: UInt64(data.count)) }
        // While a resync reads blocks to send, the local write must land before the replicated copy is
        // queued (see resyncSourceLoop); otherwise send first, so the peer writes while we do.
        let sendFirst = self.connection == .connected && link != nil
        self.lock.unlock()

        guard let link else {
            defer { release() }
            do {
                try self.backing.write(offset: offset, data.baseAddress!, count: data.count)
            } catch {
                return done(self.localWriteFailed("write", error, offset: offset, length: UInt64(data.count)))
            }
            if fua {
                do { try self.backing.sync() } catch {
                    self.detach("fdatasync", error)
                    return done(.io)
                }
            }
            return done(.none)
        }
        let waitPeer = self.config.protocolMode == .C || fua
        let pending = PeerLink.Pending(
            offset: offset, length: UInt64(data.count), isFlush: false, waitingLocal: true, waitingPeer: waitPeer,
            completion: { error in done(Self.errorCode(error)) })
        let shared = SharedBytes(data)
        let finishLocally: @Sendable () -> Void = { [self] in
            var localError: UInt32 = 0
            do {
                try self.backing.write(offset: offset, shared.bytes.baseAddress!, count: shared.bytes.count)
            } catch {
                localError = UInt32(self.localWriteFailed("write", error, offset: offset, length: UInt64(shared.bytes.count)).rawValue)
            }
            release()
            guard fua && localError == 0 else {
                if link.localDone(pending, error: localError) { pending.completion(pending.error) }
                return
            }
            // The sync may take milliseconds: not on the ordered queue, so later writes keep flowing.
            DispatchQueue.global().async { [self] in
                var syncError: UInt32 = 0
                do { try self.backing.sync() } catch {
                    self.detach("fdatasync", error)
                    syncError = UInt32(NBD.ErrorCode.io.rawValue)
                }
                if link.localDone(pending, error: syncError) { pending.completion(pending.error) }
            }
        }
        var localError: UInt32 = 0
        // The local write is queued (or, during a resync, done) under the send lock, on the ordered queue: this
        // host applies writes in the order the peer receives them, so two overlapping writes in flight end the
        // same on both hosts. Queued, it runs beside the peer's write and beside this connection reading its
        // next request.
        let queued = link.sendWrite(offset: offset, data: data, fua: fua, pending: pending) {
            if sendFirst {
                self.localWrites.async(execute: finishLocally)
                return
            }
            self.localWrites.sync {
                do {
                    try self.backing.write(offset: offset, data.baseAddress!, count: data.count)
                } catch {
                    localError = UInt32(self.localWriteFailed("write", error, offset: offset, length: UInt64(data.count)).rawValue)
                }
            }
        }
        if !queued {
            self.lock.lock()
            self.markDirtyLocked(offset: offset, length: UInt64(data.count))
            self.lock.unlock()
            if link.peerGaveUp(pending) { pending.completion(pending.error) }
        }
        if sendFirst { return }
        if fua && localError == 0 {
            do { try self.backing.sync() } catch {
                self.detach("fdatasync", error)
                localError = UInt32(NBD.ErrorCode.io.rawValue)
            }
        }
        release()
        if link.localDone(pending, error: localError) { pending.completion(pending.error) }
    }

    /// TRIM (`trim`) or WRITE_ZEROES.
    func zero(offset: UInt64, length: UInt32, trim: Bool, fua: Bool, done: @escaping @Sendable (NBD.ErrorCode) -> Void) {
        self.lock.lock()
        self.waitWhileFencedLocked()
        guard self.role == .primary, !self.linkControl.isStopping else {
            self.lock.unlock()
            return done(.shutdown)
        }
        guard !self.detachedLocked else {
            self.lock.unlock()
            return done(.io)
        }
        self.applicationIOBytes &+= UInt64(length)
        do {
            try self.activateExtentsLocked(offset: offset, length: UInt64(length))
        } catch {
            self.lock.unlock()
            return done(.io)
        }
        let link = self.replicationLinkLocked()
        if link == nil { self.markDirtyLocked(offset: offset, length: UInt64(length)) }
        self.lock.unlock()
        var failure: NBD.ErrorCode?
        // After any replicated writes still queued locally, under the send lock (see `write`).
        let zeroLocally = {
            self.localWrites.sync {
                do {
                    if trim {
                        try self.backing.trim(offset: offset, length: UInt64(length))
                    } else {
                        try self.backing.writeZeroes(offset: offset, length: UInt64(length))
                    }
                } catch {
                    failure = self.localWriteFailed(trim ? "trim" : "write zeroes", error, offset: offset, length: UInt64(length))
                }
            }
        }
        guard let link else {
            zeroLocally()
            do {
                if failure == nil && fua { try self.backing.sync() }
            } catch {
                self.detach("fdatasync", error)
                failure = .io
            }
            return done(failure ?? .none)
        }
        let pending = PeerLink.Pending(
            offset: offset, length: UInt64(length), isFlush: false, waitingLocal: true,
            waitingPeer: self.config.protocolMode == .C || fua, completion: { error in done(Self.errorCode(error)) })
        let queued = link.sendOperation(
            { .zero(sequence: $0, offset: offset, length: length, trim: trim, fua: fua) }, pending: pending,
            inOrder: zeroLocally)
        do {
            if failure == nil && fua { try self.backing.sync() }
        } catch {
            self.detach("fdatasync", error)
            failure = .io
        }
        if !queued {
            self.lock.lock()
            self.markDirtyLocked(offset: offset, length: UInt64(length))
            self.lock.unlock()
            _ = link.peerGaveUp(pending)
        }
        let localError = failure.map { UInt32($0.rawValue) } ?? 0
        if link.localDone(pending, error: localError) { pending.completion(pending.error) }
    }

    /// FLUSH: durable on this host, and on the peer when connected.
    func flush(done: @escaping @Sendable (NBD.ErrorCode) -> Void) {
        self.lock.lock()
        guard !self.detachedLocked else {
            self.lock.unlock()
            return done(.io)
        }
        let link = self.replicationLinkLocked()
        self.lock.unlock()
        let pending = PeerLink.Pending(
            offset: 0, length: 0, isFlush: true, waitingLocal: true, waitingPeer: link != nil,
            completion: { error in done(Self.errorCode(error)) })
        if let link, !link.sendOperation({ .flush(sequence: $0) }, pending: pending) {
            _ = link.peerGaveUp(pending)
        }
        var localError: UInt32 = 0
        do { try self.backing.sync() } catch {
            // Never carried on from: the kernel may have dropped the pages a later sync would claim as durable.
            self.detach("fdatasync", error)
            localError = UInt32(NBD.ErrorCode.io.rawValue)
        }
        if let link {
            if link.localDone(pending, error: localError) { pending.completion(pending.error) }
        } else {
            done(localError == 0 ? .none : .io)
        }
    }

    func read(offset: UInt64, into pointer: UnsafeMutableRawPointer, count: Int) -> NBD.ErrorCode {
        self.lock.lock()
        self.applicationIOBytes &+= UInt64(count)
        let detached = self.detachedLocked
        self.lock.unlock()
        if detached { return .io }
        do {
            try self.backing.read(offset: offset, into: pointer, count: count)
            return .none
        } catch {
            self.detach("read", error)
            return .io
        }
    }

    // MARK: NBD clients

    func clientConnected(_ connection: NBDConnection) {
        self.lock.lock()
        self.nbdClients[ObjectIdentifier(connection)] = connection
        self.lock.unlock()
    }

    func clientGone(_ connection: NBDConnection) {
        self.lock.lock()
        self.nbdClients[ObjectIdentifier(connection)] = nil
        self.lock.unlock()
    }

    // MARK: Roles

    public func promote(_ request: Replication.PromotionRequest) -> Result<String, VolumeError> {
        self.lock.lock()
        defer { self.lock.unlock() }
        if self.role == .primary { return .success("volume \(self.config.name) is already Primary") }
        if let refusal = self.roleChangeRefusalLocked("promoted") { return .failure(VolumeError(refusal)) }
        let promotion: Replication.Promotion
        switch Replication.promote(
            volume: self.config.name, self.diskData, connection: self.connection, peerRole: self.peerRole,
            peerDisk: self.peerDisk, hasPeer: self.hasPeer, configAllowsTwoPrimaries: self.config.allowTwoPrimaries,
            request: request, random: Self.randomGeneration())
        {
        case .failure(let refusal): return .failure(VolumeError(refusal.message))
        case .success(let result): promotion = result
        }
        // The metadata that says "Primary, crashed until a clean demote" must be durable before any write is
        // taken: if it cannot be saved, the promotion does not happen.
        var promoted = self.metadata
        promoted.disk = promotion.data.disk
        promoted.generations = promotion.data.generations
        promoted.crashedPrimary = promotion.data.crashedPrimary
        promoted.peerOutdated = promotion.data.peerOutdated
        promoted.role = .primary
        do {
            try self.store.save(promoted)
        } catch {
            return .failure(VolumeError("volume \(self.config.name): not promoted: metadata \(self.store.metaPath) cannot be saved: \(error)"))
        }
        self.metadata = promoted
        self.role = .primary
        if let link = self.link {
            switch promotion.linkAction {
            case .reconnectToSync:
                // Let the handshake decide the (full) sync toward the peer.
                link.send(.goodbye("peer forced primary; reconnecting to sync"))
                link.shutdownSocket()
            case .announceRole:
                link.send(.roleChanged(.primary))
            }
        }
        self.logger.info("promoted to Primary (generations \(self.metadata.generations))", metadata: ["op": "promote"])
        return .success("volume \(self.config.name) is Primary")
    }

    public func demote(force: Bool) -> Result<String, VolumeError> {
        self.lock.lock()
        if self.role == .secondary {
            self.lock.unlock()
            return .success("volume \(self.config.name) is already Secondary")
        }
        if let refusal = self.roleChangeRefusalLocked("demoted") {
            self.lock.unlock()
            return .failure(VolumeError(refusal))
        }
        let clients = Array(self.nbdClients.values)
        if !clients.isEmpty && !force {
            self.lock.unlock()
            return .failure(VolumeError(
                "volume \(self.config.name): \(clients.count) NBD client(s) connected; stop them or use --force"))
        }
        self.role = .secondary
        self.lock.broadcast()
        let held = self.heldCompletions
        self.heldCompletions = []
        self.writesHeldSince = nil
        self.lock.unlock()
        for completion in held { completion() }
        for client in clients { client.abort() }
        self.lock.lock()
        defer { self.lock.unlock() }
        self.link?.send(.roleChanged(.secondary))
        // A clean demote is recorded only once the data, the bitmap and the activity log are durable; if any
        // of them fails, the metadata keeps saying "crashed primary", so the next connect resyncs the
        // activity-log extents, and the operator is told.
        do {
            // A detached store holds nothing worth syncing (its disk is Failed and resyncs from the peer).
            if self.detachedReason == nil { try self.backing.sync() }
            try self.store.saveBitmap(self.bitmap)
            self.bitmapChanged = false
            try self.activityLog.clear()
            var demoted = self.metadata
            demoted.role = .secondary
            demoted.crashedPrimary = false
            demoted.generations.setRole(primary: false)
            try self.store.save(demoted)
            self.metadata = demoted
        } catch {
            self.metadata.generations.setRole(primary: false)
            self.logger.error("demote: \(error)", metadata: ["op": "demote"])
            return .failure(VolumeError("volume \(self.config.name) is Secondary, but its clean demote could not be "
                + "recorded (\(error)); it counts as a crashed primary"))
        }
        self.logger.info("demoted to Secondary", metadata: ["op": "demote"])
        return .success("volume \(self.config.name) is Secondary")
    }

    /// Marks the local data Outdated (the fencing path for a secondary that lost its primary).
    public func outdate() -> Result<String, VolumeError> {
        self.lock.lock()
        defer { self.lock.unlock() }
        guard self.role == .secondary else { return .failure(VolumeError("volume \(self.config.name): Primary cannot be outdated")) }
        if self.metadata.disk > .outdated { self.metadata.disk = .outdated }
        self.persistLocked()
        return .success("volume \(self.config.name) disk is \(self.metadata.disk)")
    }

    public func shutdown() {
        self.lock.lock()
        let actions = self.linkControl.stop()
        let clients = Array(self.nbdClients.values)
        self.lock.broadcast()
        self.lock.unlock()
        for client in clients { client.abort() }
        self.perform(actions)
        self.lock.lock()
        self.saveBitmapLocked()
        self.lock.unlock()
    }
}

/// Resync progress, for status (percent, rate, ETA).
struct ResyncProgress {
    var localIsSource: Bool
    var totalBlocks: UInt64
    var startedAt: Date
    var bytesMoved: UInt64 = 0
    var full: Bool
    /// The resync controller's latest decision (source side).
    var decision: Replication.ResyncController.Decision?
}

struct VerifyProgress {
    var totalBlocks: UInt64
    var checkedBlocks: UInt64 = 0
    var requestedBlocks: UInt64 = 0
    static let listedLimit = 10_000
    var differing: [UInt64] = []
    var differingCount: UInt64 = 0
    var startedAt: Date
    var finished = false
}

/// A borrowed byte buffer handed to another thread; the owner keeps it alive until `release` runs.
struct SharedBytes: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
}
