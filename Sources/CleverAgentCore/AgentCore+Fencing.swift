import CleverCluster
import CleverModel
import CleverReplication

/// What the agent saw of a volume on this host (from its status), as far as replication fencing cares, in DRBD's
/// vocabulary (`Replication`'s enums: the words the volume reports are parsed once, in the shell).
public struct VolumeObservation: Hashable, Sendable {
    public var role: Replication.Role
    public var connection: Replication.ConnectionState
    public var disk: Replication.DiskState
    public var peerDisk: Replication.DiskState
    /// The volume holds new writes: its link broke while Primary and the peer is not known Outdated yet.
    public var writesHeld: Bool
    /// No resync runs and nothing is out of sync.
    public var inSync: Bool
    /// The volume runs with `fencing: resource-only` (a link loss holds its writes until the peer is outdated).
    public var resourceOnly: Bool
    /// The volume writes on without its peer, which it was told is Outdated (`markPeerOutdated`, or a promote
    /// after the peer was fenced).
    public var peerOutdated: Bool

    public init(role: Replication.Role, connection: Replication.ConnectionState, disk: Replication.DiskState,
                peerDisk: Replication.DiskState, writesHeld: Bool, inSync: Bool, resourceOnly: Bool, peerOutdated: Bool = false) {
        self.peerOutdated = peerOutdated
        self.role = role
        self.connection = connection
        self.disk = disk
        self.peerDisk = peerDisk
        self.writesHeld = writesHeld
        self.inSync = inSync
        self.resourceOnly = resourceOnly
    }

    /// Whether the replication link is up (connected, resyncing or verifying).
    public var linked: Bool { self.connection.isConnected }
}

/// What the agent asks of a local volume process for replication fencing.
public enum VolumeCommand: String, Hashable, Sendable {
    /// The cluster recorded the peer's disk as Outdated: held writes may go on alone.
    case markPeerOutdated
    /// The cluster recorded this host's disk as Outdated: the volume records it too.
    case outdate
}

/// Replication fencing's bookkeeping in the core (DRBD's `fencing resource-only` with Pacemaker's
/// crm-fence-peer): what each local volume last reported, requests sent to the group, and the commands already
/// given, so each is given once per episode.
struct FencingBook: Sendable {
    struct Request: Hashable, Sendable {
        var mark: DiskMark
        /// true: record the disk as Outdated; false: clear the mark.
        var outdate: Bool
    }

    var observations: [String: VolumeObservation] = [:]
    /// Fencing intents sent to the group and not answered yet.
    var requests: [RequestID: Request] = [:]
    /// Volumes told `markPeerOutdated` during the current hold.
    var released: Set<String> = []
    /// Volumes told `outdate` while this host's disk is marked.
    var outdatedLocally: Set<String> = []

    func isRequested(_ mark: DiskMark, outdate: Bool) -> Bool { self.requests.values.contains(Request(mark: mark, outdate: outdate)) }
}

extension AgentCore {
    /// How long a fencing request waits for the group before it is sent again (refused: after `fencingRetry`).
    public static let fencingPatience = Seconds(5)
    public static let fencingRetry = Seconds(1)

    /// The replica of `volume` on the other host: a volume lives on the first two nodes (DRBD's two-node model).
    func peer(ofVolume volume: String) -> String? {
        self.config.replicaHosts.map(\.name).first { $0 != self.localNode }
    }

    /// A local volume reported its state (nil: it stopped here). Decides what replication fencing does:
    ///
    /// - Primary, writes held (its link broke, the peer may be alive): record the peer's disk as Outdated in the
    ///   ledger (agreed order: every agent has it before this host writes on alone), then — once delivered —
    ///   tell the volume `markPeerOutdated`, so writes go on. A Primary that writes without its peer for another
    ///   reason (promoted after the peer was fenced) has the mark recorded too: the peer, back later with its
    ///   old data, is not promoted before it resynced.
    /// - This host's disk is marked Outdated: tell the volume `outdate` while it is cut off; once it is Connected
    ///   and both disks are UpToDate with nothing out of sync, clear the mark.
    /// - A Secondary without `resource-only` fencing whose link broke while its peer is Primary and in the cluster:
    ///   the peer goes on writing alone and nothing holds its writes, so this disk outdates itself (promotion after
    ///   the peer's loss would serve stale data).
    public mutating func onVolumeObserved(_ volume: String, _ observation: VolumeObservation?, now: Timestamp) -> [AgentDirective] {
        guard self.fencing.observations[volume] != observation else { return [] }
        self.fencing.observations[volume] = observation
        if observation == nil {
            self.fencing.released.remove(volume)
            self.fencing.outdatedLocally.remove(volume)
        }
        return self.fencingDirectives(volume, now: now)
    }

    /// A fencing command to a local volume failed: it is given again at the next change.
    public mutating func onVolumeCommandDone(_ volume: String, _ command: VolumeCommand, error: String?, now: Timestamp) -> [AgentDirective] {
        guard let error else {
            return [self.log(.notice, "fencing: volume \(volume): \(command.rawValue) done", now: now, resource: volume)]
        }
        switch command {
        case .markPeerOutdated: self.fencing.released.remove(volume)
        case .outdate: self.fencing.outdatedLocally.remove(volume)
        }
        return [self.log(.error, "fencing: volume \(volume): \(command.rawValue) failed: \(error)", now: now, resource: volume)]
            + self.schedule(.fencingRetry(volume: volume), at: now + Self.fencingRetry)
    }

    /// Re-evaluates every observed volume (the document changed: marks may have come or gone).
    mutating func fencingDirectivesForAll(now: Timestamp) -> [AgentDirective] {
        self.fencing.observations.keys.sorted().flatMap { self.fencingDirectives($0, now: now) }
    }

    /// A fencing request was applied cluster-wide or refused.
    mutating func onFencingRequestDone(_ request: RequestID, refusal: String?, now: Timestamp) -> [AgentDirective]? {
        guard let entry = self.fencing.requests.removeValue(forKey: request) else { return nil }
        let (mark, outdate) = (entry.mark, entry.outdate)
        var out = self.cancel(.fencingRetry(volume: mark.volume))
        if let refusal {
            out.append(self.log(.warning, "fencing: the cluster refused to record \(mark) as \(outdate ? "Outdated" : "current"): \(refusal)"
                                + (outdate ? "; its writes stay held" : ""), now: now, resource: mark.volume))
            out += self.schedule(.fencingRetry(volume: mark.volume), at: now + Self.fencingRetry)
            return out
        }
        return out + self.fencingDirectives(mark.volume, now: now)
    }

    /// The retry timer of a volume's fencing fired: requests still unanswered count as lost.
    mutating func onFencingRetry(_ volume: String, now: Timestamp) -> [AgentDirective] {
        for (id, entry) in self.fencing.requests where entry.mark.volume == volume { self.fencing.requests[id] = nil }
        return self.fencingDirectives(volume, now: now)
    }

    mutating func fencingDirectives(_ volume: String, now: Timestamp) -> [AgentDirective] {
        guard let seen = self.fencing.observations[volume], let peer = self.peer(ofVolume: volume) else { return [] }
        let marks = Set(self.ledger.document.outdatedDisks)
        let peerMark = DiskMark(volume: volume, node: peer)
        let ownMark = DiskMark(volume: volume, node: self.localNode)
        var out: [AgentDirective] = []
        if seen.role == .primary, seen.writesHeld {
            if marks.contains(peerMark) {
                if self.fencing.released.insert(volume).inserted {
                    out.append(self.log(.notice, "fencing: \(peerMark.refusal): writes on \(self.localNode) go on alone",
                                        now: now, resource: volume))
                    out.append(.volumeCommand(volume: volume, .markPeerOutdated))
                }
            } else if !self.fencing.isRequested(peerMark, outdate: true) {
                out += self.requestFencing(peerMark, outdate: true,
                                           why: "the replication link of \(volume) is down while Primary here; writes are held", now: now)
            }
        } else {
            self.fencing.released.remove(volume)
            if seen.role == .primary, !seen.linked, seen.peerOutdated, !marks.contains(peerMark),
                !self.fencing.isRequested(peerMark, outdate: true)
            {
                out += self.requestFencing(peerMark, outdate: true, why: "\(volume) is Primary here without its peer", now: now)
            }
        }
        if marks.contains(ownMark) {
            if seen.role != .primary, seen.disk == .upToDate, !seen.linked, self.fencing.outdatedLocally.insert(volume).inserted {
                out.append(.volumeCommand(volume: volume, .outdate))
            }
            if seen.connection == .connected, seen.disk == .upToDate, seen.peerDisk == .upToDate, seen.inSync,
                !self.fencing.isRequested(ownMark, outdate: false)
            {
                out += self.requestFencing(ownMark, outdate: false, why: "it resynced: both disks are UpToDate", now: now)
            }
        } else {
            self.fencing.outdatedLocally.remove(volume)
            if !seen.resourceOnly, seen.role == .secondary, seen.disk == .upToDate, !seen.linked, self.ledger.members.contains(peer),
                self.ledger.resources[volume]?[peer]?.role == .promoted, !self.fencing.isRequested(ownMark, outdate: true)
            {
                out += self.requestFencing(ownMark, outdate: true,
                                           why: "its link broke while \(peer) is Primary and nothing holds \(peer)'s writes (fencing is not resource-only)",
                                           now: now)
            }
        }
        return out
    }

    private mutating func requestFencing(_ mark: DiskMark, outdate: Bool, why: String, now: Timestamp) -> [AgentDirective] {
        let id = self.nextRequestID()
        self.fencing.requests[id] = FencingBook.Request(mark: mark, outdate: outdate)
        let intent: OperatorIntent = outdate ? .outdateDisk(volume: mark.volume, node: mark.node) : .clearOutdated(volume: mark.volume, node: mark.node)
        return [self.log(.notice, "fencing: asking the cluster to record \(mark) as \(outdate ? "Outdated" : "current"): \(why)",
                         now: now, resource: mark.volume),
                .broadcast(.intent(intent, request: id))]
            + self.schedule(.fencingRetry(volume: mark.volume), at: now + Self.fencingPatience)
    }
}
