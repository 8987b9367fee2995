import CleverAgentCore
import CleverCluster
import CleverControl
import CleverModel
import CleverReplication
import CleverScheduler
import CleverTesting
import Testing

/// The agents' half of replication fencing (DRBD's `fencing resource-only` with a fence-peer handler): a Primary
/// whose link broke has its peer's disk recorded Outdated in the replicated ledger before its writes go on, and an
/// Outdated disk is never promoted.
@Suite struct ReplicationFencingTests {
    static let outdatedBeta = DiskMark(volume: "disk0", node: "beta")

    static func observation(_ role: String, _ connection: String, disk: String = "UpToDate", peerDisk: String = "DUnknown",
                            writesHeld: Bool = false, inSync: Bool = true, resourceOnly: Bool = true,
                            peerOutdated: Bool = false) -> VolumeObservation {
        VolumeObservation(role: Replication.Role(rawValue: role)!, connection: Replication.ConnectionState(rawValue: connection)!,
                          disk: Replication.DiskState(rawValue: disk)!, peerDisk: Replication.DiskState(rawValue: peerDisk)!,
                          writesHeld: writesHeld, inSync: inSync, resourceOnly: resourceOnly, peerOutdated: peerOutdated)
    }

    func started() -> InMemoryCluster {
        let cluster = InMemoryCluster(config: Fixtures.twoHost(), now: Fixtures.epoch)
        cluster.start()
        cluster.settle()
        #expect(cluster.role(of: "disk0", on: "alpha") == .promoted)
        return cluster
    }

    /// The replication link breaks alone: alpha (Primary) holds its writes, beta's volume loses its peer.
    func cutReplicationLink(_ cluster: InMemoryCluster) {
        cluster.observeVolume(on: "alpha", "disk0", Self.observation("Primary", "Connecting", writesHeld: true))
        cluster.observeVolume(on: "beta", "disk0", Self.observation("Secondary", "Connecting"))
        cluster.settle()
    }

    func commands(_ cluster: InMemoryCluster) -> [String] {
        cluster.volumeCommands.map { "\($0.node) \($0.volume) \($0.command.rawValue)" }
    }

    @Test func aPrimaryThatLostItsLinkHasThePeerOutdatedBeforeItsWritesGoOn() {
        let cluster = self.started()
        self.cutReplicationLink(cluster)
        for host in ["alpha", "beta"] {
            #expect(cluster.hosts[host]!.ledger.document.outdatedDisks == [Self.outdatedBeta], "\(host)")
            #expect(cluster.hosts[host]!.persisted?.outdatedDisks == [Self.outdatedBeta], "\(host): survives a restart")
        }
        // alpha's writes are released only once the mark is in the ledger; beta's volume records it too.
        #expect(self.commands(cluster) == ["alpha disk0 markPeerOutdated", "beta disk0 outdate"])
        // Nothing repeats while the state stays.
        cluster.observeVolume(on: "alpha", "disk0", Self.observation("Primary", "Connecting", writesHeld: true, inSync: false))
        cluster.settle()
        #expect(cluster.volumeCommands.count == 2)
    }

    @Test func anOutdatedDiskIsNeverPromotedAfterThePrimaryIsLost() throws {
        let cluster = self.started()
        self.cutReplicationLink(cluster)
        cluster.powerOff("alpha")
        cluster.settle(for: Seconds(300))
        #expect(cluster.role(of: "disk0", on: "beta") != .promoted)
        #expect(cluster.running("mba7").isEmpty, "the VM stays down until the operator acts")
        let ledger = cluster.hosts["beta"]!.ledger
        let transition = Scheduler(config: ledger.config).schedule(state: ledger.clusterState, now: cluster.now)
        #expect(transition.blocked["disk0"] == "not promoted: \(Self.outdatedBeta.refusal)")
        let sheet = try #require(transition.promotionScores["disk0"])
        #expect(sheet.contributions["beta"]?.contains { $0.reason == Self.outdatedBeta.refusal && $0.score == .minusInfinity } == true)
        let status = StatusReport(ledger: ledger, pendingActions: [], now: cluster.now)
        #expect(status.resources.first { $0.id == "disk0" }?.outdatedOn == ["beta"])
        #expect(status.render().contains("disk0 on beta is Outdated (it missed writes while the replication link was down)"))
    }

    @Test func withoutAPriorLinkLossTheSurvivorIsPromoted() {
        let cluster = self.started()
        cluster.powerOff("alpha")
        cluster.settle(for: Seconds(300))
        #expect(cluster.role(of: "disk0", on: "beta") == .promoted)
        #expect(cluster.running("mba7") == ["beta"])
    }

    @Test func theMarkGoesOnceThePeerResyncedToUpToDate() {
        let cluster = self.started()
        self.cutReplicationLink(cluster)
        // The link is back, seen from both sides: beta resyncs (Inconsistent as the target), then both are UpToDate.
        cluster.observeVolume(on: "alpha", "disk0", Self.observation("Primary", "SyncSource", peerDisk: "Inconsistent", inSync: false))
        cluster.observeVolume(on: "beta", "disk0", Self.observation("Secondary", "SyncTarget", disk: "Inconsistent", peerDisk: "UpToDate", inSync: false))
        cluster.settle()
        #expect(cluster.hosts["beta"]!.ledger.document.outdatedDisks == [Self.outdatedBeta], "still resyncing")
        cluster.observeVolume(on: "alpha", "disk0", Self.observation("Primary", "Connected", peerDisk: "UpToDate"))
        cluster.observeVolume(on: "beta", "disk0", Self.observation("Secondary", "Connected", peerDisk: "UpToDate"))
        cluster.settle()
        for host in ["alpha", "beta"] { #expect(cluster.hosts[host]!.ledger.document.outdatedDisks.isEmpty, "\(host)") }
        // And beta may take over again.
        cluster.powerOff("alpha")
        cluster.settle(for: Seconds(300))
        #expect(cluster.running("mba7") == ["beta"])
    }

    @Test func aHostWhoseOwnDiskIsOutdatedCannotOutdateThePeer() {
        let cluster = self.started()
        self.cutReplicationLink(cluster)
        // beta (Outdated) somehow Primary with held writes: it may not outdate alpha.
        cluster.observeVolume(on: "beta", "disk0", Self.observation("Primary", "Connecting", disk: "Outdated", writesHeld: true))
        cluster.settle(for: Seconds(3))
        #expect(cluster.hosts["alpha"]!.ledger.document.outdatedDisks == [Self.outdatedBeta])
        #expect(!self.commands(cluster).contains("beta disk0 markPeerOutdated"))
        #expect(cluster.events.contains { $0.contains("the disk of disk0 on beta is Outdated itself; it cannot outdate alpha") })
    }

    @Test func withoutQuorumNothingIsRecordedAndWritesStayHeld() {
        let cluster = self.started()
        cluster.quorum = { _, _, _ in false }
        cluster.setPartitions([["alpha", "beta"]])
        cluster.settle(for: Seconds(0.5))
        let before = cluster.volumeCommands.count
        self.cutReplicationLink(cluster)
        cluster.settle(for: Seconds(3))
        #expect(cluster.hosts["alpha"]!.ledger.document.outdatedDisks.isEmpty)
        #expect(cluster.volumeCommands.count == before)
        #expect(cluster.events.contains { $0.contains("refused to record disk0 on beta as Outdated: this partition has no quorum; its writes stay held") })
    }

    @Test func aRestartedAgentReleasesHeldWritesFromTheLedgerAlone() {
        let cluster = self.started()
        self.cutReplicationLink(cluster)
        cluster.killAgent("alpha")
        cluster.restartAgent("alpha")
        cluster.settle()
        let generation = cluster.hosts["alpha"]!.ledger.document.generation
        cluster.observeVolume(on: "alpha", "disk0", Self.observation("Primary", "Connecting", writesHeld: true))
        cluster.settle()
        #expect(self.commands(cluster).filter { $0 == "alpha disk0 markPeerOutdated" }.count == 2)
        #expect(cluster.hosts["alpha"]!.ledger.document.generation == generation, "no new request: the mark was already there")
    }

    /// Promotion after a node loss when the link was lost before: with `resource-only` fencing the Primary could not
    /// have acknowledged a write alone without the mark, so no mark means current data; without it, the secondary
    /// outdates itself when its link breaks while the peer is Primary and alive.
    @Test func withoutResourceOnlyFencingALinkLostBeforeTheNodeLossRefusesThePromotion() {
        let cluster = self.started()
        cluster.observeVolume(on: "beta", "disk0", Self.observation("Secondary", "Connecting", resourceOnly: false))
        cluster.settle()
        #expect(cluster.hosts["beta"]!.ledger.document.outdatedDisks == [Self.outdatedBeta])
        cluster.powerOff("alpha")
        cluster.settle(for: Seconds(300))
        #expect(cluster.running("mba7").isEmpty)
    }

    @Test func aSurvivorPromotedWithoutItsPeerHasThePeerOutdatedUntilItResynced() {
        let cluster = self.started()
        cluster.powerOff("alpha")
        cluster.settle(for: Seconds(300))
        #expect(cluster.role(of: "disk0", on: "beta") == .promoted)
        // beta's volume writes on alone (promoted with the peer fenced): alpha's old copy must not be promoted later.
        cluster.observeVolume(on: "beta", "disk0", Self.observation("Primary", "Connecting", peerOutdated: true))
        cluster.settle()
        #expect(cluster.hosts["beta"]!.ledger.document.outdatedDisks == [DiskMark(volume: "disk0", node: "alpha")])
        #expect(!self.commands(cluster).contains("beta disk0 markPeerOutdated"), "its writes were never held")
    }

    /// `volume resolve` from a host without a replica: its agent forwards it to the one that runs the volume.
    @Test func aResolveFromAHostWithoutAReplicaIsDoneByTheHostThatRunsTheVolume() {
        var config = Fixtures.twoHost()
        config.nodes.append(NodeConfig(name: "gamma", id: 3, addresses: ["198.51.100.13"]))
        let cluster = InMemoryCluster(config: config, now: Fixtures.epoch)
        cluster.start()
        cluster.settle()
        let call = cluster.control(on: "gamma", .resolveVolume(volume: "disk0", discard: "beta", dryRun: false))
        cluster.settle()
        #expect(cluster.answer(to: call) == .done("disk0 resolved on alpha"))
        let refused = cluster.control(on: "gamma", .resolveVolume(volume: "disk0", discard: "gamma", dryRun: true))
        #expect(cluster.answer(to: refused) == .failure("gamma holds no replica of disk0"))
        // Nobody runs it: the asker answers itself.
        cluster.powerOff("alpha")
        cluster.powerOff("beta")
        cluster.settle()
        let alone = cluster.control(on: "gamma", .resolveVolume(volume: "disk0", discard: "beta", dryRun: false))
        cluster.settle()
        #expect(cluster.answer(to: alone) == .failure("no member of the cluster runs disk0 now"))
    }

    @Test func anOperatorMayAcceptTheOutdatedData() {
        let cluster = self.started()
        self.cutReplicationLink(cluster)
        cluster.powerOff("alpha")
        cluster.settle(for: Seconds(300))
        let accept = cluster.request(from: "beta", .clearOutdated(volume: "disk0", node: "beta"))
        cluster.settle(for: Seconds(60))
        #expect(cluster.answer(to: accept) == .done("the disk of disk0 on beta is current again: applied cluster-wide"))
        #expect(cluster.running("mba7") == ["beta"])
    }
}
