import CleverReplication
import Foundation

/// A snapshot of a volume's state in DRBD's vocabulary, for `status` and `status --json`.
public struct VolumeStatus: Codable, Hashable, Sendable {
    public struct Sync: Codable, Hashable, Sendable {
        public var localIsSource: Bool
        public var full: Bool
        public var percentDone: Double
        public var bytesMoved: UInt64
        public var bytesRemaining: UInt64
        public var rateMiBPerSecond: Double
        public var etaSeconds: Double?
        /// On the source: the rate the resync controller allows now, and why (`plan`, `maxRate`,
        /// `applicationIO` when held to c-min-rate, `fixedRate`).
        public var controllerLimitMiBPerSecond: Double?
        public var controllerReason: String?
    }

    public struct Verify: Codable, Hashable, Sendable {
        public var finished: Bool
        public var checkedBlocks: UInt64
        public var totalBlocks: UInt64
        /// The first 10,000 differing blocks (all are counted in `differingCount` and marked for resync).
        public var differingBlocks: [UInt64]
        public var differingCount: UInt64
    }

    public var volume: String
    public var node: String
    public var peer: String?
    public var connection: String
    public var role: String
    public var peerRole: String
    public var disk: String
    public var peerDisk: String
    public var protocolMode: String
    public var generations: String
    public var crashedPrimary: Bool
    public var peerOutdated: Bool
    public var outOfSyncBlocks: UInt64
    public var bytesDirtied: UInt64
    public var resyncBytesMoved: UInt64
    public var activityLogTransactions: UInt64
    public var nbdClients: Int
    public var sync: Sync?
    public var verify: Verify?
    public var splitBrain: String?
    public var lastLinkError: String?
    /// Changed blocks the peer reported at the last connect attempt (for `resolve --dry-run`).
    public var peerChangedBlocks: UInt64?
    /// The fencing policy (`dont-care`, `resource-only`).
    public var fencing: String?
    /// Fencing holds writes: the link is down and the peer is not yet known Outdated.
    public var writesHeld: Bool?
    /// The backing store failed and is detached (on-io-error detach): what failed. Nothing is acknowledged.
    public var detached: String?
    /// Metadata, bitmap or activity-log writes that fail (role changes are refused meanwhile).
    public var metadataErrors: [String: String]?

    /// One line: `vol0 Connected Primary/Secondary UpToDate/UpToDate`, plus sync progress.
    public var line: String {
        var text = "\(self.volume) \(self.connection) \(self.role)/\(self.peerRole) \(self.disk)/\(self.peerDisk)"
        if let sync = self.sync {
            text += String(format: " sync'ed: %.1f%% (%.1f MiB/s", sync.percentDone, sync.rateMiBPerSecond)
            if let eta = sync.etaSeconds { text += String(format: ", ETA %.0fs", eta) }
            if sync.controllerReason == "applicationIO" { text += ", yielding to application I/O" }
            text += ")"
        }
        if self.outOfSyncBlocks > 0 { text += " out-of-sync: \(self.outOfSyncBlocks * 4) KiB" }
        if let splitBrain = self.splitBrain { text += " split-brain: \(splitBrain)" }
        if self.writesHeld == true { text += " writes held (fencing: waiting for the peer to be outdated)" }
        if let detached = self.detached { text += " detached: \(detached)" }
        if let errors = self.metadataErrors, !errors.isEmpty {
            text += " metadata errors (role changes refused): " + errors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
        }
        return text
    }
}

extension Volume {
    public func status(now: Date = Date()) -> VolumeStatus {
        self.lock.lock()
        defer { self.lock.unlock() }
        var sync: VolumeStatus.Sync?
        if let resync = self.resync {
            let remaining = self.bitmap.setCount * Replication.DirtyBitmap.blockSize
            let total = max(resync.totalBlocks * Replication.DirtyBitmap.blockSize, 1)
            let elapsed = max(now.timeIntervalSince(resync.startedAt), 0.001)
            let rate = Double(resync.bytesMoved) / elapsed
            let done = total > remaining ? Double(total - remaining) / Double(total) * 100 : 0
            sync = VolumeStatus.Sync(
                localIsSource: resync.localIsSource, full: resync.full, percentDone: done,
                bytesMoved: resync.bytesMoved, bytesRemaining: remaining, rateMiBPerSecond: rate / 1048576,
                etaSeconds: rate > 0 ? Double(remaining) / rate : nil,
                controllerLimitMiBPerSecond: resync.decision.map {
                    Double($0.bytes) / Self.resyncStepSeconds / 1_048_576
                },
                controllerReason: resync.decision?.reason.rawValue)
        }
        let verify = self.verify.map {
            VolumeStatus.Verify(
                finished: $0.finished, checkedBlocks: $0.checkedBlocks, totalBlocks: $0.totalBlocks,
                differingBlocks: $0.differing, differingCount: $0.differingCount)
        }
        return VolumeStatus(
            volume: self.config.name, node: self.config.node, peer: self.config.peer?.name,
            connection: self.connection.rawValue, role: self.role.rawValue, peerRole: self.peerRole.rawValue,
            disk: self.metadata.disk.rawValue, peerDisk: self.peerDisk.rawValue,
            protocolMode: self.config.protocolMode.rawValue, generations: self.metadata.generations.description,
            crashedPrimary: self.metadata.crashedPrimary, peerOutdated: self.metadata.peerOutdated,
            outOfSyncBlocks: self.bitmap.setCount, bytesDirtied: self.bytesDirtied,
            resyncBytesMoved: self.resyncBytesMoved, activityLogTransactions: self.activityLog.transactions,
            nbdClients: self.nbdClients.count, sync: sync, verify: verify, splitBrain: self.splitBrainText,
            lastLinkError: self.lastLinkError, peerChangedBlocks: self.lastPeerReport?.dirtyBlocks,
            fencing: (self.config.fencing ?? .dontCare).rawValue,
            writesHeld: self.writesHeldLocked, detached: self.detachedReason,
            metadataErrors: self.metadataErrors.isEmpty ? nil : self.metadataErrors)
    }

    /// The status's split-brain text: the handshake's reason, while a split brain awaits a resolve.
    var splitBrainText: String? {
        if let record = self.linkControl.splitBrain { return record.reason }
        return self.linkControl.isUnrelatedData ? "unrelated data" : nil
    }

    /// `resolve --discard HOST`: manual split-brain recovery, from either host in one command: the peer
    /// accepts a connection that carries a resolve while it awaits one. With `dryRun`, only says what each
    /// side changed, as both sides reported it at the last handshake (the same numbers on both hosts).
    public func resolve(discard host: String, dryRun: Bool) -> Result<String, VolumeError> {
        self.lock.lock()
        let peerName = self.config.peer?.name ?? "(no peer)"
        let record = self.linkControl.splitBrain
        let mine = self.bitmap.setCount
        let theirs = self.lastPeerReport?.dirtyBlocks
        let role = self.role
        let connected = self.connection.isConnected
        self.lock.unlock()
        guard self.hasPeer else { return .failure(VolumeError("volume \(self.config.name) has no peer")) }
        guard host == self.config.node || host == peerName else {
            return .failure(VolumeError("volume \(self.config.name): --discard \(host) names neither \(self.config.node) nor \(peerName)"))
        }
        let keeper = host == self.config.node ? peerName : self.config.node
        let summary: String
        if let record {
            let lost = host == record.localNode ? record.localChangedBlocks : record.peerChangedBlocks
            summary = "split brain: \(record.changesLine) (as both hosts reported at the last handshake); "
                + "discarding \(host) rolls back its \(lost) changed blocks and resyncs from \(keeper)"
        } else {
            let theirsText = theirs.map { "\($0) blocks (\($0 * 4) KiB) at the last connect" } ?? "unknown (never connected)"
            summary = "no split brain recorded; \(self.config.node) changed \(mine) blocks (\(mine * 4) KiB); "
                + "\(peerName) changed \(theirsText); discarding \(host) resyncs it from \(keeper)"
        }
        if dryRun { return .success("dry run: " + summary) }
        if connected { return .failure(VolumeError("volume \(self.config.name): already connected; nothing to resolve")) }
        if host == self.config.node && role == .primary {
            return .failure(VolumeError("volume \(self.config.name): demote \(host) before discarding its data"))
        }
        let message = self.connect(discard: host == self.config.node ? .local : .peer)
        return .success(summary + "; " + message)
    }
}
