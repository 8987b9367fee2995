import CleverAgentCore
import CleverCluster
import CleverControl
import CleverModel

/// Several agents' cores (the same `AgentCore` the daemon runs) wired to an in-memory, totally ordered bus with a
/// fake clock and fake executors: the agent's logic tested without Corosync, processes or time. Partitions,
/// power-offs and held or failing actions are scriptable. Single-threaded by design.
public final class InMemoryCluster {
    public struct Execution: Hashable, Sendable {
        public var resource: String
        public var node: String
        public var action: ResourceAction
        public var at: Timestamp
    }

    public struct Host {
        public var core: AgentCore
        public var ledger: ClusterLedger { self.core.ledger }
        public var coordinator: Coordinator { self.core.coordinator }
        public var alive = true
        /// The host's agent process runs (a host may be alive, its Corosync in the ring, with its agent dead).
        public var agentRunning = true
        var participates: Bool { self.alive && self.agentRunning }
        /// What really runs on this host (the executor's truth).
        public var local: [String: ResourceNodeState] = [:]
        public var persisted: ClusterDocument?
        /// The attributes file in the run directory (gone when the host powers off).
        public var savedAttributes: [String: String] = [:]
        public var held: [ActionRequest] = []
    }

    /// A control-socket call made on one host.
    public struct Call: Hashable, Sendable {
        public var node: String
        public var call: ControlCall
    }

    public private(set) var hosts: [String: Host] = [:]
    public private(set) var now: Timestamp
    public private(set) var executions: [Execution] = []
    public private(set) var events: [String] = []
    /// Answers to control calls, as the CLI would print them.
    public private(set) var answers: [Call: ControlResponse] = [:]
    /// Intervals during which each resource ran on each host, for "never twice" checks.
    public private(set) var runIntervals: [(resource: String, node: String, from: Timestamp, to: Timestamp?)] = []
    /// Replication fencing commands the cores gave their local volumes, in order (they always succeed).
    public private(set) var volumeCommands: [(node: String, volume: String, command: VolumeCommand)] = []
    public var hold: (ActionRequest) -> Bool = { _ in false }
    public var failure: (ActionRequest) -> Int? = { _ in nil }
    /// Which partitions are quorate, given all partitions (default: a strict majority; on an even
    /// split the partition holding the lowest live node id, as qnetd's ffsplit decides a tie; a lone
    /// survivor keeps the tie-breaker's vote).
    public var quorum: ([String], [[String]], ClusterConfig) -> Bool = InMemoryCluster.majorityOrLowestID
    public let config: ClusterConfig

    private var partitions: [[String]] = []
    /// Messages on the bus, encoded as over Corosync.
    private var queue: [(partition: Int, from: String, bytes: [UInt8])] = []
    private var timers: [(host: String, timer: AgentTimer, at: Timestamp)] = []

    /// The highest wire version each host's agent speaks (absent: the current one), for rolling upgrades.
    public private(set) var wireVersions: [String: Int]
    /// Every message put on the bus by an agent: its sender and the wire version it was written in.
    public private(set) var sentVersions: [(from: String, version: Int)] = []

    /// Hosts whose node config names no watchdog run as `watchdog: none` (their cores would refuse every start);
    /// `refusingWithoutWatchdog` keeps the config as it is, to test that refusal.
    public init(config: ClusterConfig, now: Timestamp, wireVersions: [String: Int] = [:], refusingWithoutWatchdog: Bool = false) {
        var config = config
        if !refusingWithoutWatchdog {
            for index in config.nodes.indices where config.nodes[index].watchdog == nil { config.nodes[index].watchdog = .disabled }
        }
        self.config = config
        self.now = now
        self.wireVersions = wireVersions
        for node in config.nodes {
            self.hosts[node.name] = Host(core: AgentCore(
                localNode: node.name, document: ClusterDocument(config: config, origin: node.id),
                highestWireVersion: wireVersions[node.name] ?? WireVersion.current))
        }
    }

    public static func majorityOrLowestID(_ members: [String], _ partitions: [[String]], _ config: ClusterConfig) -> Bool {
        let total = config.nodes.count
        if members.count * 2 > total { return true }
        let largest = partitions.map(\.count).max() ?? 0
        guard members.count == largest, partitions.filter({ $0.count * 2 > total }).isEmpty else { return false }
        let contenders = partitions.filter { $0.count == largest }
        let lowest = contenders.flatMap { $0 }.compactMap { config.node(named: $0) }.min { $0.id < $1.id }
        return lowest.map { members.contains($0.name) } ?? false
    }

    // MARK: - Topology

    public func start() { self.setPartitions([self.config.nodes.map(\.name)]) }

    public func setPartitions(_ groups: [[String]]) {
        self.partitions = groups.map { $0.filter { self.hosts[$0]?.alive == true } }
        self.queue.removeAll()  // messages in flight across a view change are not delivered (virtual synchrony)
        for (index, members) in self.partitions.enumerated() {
            // The ring holds every live host; the agents' view only those whose agent runs.
            let ring = members.compactMap { self.config.node(named: $0)?.id }.map { UInt32($0) }
            let agents = members.filter { self.hosts[$0]!.agentRunning }
            let ids = agents.compactMap { self.config.node(named: $0)?.id }.map { UInt32($0) }
            let quorate = self.quorum(members, self.partitions, self.config)
            for member in agents {
                let update = QuorumUpdate(quorate: quorate, ring: ring)
                self.handle(member, self.hosts[member]!.core.onQuorum(update, now: self.now), partition: index)
                self.handle(member, self.hosts[member]!.core.onView(memberIDs: ids, now: self.now), partition: index)
            }
        }
    }

    public func powerOff(_ node: String) {
        self.hosts[node]!.alive = false
        for resource in self.hosts[node]!.local.keys { self.setRole(resource, on: node, .stopped) }
        self.hosts[node]!.held.removeAll()
        self.hosts[node]!.savedAttributes = [:]
        self.timers.removeAll { $0.host == node }
        self.setPartitions(self.partitions.map { $0.filter { $0 != node } }.filter { !$0.isEmpty })
    }

    /// The host's agent dies: what it started keeps running, its Corosync stays in the ring.
    public func killAgent(_ node: String) {
        self.hosts[node]!.agentRunning = false
        self.hosts[node]!.held.removeAll()
        self.timers.removeAll { $0.host == node }
        self.setPartitions(self.partitions)
    }

    /// The host's agent starts again (fresh state from its persisted document) and rejoins.
    /// `highestWireVersion`: the restarted agent is another release (an upgrade or a downgrade).
    public func restartAgent(_ node: String, highestWireVersion: Int? = nil) {
        if let highestWireVersion { self.wireVersions[node] = highestWireVersion }
        self.hosts[node]!.agentRunning = true
        self.restartCore(node)
        self.setPartitions(self.partitions)
    }

    /// A new agent process: it starts from its persisted document and (since the host booted) its saved attributes.
    private func restartCore(_ node: String) {
        let host = self.hosts[node]!
        self.hosts[node]!.core = AgentCore(localNode: node, document: host.persisted ?? host.ledger.document,
                                           localAttributes: host.savedAttributes,
                                           highestWireVersion: self.wireVersions[node] ?? WireVersion.current)
    }

    public func powerOn(_ node: String, joining partition: Int = 0) {
        self.hosts[node]!.alive = true
        self.restartCore(node)
        var groups = self.partitions
        if groups.isEmpty { groups = [[node]] } else { groups[partition].append(node) }
        self.setPartitions(groups)
    }

    // MARK: - Operator and node inputs

    /// Puts a message on the bus as if `node` had sent it (bypassing its agent).
    public func send(from node: String, _ message: ClusterMessage) {
        guard let partition = self.partitionIndex(of: node) else { return }
        self.queue.append((partition, node, Envelope(from: node, message: message).encoded()))
    }

    /// A local resource on `node` reports an attribute through its agent (as the ping and volume agents do).
    public func report(on node: String, _ name: String, _ value: String?) {
        guard self.hosts[node]!.participates, let partition = self.partitionIndex(of: node) else { return }
        self.handle(node, self.hosts[node]!.core.onLocalAttribute(name: name, value: value), partition: partition)
    }

    /// A local volume on `node` reports its state to its agent (as the volume watcher does).
    public func observeVolume(on node: String, _ volume: String, _ observation: VolumeObservation?) {
        guard self.hosts[node]!.participates, let partition = self.partitionIndex(of: node) else { return }
        self.handle(node, self.hosts[node]!.core.onVolumeObserved(volume, observation, now: self.now), partition: partition)
    }

    /// A control-socket request on `node`, as the CLI sends it; its answer is `answer(to:)` once it came.
    @discardableResult
    public func control(on node: String, _ request: ControlRequest) -> Call {
        let (call, directives) = self.hosts[node]!.core.onControl(request, now: self.now)
        self.handle(node, directives, partition: self.partitionIndex(of: node) ?? -1)
        return Call(node: node, call: call)
    }

    /// An operator intent through `node`'s control socket.
    @discardableResult
    public func request(from node: String, _ intent: OperatorIntent) -> Call { self.control(on: node, .intent(intent)) }

    public func answer(to call: Call) -> ControlResponse? { self.answers[call] }

    /// Releases held actions (they complete successfully now).
    public func releaseHeld() {
        for name in self.hosts.keys.sorted() {
            let held = self.hosts[name]!.held
            self.hosts[name]!.held.removeAll()
            for request in held { self.complete(request, on: name, exitCode: OCFExit.success) }
        }
    }

    // MARK: - Running

    /// Delivers messages and fires timers until nothing is left or `limit` of fake time passes.
    public func settle(for limit: Seconds = Seconds(60)) {
        let end = self.now + limit
        var steps = 0
        while steps < 100_000 {
            steps += 1
            if !self.queue.isEmpty {
                let (partition, from, bytes) = self.queue.removeFirst()
                self.deliver(bytes, from: from, to: partition)
                continue
            }
            guard let next = self.timers.min(by: { $0.at < $1.at }), next.at <= end else { break }
            self.timers.removeAll { $0.host == next.host && $0.timer == next.timer }
            if next.at > self.now { self.now = next.at }
            guard self.hosts[next.host]!.participates, let partition = self.partitionIndex(of: next.host) else { continue }
            self.handle(next.host, self.hosts[next.host]!.core.onTimer(next.timer, now: self.now), partition: partition)
        }
    }

    public func advance(_ seconds: Seconds) {
        self.settle(for: seconds)
        self.now = max(self.now, self.now + Seconds(0))
    }

    /// Where the executors say a resource runs (the truth, not the ledger).
    public func running(_ resource: String) -> [String] {
        self.hosts.filter { $0.value.alive && $0.value.local[resource]?.role.isActive == true }.map(\.key).sorted()
    }

    public func role(of resource: String, on node: String) -> ResourceRole { self.hosts[node]?.local[resource]?.role ?? .stopped }

    public func coordinator() -> String? {
        self.hosts.filter { $0.value.participates && $0.value.core.isCoordinator }.map(\.key).sorted().first
    }

    // MARK: - Plumbing

    private func partitionIndex(of node: String) -> Int? { self.partitions.firstIndex { $0.contains(node) } }

    private func deliver(_ bytes: [UInt8], from sender: String, to partition: Int) {
        // The bus, like Corosync, names the sending node by id; the core decodes and checks the claim.
        let senderID = UInt32(self.config.node(named: sender)?.id ?? 0)
        for member in self.partitions[partition] where self.hosts[member]!.participates {
            self.handle(member, self.hosts[member]!.core.onDelivery(bytes, fromNodeID: senderID, now: self.now), partition: partition)
        }
    }

    /// The fake shell: performs a core's directives in order, as `Agent` does with real I/O.
    private func handle(_ node: String, _ directives: [AgentDirective], partition: Int) {
        for directive in directives {
            switch directive {
            case .broadcast(let message):
                guard partition >= 0 else { continue }
                let envelope = self.hosts[node]!.core.envelope(message)
                self.sentVersions.append((node, envelope.v))
                self.queue.append((partition, node, envelope.encoded()))
            case .announceLocalResources:
                self.handle(node, self.hosts[node]!.core.announce(self.localRoles(node)), partition: partition)
            case .persist(let document): self.hosts[node]!.persisted = document
            case .saveAttributes(let attributes): self.hosts[node]!.savedAttributes = attributes
            case .runAction(let request): self.execute(request, on: node)
            case .prepareIncoming(let request):
                self.handle(node, self.hosts[node]!.core.onIncomingPrepared(request, exitCode: OCFExit.success, output: nil), partition: partition)
            case .adopt, .finishPrepare: break
            case .selfFence:
                for (resource, state) in self.hosts[node]!.local where state.role.isActive {
                    self.setRole(resource, on: node, .stopped)
                }
                self.hosts[node]!.held.removeAll()
                let done = self.hosts[node]!.core.onSelfFenceDone(failed: [], roles: self.localRoles(node), now: self.now)
                self.handle(node, done, partition: partition)
            case .fence(let target):
                // A fence agent that always confirms the node off.
                let done = self.hosts[node]!.core.onFenceDone(node: target.name, succeeded: true, status: 0, output: "", now: self.now)
                self.handle(node, done, partition: partition)
            case .schedule(let timer, let at): self.timers.append((node, timer, at))
            case .cancel(let timer): self.timers.removeAll { $0.host == node && $0.timer == timer }
            case .answer(let call, let response): self.answers[Call(node: node, call: call)] = response
            case .runDirect(let call, let action, let resource):
                if action == .start || action == .stop { self.setRole(resource, on: node, action == .start ? .started : .stopped) }
                let done = self.hosts[node]!.core.onDirectDone(call, action: action, resource: resource, exitCode: OCFExit.success, output: nil,
                                                              roles: self.localRoles(node))
                self.handle(node, done, partition: partition)
            case .log(let entry): self.events.append("\(node): \(entry.text)")
            case .resolveVolume(let request):
                let done = self.hosts[node]!.core.onVolumeResolveDone(request, succeeded: true, text: "\(request.volume) resolved on \(node)", now: self.now)
                self.handle(node, done, partition: partition)
            case .volumeCommand(let volume, let command):
                self.volumeCommands.append((node, volume, command))
                self.handle(node, self.hosts[node]!.core.onVolumeCommandDone(volume, command, error: nil, now: self.now), partition: partition)
            }
        }
    }

    private func localRoles(_ node: String) -> [String: ResourceRole] { self.hosts[node]!.local.mapValues(\.role) }

    private func execute(_ request: ActionRequest, on node: String) {
        // One action per resource at a time: a duplicate of a held action is already under way.
        if self.hosts[node]!.held.contains(where: { $0.resource == request.resource }) { return }
        if self.hold(request) {
            self.hosts[node]!.held.append(request)
            return
        }
        self.complete(request, on: node, exitCode: self.failure(request) ?? OCFExit.success)
    }

    private func complete(_ request: ActionRequest, on node: String, exitCode: Int) {
        self.executions.append(Execution(resource: request.resource, node: node, action: request.action, at: self.now))
        let promotable = self.config.resource(named: request.resource)?.isPromotable ?? false
        if exitCode == OCFExit.success {
            switch request.action {
            case .start, .demote: self.setRole(request.resource, on: node, promotable ? .unpromoted : .started)
            case .promote: self.setRole(request.resource, on: node, .promoted)
            case .stop: self.setRole(request.resource, on: node, .stopped)
            case .migrateTo:
                self.setRole(request.resource, on: node, .stopped)
                if let target = request.migrationTarget { self.setRole(request.resource, on: target, .started) }
            case .migrateFrom: self.setRole(request.resource, on: node, .started)
            case .monitor: break
            }
            if case .ping(let ping) = self.config.resource(named: request.resource)?.kind {
                if request.action == .start {
                    self.report(on: node, ping.attribute, String(ping.hosts.count * ping.multiplier))
                } else if request.action == .stop {
                    self.report(on: node, ping.attribute, nil)
                }
            }
        } else {
            self.setRole(request.resource, on: node, .failed)
        }
        let result = OperationResult(
            request: request.id, resource: request.resource, node: node, action: request.action, exitCode: exitCode,
            migrationTarget: request.migrationTarget, at: self.now)
        if let partition = self.partitionIndex(of: node) { self.handle(node, self.hosts[node]!.core.onLocalResult(result), partition: partition) }
    }

    private func setRole(_ resource: String, on node: String, _ role: ResourceRole) {
        let was = self.hosts[node]!.local[resource]?.role ?? .stopped
        self.hosts[node]!.local[resource, default: ResourceNodeState()].role = role
        if !was.isActive, role.isActive {
            self.runIntervals.append((resource, node, self.now, nil))
        } else if was.isActive, !role.isActive,
            let index = self.runIntervals.lastIndex(where: { $0.resource == resource && $0.node == node && $0.to == nil })
        {
            self.runIntervals[index].to = self.now
        }
    }
}
