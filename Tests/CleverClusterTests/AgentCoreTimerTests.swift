import CleverAgentCore
import CleverCluster
import CleverControl
import CleverModel
import CleverTesting
import Testing

/// One host's `AgentCore` with a fake clock and a recording shell: what it broadcasts, which timers it keeps, what
/// it answers. Messages from other hosts are fed in by hand, as Corosync would deliver them.
struct CoreDriver {
    var core: AgentCore
    var now = Fixtures.epoch
    var timers: [AgentTimer: Timestamp] = [:]
    var sent: [ClusterMessage] = []
    /// When each of `sent` was sent.
    var sentAt: [Timestamp] = []
    var answers: [ControlCall: ControlResponse] = [:]
    var finished: [RequestID: PrepareOutcome] = [:]
    var selfFenced: [String] = []
    var log: [String] = []
    let config: ClusterConfig

    init(_ node: String, config: ClusterConfig = Fixtures.twoHost()) {
        self.config = config
        self.core = AgentCore(localNode: node, document: ClusterDocument(config: config, origin: config.node(named: node)!.id))
    }

    mutating func record(_ directives: [AgentDirective]) {
        for directive in directives {
            switch directive {
            case .broadcast(let message):
                self.sent.append(message)
                self.sentAt.append(self.now)
            case .schedule(let timer, let at): self.timers[timer] = at
            case .cancel(let timer): self.timers[timer] = nil
            case .answer(let call, let response): self.answers[call] = response
            case .finishPrepare(let id, let outcome): self.finished[id] = outcome
            case .selfFence(let reason): self.selfFenced.append(reason)
            case .log(let entry): self.log.append(entry.text)
            case .announceLocalResources: self.record(self.core.announce([:]))
            default: break
            }
        }
    }

    mutating func quorum(_ quorate: Bool, ring: [UInt32]? = nil, awaitingVerdict: Bool = false) {
        self.record(self.core.onQuorum(QuorumUpdate(quorate: quorate, ring: ring, awaitingVerdict: awaitingVerdict), now: self.now))
    }

    mutating func view(_ ids: [UInt32]) { self.record(self.core.onView(memberIDs: ids, now: self.now)) }

    /// Delivers `message` as sent by `node` (through the wire codec).
    mutating func deliver(_ message: ClusterMessage, from node: String) {
        let id = UInt32(self.config.node(named: node)!.id)
        self.record(self.core.onDelivery(Envelope(from: node, message: message).encoded(), fromNodeID: id, now: self.now))
    }

    /// Delivers every member's sync offer (its own included): the view is synced.
    mutating func syncAll() {
        for member in self.core.ledger.members { self.deliver(.sync(self.core.ledger.document), from: member) }
    }

    /// Moves the fake clock forward, firing due timers in deadline order.
    mutating func advance(by seconds: Double) {
        let end = self.now + Seconds(seconds)
        while let (timer, at) = self.timers.filter({ $0.value <= end }).min(by: { $0.value < $1.value }) {
            self.timers[timer] = nil
            self.now = max(self.now, at)
            self.record(self.core.onTimer(timer, now: self.now))
        }
        self.now = end
    }

    var actionRequests: [ActionRequest] { self.timedActionRequests.map(\.request) }

    var timedActionRequests: [(request: ActionRequest, at: Timestamp)] {
        zip(self.sent, self.sentAt).compactMap { message, at in
            if case .actionRequest(let request) = message { (request, at) } else { nil }
        }
    }

    var pendingCoordinatorWakeUps: [Timestamp] {
        self.timers.compactMap { if case .coordinatorWakeUp = $0.key { $0.value } else { nil } }.sorted()
    }
}

@Suite struct AgentCoreViewTests {
    @Test func theLowestMemberOfASyncedQuorateViewCoordinates() {
        var alpha = CoreDriver("alpha")
        alpha.quorum(true, ring: [1, 2])
        alpha.view([2, 1, 1])  // a second agent process on a node is the same member
        #expect(alpha.core.ledger.members == ["alpha", "beta"])
        #expect(alpha.sent.contains(.sync(alpha.core.ledger.document)))
        #expect(!alpha.core.isCoordinator, "not before every member's offer is in")
        alpha.syncAll()
        #expect(alpha.core.isCoordinator)

        var beta = CoreDriver("beta")
        beta.quorum(true, ring: [1, 2])
        beta.view([1, 2])
        beta.syncAll()
        #expect(!beta.core.isCoordinator)
    }

    @Test func aMessageFromAnImpostorChangesNothing() {
        var alpha = CoreDriver("alpha")
        alpha.quorum(true, ring: [1, 2])
        alpha.view([1, 2])
        let before = alpha.core.ledger
        // Node 2 (beta) claims to be alpha.
        alpha.record(alpha.core.onDelivery(Envelope(from: "alpha", message: .attribute(name: "pingd", value: "0")).encoded(),
                                           fromNodeID: 2, now: alpha.now))
        #expect(alpha.core.ledger.attributes == before.attributes)
        #expect(alpha.log.last == "refused a message claiming to be from alpha but sent by node 2")
        alpha.record(alpha.core.onDelivery(Array("garbage".utf8), fromNodeID: 2, now: alpha.now))
        #expect(alpha.log.last?.hasPrefix("refused a message from node 2: ") == true)
    }

    @Test func coordinationHandsOverWhenTheCoordinatorLeaves() throws {
        var beta = CoreDriver("beta")
        beta.quorum(true, ring: [1, 2])
        beta.view([1, 2])
        beta.syncAll()
        #expect(!beta.core.isCoordinator)
        beta.deliver(.resourceReport(["disk0": ResourceNodeState(role: .promoted), "mba7": ResourceNodeState(role: .started),
                                      "vip": ResourceNodeState(role: .started), "gw-ping": ResourceNodeState(role: .started)]), from: "alpha")
        beta.deliver(.resourceReport(["disk0": ResourceNodeState(role: .unpromoted), "gw-ping": ResourceNodeState(role: .started)]), from: "beta")
        beta.deliver(.attribute(name: "pingd", value: "1000"), from: "beta")
        // alpha leaves; qnetd gives beta the vote.
        let left = beta.now
        beta.quorum(true, ring: [2])
        beta.view([2])
        #expect(!beta.core.isCoordinator, "its own offer for the new view is not in yet")
        beta.syncAll()
        #expect(beta.core.isCoordinator)
        // It waits out alpha's self-fence time (on a coordinator timer) before taking over what ran there.
        let fenceWait = FencingTiming(config: beta.config).survivorWait(for: beta.config.node(named: "alpha"))
        beta.advance(by: 1)
        #expect(beta.actionRequests.filter { $0.node == "beta" }.isEmpty, "acted before alpha's self-fence time: \(beta.actionRequests)")
        #expect(beta.pendingCoordinatorWakeUps.contains(left + fenceWait))
        beta.advance(by: 30)
        let promote = try #require(beta.timedActionRequests.first { $0.request.resource == "disk0" && $0.request.action == .promote },
                                   "beta never promoted disk0: \(beta.actionRequests)")
        #expect(promote.request.node == "beta")
        #expect(promote.at.seconds(since: left) >= fenceWait.value)
    }
}

@Suite struct AgentCoreQuorumTests {
    func synced(_ node: String = "alpha", config: ClusterConfig = Fixtures.twoHost()) -> CoreDriver {
        var driver = CoreDriver(node, config: config)
        driver.quorum(true, ring: [1, 2])
        driver.view([1, 2])
        driver.syncAll()
        return driver
    }

    @Test func losingQuorumSelfFencesUnderPolicyStop() {
        var alpha = self.synced()
        #expect(alpha.selfFenced.isEmpty)
        alpha.quorum(false, ring: [1])
        #expect(alpha.selfFenced == ["quorum lost (no-quorum-policy stop)"])
        // A repeated verdict is no new loss.
        alpha.quorum(false, ring: [1])
        #expect(alpha.selfFenced.count == 1)
    }

    @Test func losingQuorumUnderPolicyIgnoreKeepsResources() {
        var config = Fixtures.twoHost()
        config.properties.noQuorumPolicy = .ignore
        var alpha = self.synced(config: config)
        alpha.quorum(false, ring: [1])
        #expect(alpha.selfFenced.isEmpty)
        #expect(alpha.log.contains("this partition lost quorum"))
    }

    @Test func theVerdictPauseHoldsTheCoordinatorForAtMostItsPatience() throws {
        var alpha = self.synced()
        // The ring changed; votequorum's verdict for it is owed.
        let changed = alpha.now
        alpha.quorum(true, ring: [1, 2], awaitingVerdict: true)
        #expect(alpha.core.isAwaitingVerdict(at: alpha.now))
        // No verdict comes: every wake-up inside the pause is put off by the recheck interval, nothing is sent.
        alpha.advance(by: AgentCore.verdictPatience.value - 0.05)
        #expect(alpha.actionRequests.isEmpty, "acted during the verdict pause: \(alpha.actionRequests)")
        let wakeUp = try #require(alpha.pendingCoordinatorWakeUps.first)
        #expect(wakeUp.seconds(since: changed) <= AgentCore.verdictPatience.value + AgentCore.verdictRecheck.value)
        // The pause ends on its own: the coordinator acts on the verdict it had (starts everything on alpha).
        alpha.advance(by: 0.2)
        #expect(!alpha.core.isAwaitingVerdict(at: alpha.now))
        #expect(alpha.actionRequests.contains { $0.resource == "disk0" && $0.node == "alpha" })
    }

    @Test func aVerdictEndsThePauseAtOnce() {
        var alpha = self.synced()
        alpha.quorum(true, ring: [1, 2], awaitingVerdict: true)
        alpha.advance(by: 0.3)
        #expect(alpha.actionRequests.isEmpty)
        alpha.quorum(true, ring: [1, 2])
        #expect(!alpha.core.isAwaitingVerdict(at: alpha.now))
        alpha.advance(by: 0.2)
        #expect(!alpha.actionRequests.isEmpty)
    }
}

@Suite struct AgentCoreTimerTests {
    func synced() -> CoreDriver {
        var alpha = CoreDriver("alpha")
        alpha.quorum(true, ring: [1, 2])
        alpha.view([1, 2])
        alpha.syncAll()
        return alpha
    }

    @Test func anOperatorRequestWithoutAnswerExpires() throws {
        var alpha = self.synced()
        let (call, directives) = alpha.core.onControl(.intent(.standby(node: "beta")), now: alpha.now)
        alpha.record(directives)
        let id = try #require(alpha.core.request(answering: call))
        #expect(alpha.sent.last == .intent(.standby(node: "beta"), request: id))
        #expect(alpha.timers[.requestExpiry(id)] == alpha.now + AgentCore.requestPatience)
        alpha.advance(by: AgentCore.requestPatience.value - 0.01)
        #expect(alpha.answers[call] == nil)
        alpha.advance(by: 0.02)
        #expect(alpha.answers[call] == .failure("no answer from the cluster within 10 s (is corosync running?)"))
    }

    @Test func anAnsweredRequestCancelsItsExpiry() throws {
        var alpha = self.synced()
        let (call, directives) = alpha.core.onControl(.intent(.standby(node: "beta")), now: alpha.now)
        alpha.record(directives)
        let id = try #require(alpha.core.request(answering: call))
        alpha.deliver(.intent(.standby(node: "beta"), request: id), from: "alpha")
        #expect(alpha.answers[call] == .done("standby beta: applied cluster-wide"))
        #expect(alpha.timers[.requestExpiry(id)] == nil)
        alpha.advance(by: 20)
        #expect(alpha.answers[call] == .done("standby beta: applied cluster-wide"))
    }

    @Test func aMigrationPrepareTimesOutOrFailsWhenTheTargetLeaves() {
        var alpha = self.synced()
        let (timedOut, first) = alpha.core.onPrepareRequested(resource: "mba7", target: "beta", timeout: Seconds(20), now: alpha.now)
        alpha.record(first)
        #expect(alpha.timers[.prepareExpiry(timedOut)] == alpha.now + Seconds(20))
        alpha.advance(by: 20.01)
        #expect(alpha.finished[timedOut] == PrepareOutcome(exitCode: OCFExit.timedOut, output: "beta did not get ready in time"))

        let (departed, second) = alpha.core.onPrepareRequested(resource: "mba7", target: "beta", timeout: Seconds(20), now: alpha.now)
        alpha.record(second)
        alpha.view([1])
        #expect(alpha.finished[departed] == PrepareOutcome(exitCode: OCFExit.generic, output: "the agent on beta left before it was ready"))
        #expect(alpha.timers[.prepareExpiry(departed)] == nil)

        let (answered, third) = alpha.core.onPrepareRequested(resource: "mba7", target: "alpha", timeout: Seconds(20), now: alpha.now)
        alpha.record(third)
        alpha.deliver(.migrationPrepared(request: answered, exitCode: 0, output: "tcp:198.51.100.11:49152"), from: "alpha")
        #expect(alpha.finished[answered] == PrepareOutcome(exitCode: 0, output: "tcp:198.51.100.11:49152"))
    }

    @Test func aCoordinatorWakeUpIsScheduledOnce() {
        var alpha = self.synced()
        let wakeUps = alpha.pendingCoordinatorWakeUps
        #expect(wakeUps.count == 1)
        alpha.deliver(.attribute(name: "pingd", value: "1000"), from: "beta")
        #expect(alpha.pendingCoordinatorWakeUps == wakeUps, "a burst of changes is one debounced wake-up")
        alpha.advance(by: Coordinator.debounce.value)
        #expect(!alpha.actionRequests.isEmpty)
    }

    @Test func onlyALostCorosyncConnectionRestartsTheAgent() {
        #expect(AgentStop.corosyncConnectionLost.restartDelay == Seconds(2))
        #expect(AgentStop.corosyncUnavailable("no cmap").restartDelay == nil)
        #expect(AgentStop.notInConfig(nodeID: 3, nodes: ["alpha=1"]).restartDelay == nil)
    }
}

@Suite struct AgentCoreControlTests {
    @Test func intentsNamingUnknownThingsAreRefusedBeforeTheGroupHearsOfThem() {
        var alpha = CoreDriver("alpha")
        let (call, directives) = alpha.core.onControl(.intent(.forceStop(resource: "nope")), now: alpha.now)
        alpha.record(directives)
        #expect(alpha.answers[call] == .failure("no resource named 'nope' (resources: disk0, mba7, vip, gw-ping)"))
        #expect(alpha.sent.isEmpty)
        let (same, more) = alpha.core.onControl(.intent(.migrate(node: "alpha", to: "alpha", expires: nil)), now: alpha.now)
        alpha.record(more)
        #expect(alpha.answers[same] == .failure("cannot migrate alpha to itself"))
    }

    @Test func thisHostIsResolvedBeforeTheGroupHearsOfIt() throws {
        var beta = CoreDriver("beta")
        let (call, directives) = beta.core.onControl(.intent(.migrate(node: .thisHost, to: nil, expires: nil)), now: beta.now)
        beta.record(directives)
        let id = try #require(beta.core.request(answering: call))
        #expect(beta.sent.last == .intent(.migrate(node: "beta", to: nil, expires: nil), request: id))
    }

    @Test func aNewConfigGetsTheNextEpoch() throws {
        var alpha = CoreDriver("alpha")
        let (call, directives) = alpha.core.onControl(.applyConfig(alpha.config), now: alpha.now)
        alpha.record(directives)
        let id = try #require(alpha.core.request(answering: call))
        var expected = alpha.config
        expected.epoch += 1
        #expect(alpha.sent.last == .applyConfig(expected, request: id))
    }

    @Test func eventsAreAnsweredFromTheHistory() {
        var alpha = CoreDriver("alpha")
        alpha.quorum(true, ring: [1, 2])
        let (call, directives) = alpha.core.onControl(.events(limit: 1), now: alpha.now)
        alpha.record(directives)
        #expect(alpha.answers[call] == .events([EventRecord(at: alpha.now, node: "alpha", text: "this partition has quorum")]))
    }
}
