import CleverCluster
import CleverModel
import CleverTesting
import Testing

/// Survivors wait for a departed host's watchdog (issue 11, findings 1-3), and a restarted agent in a minority
/// fences what its host still runs (finding 2).
@Suite struct FencingWaitTests {
    func withWatchdogs(_ seconds: Double) -> ClusterConfig {
        var config = Fixtures.twoHost()
        config.properties.watchdogTimeout = Seconds(seconds)
        for index in config.nodes.indices { config.nodes[index].watchdog = .device("/dev/watchdog") }
        return config
    }

    @Test func survivorsWaitTheDepartedHostsLastPetPlusW() throws {
        let config = self.withWatchdogs(4)
        let wait = FencingTiming(config: config).survivorWait(for: config.nodes[0])
        #expect(abs(wait.value - (7.2 - 1 + 4 + 0.25)) < 1e-9)  // last pet bound - token + W + reset latency
        let cluster = InMemoryCluster(config: config, now: Fixtures.epoch)
        cluster.start()
        cluster.settle()
        #expect(cluster.running("mba7") == ["alpha"])
        let lost = cluster.now
        cluster.powerOff("alpha")
        cluster.settle()
        let start = try #require(cluster.executions.first { $0.resource == "mba7" && $0.node == "beta" && $0.action == .start })
        #expect(start.at.seconds(since: lost) >= wait.value)
        #expect(start.at.seconds(since: lost) < wait.value + 1)
        #expect(cluster.running("mba7") == ["beta"])
    }

    /// The wait counts on the monotonic clock: a wall clock stepped an hour ahead does not end it.
    @Test func aWallClockStepDoesNotShortenTheWait() {
        var config = self.withWatchdogs(2)
        config.resources = [ResourceConfig(id: "vip", kind: .ip(IPSpec(address: "198.51.100.50", prefixLength: 24)))]
        config.constraints = []
        var ledger = ClusterLedger(localNode: "beta", document: ClusterDocument(config: config, origin: 1))
        var coordinator = Coordinator(localNode: "beta")
        let wall = Fixtures.epoch
        let monotonic = Timestamp(seconds: 1000)
        _ = ledger.onQuorum(true)
        _ = ledger.onRing(memberIDs: [1, 2], now: wall, monotonic: monotonic)
        _ = ledger.onView(memberIDs: [1, 2], now: wall, monotonic: monotonic)
        _ = ledger.onDeliver(Envelope(from: "alpha", message: .sync(ledger.document)), now: wall)
        _ = ledger.onDeliver(Envelope(from: "beta", message: .sync(ledger.document)), now: wall)
        _ = ledger.onDeliver(Envelope(from: "alpha", message: .resourceReport(["vip": ResourceNodeState(role: .started)])), now: wall)
        // alpha leaves the view and the ring.
        _ = ledger.onRing(memberIDs: [2], now: wall, monotonic: monotonic)
        _ = ledger.onView(memberIDs: [2], now: wall, monotonic: monotonic)
        _ = ledger.onDeliver(Envelope(from: "beta", message: .sync(ledger.document)), now: wall)
        #expect(ledger.departedSince["alpha"] == monotonic)
        // One second later on the monotonic clock, an hour later on the wall clock: no start of vip yet.
        let directives = coordinator.onTimer(ledger: ledger, now: wall + Seconds(3600), monotonic: Timestamp(seconds: 1001))
        let starts = directives.filter { if case .send(let request) = $0 { request.resource == "vip" && request.action == .start } else { false } }
        #expect(starts.isEmpty)
        let later = coordinator.onTimer(ledger: ledger, now: wall + Seconds(3609), monotonic: Timestamp(seconds: 1009))
        #expect(later.contains { if case .send(let request) = $0 { request.resource == "vip" && request.action == .start } else { false } })
    }

    /// A fresh ledger (an agent restarted in a minority) whose first verdict is "no quorum" stops what runs here;
    /// before, only a quorate → not quorate change did, and the probe re-adopted the running VM.
    @Test func aRestartedAgentWithoutQuorumFencesItsHost() {
        var ledger = ClusterLedger(localNode: "alpha", document: ClusterDocument(config: Fixtures.twoHost(), origin: 1))
        let directives = ledger.onQuorum(false)
        #expect(directives.contains(.stopAllLocalResources(reason: "no quorum at start (no-quorum-policy stop)")))
        // Repeating the verdict does nothing more.
        #expect(ledger.onQuorum(false).isEmpty)
    }
}
