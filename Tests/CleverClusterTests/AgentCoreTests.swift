import CleverAgentCore
import CleverCluster
import CleverControl
import CleverModel
import CleverTesting
import Testing

@Suite struct AgentCoreTests {
    func started(_ config: ClusterConfig = Fixtures.twoHost()) -> InMemoryCluster {
        let cluster = InMemoryCluster(config: config, now: Fixtures.epoch)
        cluster.start()
        cluster.settle()
        return cluster
    }

    @Test func startUpPlacesEverythingOnOneHost() {
        let cluster = self.started()
        #expect(cluster.coordinator() == "alpha")
        #expect(cluster.running("mba7") == ["alpha"])
        #expect(cluster.running("vip") == ["alpha"])
        #expect(cluster.role(of: "disk0", on: "alpha") == .promoted)
        #expect(cluster.role(of: "disk0", on: "beta") == .unpromoted)
        // Every host holds the same ledger.
        #expect(cluster.hosts["alpha"]!.ledger.clusterState == cluster.hosts["beta"]!.ledger.clusterState)
    }

    @Test func pingLossMovesEverythingInOrder() {
        let cluster = self.started()
        cluster.send(from: "alpha", .attribute(name: "pingd", value: "0"))
        cluster.settle()
        #expect(cluster.running("mba7") == ["beta"])
        #expect(cluster.running("vip") == ["beta"])
        #expect(cluster.role(of: "disk0", on: "beta") == .promoted)
        #expect(cluster.role(of: "disk0", on: "alpha") == .unpromoted)
    }

    @Test func operatorIntentsApplyEverywhereOrAreRefused() throws {
        let cluster = self.started()
        let migrate = cluster.request(from: "beta", .migrate(node: "alpha", to: nil, expires: nil))
        cluster.settle()
        #expect(cluster.answer(to: migrate) == .done("migrate alpha: applied cluster-wide"))
        #expect(cluster.running("mba7") == ["beta"])
        #expect(cluster.hosts["alpha"]!.persisted == cluster.hosts["beta"]!.persisted)
        let unmigrate = cluster.request(from: "alpha", .unmigrate(node: "alpha"))
        cluster.settle()
        #expect(cluster.answer(to: unmigrate) == .done("unmigrate alpha: applied cluster-wide"))
        #expect(cluster.running("mba7") == ["beta"])  // stickiness: nothing moves back

        let stop = cluster.request(from: "alpha", .forceStop(resource: "mba7"))
        cluster.settle()
        #expect(cluster.answer(to: stop) == .done("forcestop mba7: applied cluster-wide"))
        #expect(cluster.running("mba7").isEmpty)
        #expect(cluster.running("vip").isEmpty)
    }

    @Test func intentsAreRefusedWithoutQuorum() {
        let cluster = self.started()
        cluster.setPartitions([["alpha"], ["beta"]])
        cluster.settle()
        let request = cluster.request(from: "beta", .forceStop(resource: "mba7"))
        cluster.settle()
        #expect(cluster.answer(to: request) == .failure("refused: this partition has no quorum"))
    }

    @Test func coordinatorDeathMidTransitionRepeatsNothingCompleted() {
        // Three hosts so the survivors keep a majority.
        var config = Fixtures.twoHost()
        config.nodes.append(NodeConfig(name: "gamma", id: 3, addresses: ["198.51.100.13"]))
        config.resources[0].cloning = .promotable(max: 3, promotedMax: 1)
        let cluster = InMemoryCluster(config: config, now: Fixtures.epoch)
        // The VM's start on alpha hangs: the transition is half done when alpha, the coordinator, dies.
        cluster.hold = { $0.resource == "mba7" && $0.action == .start }
        cluster.start()
        cluster.settle()
        #expect(cluster.coordinator() == "alpha")
        let promotesBefore = cluster.executions.filter { $0.action == .promote }.count
        #expect(promotesBefore == 1)
        cluster.hold = { _ in false }
        cluster.powerOff("alpha")
        cluster.settle()
        #expect(cluster.coordinator() == "beta")
        #expect(cluster.running("mba7").count == 1)
        // Each (resource, node, action) ran once: the new coordinator repeated nothing that had completed.
        let keys = cluster.executions.map { "\($0.action.rawValue) \($0.resource)@\($0.node)" }
        #expect(Set(keys).count == keys.count, "repeated: \(keys)")
    }

    @Test func splitKeepsResourcesOnExactlyOneSideAndNeverTwice() throws {
        let cluster = self.started()
        #expect(cluster.running("mba7") == ["alpha"])
        // beta keeps quorum this time (as if only beta still reached the tie-breaker).
        cluster.quorum = { members, _, _ in members == ["beta"] }
        cluster.setPartitions([["alpha"], ["beta"]])
        cluster.settle()
        #expect(cluster.running("mba7") == ["beta"])
        cluster.quorum = InMemoryCluster.majorityOrLowestID
        cluster.setPartitions([["alpha", "beta"]])
        cluster.settle()
        #expect(cluster.running("mba7").count == 1)
        // Intervals of the VM running never overlap across hosts.
        let intervals = cluster.runIntervals.filter { $0.resource == "mba7" }
        for a in intervals {
            for b in intervals where a.node != b.node {
                let overlap = a.from < (b.to ?? .init(seconds: .infinity)) && b.from < (a.to ?? .init(seconds: .infinity))
                #expect(!overlap, "mba7 ran on \(a.node) and \(b.node) at once")
            }
        }
    }

    @Test func survivorsWaitOutTheSelfFenceTimeBeforeRecovery() throws {
        let cluster = self.started()
        let lost = cluster.now
        cluster.powerOff("alpha")
        cluster.settle()
        let start = try #require(cluster.executions.first { $0.resource == "mba7" && $0.node == "beta" && $0.action == .start })
        #expect(start.at.seconds(since: lost) >= Fixtures.twoHost().properties.selfFenceTimeout.value)
        #expect(cluster.running("mba7") == ["beta"])
    }

    @Test func aConfirmedFenceSparesTheSelfFenceWait() throws {
        var config = Fixtures.twoHost()
        config.nodes[0].fenceAgent = "/usr/sbin/fence_ipmilan"
        config.nodes[0].fenceParameters = ["ip": "198.51.100.101"]
        let cluster = InMemoryCluster(config: config, now: Fixtures.epoch)
        cluster.start()
        cluster.settle()
        let lost = cluster.now
        cluster.powerOff("alpha")
        cluster.settle()
        #expect(cluster.events.contains("beta: fencing alpha with /usr/sbin/fence_ipmilan"))
        let start = try #require(cluster.executions.first { $0.resource == "mba7" && $0.node == "beta" && $0.action == .start })
        #expect(start.at.seconds(since: lost) < config.properties.selfFenceTimeout.value)
        #expect(cluster.running("mba7") == ["beta"])
    }

    @Test func membersConvergeOnTheNewestDocument() {
        let cluster = self.started()
        cluster.setPartitions([["alpha"], ["beta"]])
        cluster.settle()
        // Only alpha's side is quorate (lowest id): its change wins when the halves meet again.
        _ = cluster.request(from: "alpha", .standby(node: "beta"))
        cluster.settle()
        cluster.setPartitions([["alpha", "beta"]])
        cluster.settle()
        #expect(cluster.hosts["beta"]!.ledger.document.standby == ["beta"])
        #expect(cluster.hosts["alpha"]!.ledger.document == cluster.hosts["beta"]!.ledger.document)
    }
}

@Suite struct EnvelopeTests {
    @Test func roundTrips() throws {
        let envelope = Envelope(from: "alpha", message: .attribute(name: "pingd", value: "1000"))
        #expect(try Envelope.decode(envelope.encoded()) == envelope)
    }

    @Test func refusesGarbageAndOtherVersions() {
        #expect(throws: Envelope.DecodeError.notAMessage) { try Envelope.decode(Array("not json".utf8)) }
        #expect(throws: Envelope.DecodeError.unsupportedVersion(3, from: "x")) {
            try Envelope.decode(Array(#"{"v": 3, "from": "x", "message": {}}"#.utf8))
        }
        #expect(throws: Envelope.DecodeError.self) { try Envelope.decode(Array(#"{"v": 1, "from": "x", "message": {"nope": {}}}"#.utf8)) }
        #expect(throws: Envelope.DecodeError.tooLarge(bytes: Envelope.maximumSize + 1)) {
            try Envelope.decode([UInt8](repeating: 0x7b, count: Envelope.maximumSize + 1))
        }
        let error = #expect(throws: Envelope.DecodeError.self) { try Envelope.decode(Array(#"{"v": 7, "from": "beta"}"#.utf8)) }
        #expect(error?.description.contains("version 7 from beta") == true, "\(String(describing: error))")
    }

    /// Damaged bytes are refused with a reason or decode to an envelope that encodes back to itself: never a crash,
    /// never a message that means something else after a round trip.
    @Test func randomBytesAreRefusedOrRoundTrip() throws {
        var random = SeededRandom(seed: 7)
        var refused = 0
        var accepted = 0
        let valid = Envelope(from: "alpha", message: .intent(.cleanup(resource: nil, node: nil), request: RequestID(node: "alpha", serial: 1))).encoded()
        #expect(try Envelope.decode(valid).from == "alpha")
        for round in 0..<4000 {
            var bytes: [UInt8]
            if round < 2000 {
                bytes = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            } else {
                bytes = valid
                for _ in 0..<3 { bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random) }
            }
            do {
                let envelope = try Envelope.decode(bytes)
                accepted += 1
                #expect(try Envelope.decode(envelope.encoded()) == envelope)
            } catch {
                refused += 1
                #expect(!error.description.isEmpty)
            }
        }
        #expect(refused > 2000, "random bytes were accepted as messages")
        #expect(accepted + refused == 4000)
    }
}

/// A host whose agent dies but whose Corosync stays in the ring: nobody stops what runs there, so nothing of it
/// may start elsewhere until the agent returns, or the host leaves the ring and its self-fence time passes.
@Suite struct AgentlessHostTests {
    func started() -> InMemoryCluster {
        let cluster = InMemoryCluster(config: Fixtures.twoHost(), now: Fixtures.epoch)
        cluster.start()
        cluster.settle()
        return cluster
    }

    @Test func theVMStaysWhereItRunsWhileItsHostsAgentIsDown() {
        let cluster = self.started()
        #expect(cluster.running("mba7") == ["alpha"])
        cluster.killAgent("alpha")
        cluster.settle(for: Seconds(120))
        #expect(cluster.running("mba7") == ["alpha"], "started twice: \(cluster.running("mba7"))")
        #expect(cluster.role(of: "disk0", on: "beta") == .unpromoted)
        #expect(cluster.hosts["beta"]!.ledger.agentless == ["alpha"])
        #expect(cluster.hosts["beta"]!.ledger.departed["alpha"] == nil)
        // The agent comes back, finds its VM running and reports it: still nothing moves.
        let before = cluster.executions.count
        cluster.restartAgent("alpha")
        cluster.settle()
        #expect(cluster.running("mba7") == ["alpha"], "\(cluster.executions.dropFirst(before))")
        #expect(cluster.coordinator() == "alpha")
    }

    @Test func aDrainWhoseOnlyDestinationHasNoAgentWaitsInsteadOfStopping() {
        // The operator drains alpha while beta's agent restarts: the VM has nowhere else to go. It keeps running
        // on alpha (it was stopped — hibernated — before), and moves once beta's agent is back.
        let cluster = self.started()
        cluster.killAgent("beta")
        cluster.settle(for: Seconds(5))
        let before = cluster.executions.count
        let migrate = cluster.request(from: "alpha", .migrate(node: "alpha", to: nil, expires: nil))
        cluster.settle(for: Seconds(30))
        #expect(cluster.answer(to: migrate) == .done("migrate alpha: applied cluster-wide"))
        #expect(cluster.running("mba7") == ["alpha"])
        let meanwhile = cluster.executions.dropFirst(before).filter { $0.resource == "mba7" }
        #expect(meanwhile.isEmpty, "nothing may be done to the VM while its only destination has no agent: \(meanwhile)")
        cluster.restartAgent("beta")
        cluster.settle()
        #expect(cluster.running("mba7") == ["beta"])
        #expect(cluster.executions.dropFirst(before).contains { $0.resource == "mba7" && $0.action == .migrateTo })
    }

    @Test func whenTheAgentlessHostLeavesTheRingItsResourcesMoveAfterTheSelfFenceTime() {
        let cluster = self.started()
        cluster.killAgent("alpha")
        cluster.settle(for: Seconds(10))
        #expect(cluster.running("mba7") == ["alpha"])
        // The host loses power: the survivor waits out the self-fence time from now, then starts the VM.
        cluster.powerOff("alpha")
        cluster.settle()
        #expect(cluster.running("mba7") == ["beta"])
        #expect(cluster.role(of: "disk0", on: "beta") == .promoted)
    }
}

/// A stop that fails leaves the resource blocked where it is (no retry loop, nothing started elsewhere) until
/// an operator's cleanup.
@Suite struct WatchdogRefusalTests {
    /// A host whose node config names no watchdog (neither a device nor `none`) starts nothing: the core answers
    /// each start with "not configured", and the host that has one runs everything.
    @Test func aHostWithoutAConfiguredWatchdogStartsNothing() throws {
        var config = Fixtures.twoHost()
        config.nodes[1].watchdog = .disabled
        let cluster = InMemoryCluster(config: config, now: Fixtures.epoch, refusingWithoutWatchdog: true)
        cluster.start()
        cluster.settle()
        #expect(cluster.running("mba7") == ["beta"])
        #expect(!cluster.executions.contains { $0.node == "alpha" && $0.action == .start }, "\(cluster.executions)")
        let core = cluster.hosts["alpha"]!.core
        let request = ActionRequest(id: RequestID(node: "beta", serial: 99), resource: "mba7", node: "alpha", action: .start,
                                    timeout: Seconds(20), reason: "test")
        let refusal = try #require(core.refusalWithoutWatchdog(request, now: cluster.now))
        #expect(refusal.exitCode == OCFExit.notConfigured && refusal.output?.contains("no watchdog configured") == true)
        var stop = request
        stop.action = .stop
        #expect(core.refusalWithoutWatchdog(stop, now: cluster.now) == nil, "a stop is never refused")
        #expect(cluster.hosts["beta"]!.core.refusalWithoutWatchdog(request, now: cluster.now) == nil)
    }
}

@Suite struct FailedStopTests {
    @Test func aFailedStopBlocksUntilCleanup() {
        let cluster = InMemoryCluster(config: Fixtures.twoHost(migration: .hibernate), now: Fixtures.epoch)
        var stopFails = true
        cluster.failure = { request in
            stopFails && request.resource == "mba7" && request.action == .stop ? OCFExit.generic : nil
        }
        cluster.start()
        cluster.settle()
        #expect(cluster.running("mba7") == ["alpha"])
        cluster.send(from: "alpha", .attribute(name: "pingd", value: "0"))
        cluster.settle(for: Seconds(120))
        let stops = cluster.executions.filter { $0.resource == "mba7" && $0.action == .stop }
        #expect(stops.count == 1, "the failed stop was retried \(stops.count - 1) times")
        #expect(!cluster.running("mba7").contains("beta"))
        #expect(cluster.hosts["beta"]!.ledger.resources["mba7"]?["alpha"]?.stopFailed == true)
        stopFails = false
        cluster.request(from: "beta", .cleanup(resource: "mba7", node: nil))
        cluster.settle()
        #expect(cluster.running("mba7") == ["beta"])
    }
}

/// The status says what the coordinator does: one definition of "coordinator" and of "frozen".
@Suite struct StatusAgreesWithTheCoordinatorTests {
    func status(_ cluster: InMemoryCluster, on node: String) throws -> StatusReport {
        let call = cluster.control(on: node, .status)
        guard case .status(let report) = try #require(cluster.answer(to: call)) else {
            Issue.record("not a status: \(String(describing: cluster.answer(to: call)))")
            throw CancellationError()
        }
        return report
    }

    @Test func theStatusNamesTheCoordinatorOnlyOnceItCoordinates() throws {
        let cluster = InMemoryCluster(config: Fixtures.twoHost(), now: Fixtures.epoch)
        cluster.start()
        // The view changed, no sync offer delivered yet: nobody coordinates, and the status says so.
        #expect(cluster.coordinator() == nil)
        #expect(try self.status(cluster, on: "beta").coordinator == nil)
        cluster.settle()
        #expect(try self.status(cluster, on: "beta").coordinator == cluster.coordinator())
        #expect(cluster.coordinator() == "alpha")
    }

    /// A live migration is in flight under both its ends; the status lists it once.
    @Test func aMigrationUnderWayIsListedOnce() throws {
        let cluster = InMemoryCluster(config: Fixtures.twoHost(), now: Fixtures.epoch)
        cluster.start()
        cluster.settle()
        cluster.hold = { $0.action == .migrateTo }
        _ = cluster.request(from: "alpha", .migrate(node: "alpha", to: nil, expires: nil))
        cluster.settle(for: Seconds(5))
        let migration = try #require(cluster.hosts["alpha"]!.coordinator.pendingActions.first { $0.action == .migrateTo })
        #expect(migration.migrationTarget == "beta")
        let listed = try self.status(cluster, on: "alpha").pendingActions
        #expect(listed.filter { $0 == migration.description } == [migration.description], "\(listed)")
        cluster.hold = { _ in false }
        cluster.releaseHeld()
        cluster.settle()
        #expect(try self.status(cluster, on: "alpha").pendingActions.isEmpty)
        #expect(cluster.running("mba7") == ["beta"])
    }

    @Test func whatTheCoordinatorHoldsForAnAgentlessHostTheStatusShowsFrozen() throws {
        let cluster = InMemoryCluster(config: Fixtures.twoHost(), now: Fixtures.epoch)
        cluster.start()
        cluster.settle()
        cluster.killAgent("alpha")
        cluster.settle(for: Seconds(10))
        let ledger = cluster.hosts["beta"]!.ledger
        let report = try self.status(cluster, on: "beta")
        #expect(!ledger.frozenByAgentless.isEmpty)
        for resource in report.resources {
            #expect(resource.frozenBy == ledger.frozenByAgentless[resource.id], "\(resource.id)")
        }
        #expect(report.resources.first { $0.id == "mba7" }?.frozenBy == "alpha")
    }
}
