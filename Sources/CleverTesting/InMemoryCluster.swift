import CleverCluster
import CleverModel

/// Several agents' pure cores wired to an in-memory, totally ordered bus with a fake clock and fake
/// executors: the agent's logic tested without Corosync, processes or time. Partitions, power-offs
/// and held or failing actions are scriptable. Single-threaded by design.
public final class InMemoryCluster {
    public struct Execution: Hashable, Sendable {
        public var resource: String
        public var node: String
        public var action: ResourceAction
        public var at: Timestamp
    }

    public struct Host {
        public var ledger: ClusterLedger
        public var coordinator: Coordinator
        public var alive = true
        /// The host's agent process runs (a host may be alive, its Corosync in the ring, with its agent dead).
        public var agentRunning = true
        var participates: Bool { self.alive && self.agentRunning }
        /// What really runs on this host (the executor's truth).
        public var local: [String: ResourceNodeState] = [:]
        public var persisted: ClusterDocument?
        public var held: [ActionRequest] = []
        public var serial = 0
    }

    public private(set) var hosts: [String: Host] = [:]
    public private(set) var now: Timestamp
    public private(set) var executions: [Execution] = []
    public private(set) var events: [String] = []
    public private(set) var requestOutcomes: [RequestID: String?] = [:]
    /// Intervals during which each resource ran on each host, for "never twice" checks.
    public private(set) var runIntervals: [(resource: String, node: String, from: Timestamp, to: Timestamp?)] = []
    public var hold: (ActionRequest) -> Bool = { _ in false }
    public var failure: (ActionRequest) -> Int? = { _ in nil }
    /// Which partitions are quorate, given all partitions (default: a strict majority; on an even
    /// split the partition holding the lowest live node id, as qnetd's ffsplit decides a tie; a lone
    /// survivor keeps the tie-breaker's vote).
    public var quorum: ([String], [[String]], ClusterConfig) -> Bool = InMemoryCluster.majorityOrLowestID
    public let config: ClusterConfig

    private var partitions: [[String]] = []
    private var queue: [(partition: Int, envelope: Envelope)] = []
    private var timers: [(host: String, at: Timestamp)] = []

    public init(config: ClusterConfig, now: Timestamp) {
        self.config = config
        self.now = now
        for node in config.nodes {
            self.hosts[node.name] = Host(
                ledger: ClusterLedger(localNode: node.name, document: ClusterDocument(config: config, origin: node.id)),
                coordinator: Coordinator(localNode: node.name))
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
            let ids = agents.compactMap { self.config.node(named: $0)?.id }
            let quorate = self.quorum(members, self.partitions, self.config)
            for member in agents {
                self.handle(member, self.hosts[member]!.ledger.onQuorum(quorate), partition: index)
                var ledger = self.hosts[member]!.ledger
                self.handle(member, ledger.onRing(memberIDs: ring, now: self.now), partition: index)
                let directives = ledger.onView(memberIDs: ids, now: self.now)
                self.hosts[member]!.ledger = ledger
                self.handle(member, directives, partition: index)
            }
        }
    }

    public func powerOff(_ node: String) {
        self.hosts[node]!.alive = false
        for resource in self.hosts[node]!.local.keys { self.setRole(resource, on: node, .stopped) }
        self.hosts[node]!.held.removeAll()
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
    public func restartAgent(_ node: String) {
        self.hosts[node]!.agentRunning = true
        self.hosts[node]!.ledger = ClusterLedger(localNode: node, document: self.hosts[node]!.persisted ?? self.hosts[node]!.ledger.document)
        self.hosts[node]!.coordinator = Coordinator(localNode: node)
        self.setPartitions(self.partitions)
        // The agent keeps its node attributes across a restart (the real one in its run directory).
        for resource in self.config.resources where self.hosts[node]!.local[resource.id]?.role.isActive == true {
            if case .ping(let ping) = resource.kind {
                self.send(from: node, .attribute(name: ping.attribute, value: String(ping.hosts.count * ping.multiplier)))
            }
        }
    }

    public func powerOn(_ node: String, joining partition: Int = 0) {
        self.hosts[node]!.alive = true
        self.hosts[node]!.ledger = ClusterLedger(localNode: node, document: self.hosts[node]!.persisted ?? self.hosts[node]!.ledger.document)
        self.hosts[node]!.coordinator = Coordinator(localNode: node)
        var groups = self.partitions
        if groups.isEmpty { groups = [[node]] } else { groups[partition].append(node) }
        self.setPartitions(groups)
    }

    // MARK: - Operator and node inputs

    public func send(from node: String, _ message: ClusterMessage) {
        guard let partition = self.partitionIndex(of: node) else { return }
        self.queue.append((partition, Envelope(from: node, message: message)))
    }

    @discardableResult
    public func request(from node: String, _ intent: OperatorIntent) -> RequestID {
        self.hosts[node]!.serial += 1
        let id = RequestID(node: node, serial: self.hosts[node]!.serial)
        self.send(from: node, .intent(intent, request: id))
        return id
    }

    public func outcome(of request: RequestID) -> String?? { self.requestOutcomes[request] }

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
                let (partition, envelope) = self.queue.removeFirst()
                self.deliver(envelope, to: partition)
                continue
            }
            guard let next = self.timers.min(by: { $0.at < $1.at }), next.at <= end else { break }
            self.timers.removeAll { $0.host == next.host && $0.at == next.at }
            if next.at > self.now { self.now = next.at }
            guard self.hosts[next.host]!.participates, let partition = self.partitionIndex(of: next.host) else { continue }
            var coordinator = self.hosts[next.host]!.coordinator
            let directives = coordinator.onTimer(ledger: self.hosts[next.host]!.ledger, now: self.now)
            self.hosts[next.host]!.coordinator = coordinator
            self.handle(next.host, directives, partition: partition)
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
        self.hosts.filter { $0.value.participates && $0.value.coordinator.isCoordinator($0.value.ledger) }.map(\.key).sorted().first
    }

    // MARK: - Plumbing

    private func partitionIndex(of node: String) -> Int? { self.partitions.firstIndex { $0.contains(node) } }

    private func deliver(_ envelope: Envelope, to partition: Int) {
        // Through the real codec, as over Corosync.
        guard let decoded = try? Envelope.decode(envelope.encoded()) else {
            self.events.append("undecodable message from \(envelope.from)")
            return
        }
        for member in self.partitions[partition] where self.hosts[member]!.participates {
            var ledger = self.hosts[member]!.ledger
            let directives = ledger.onDeliver(decoded, now: self.now)
            self.hosts[member]!.ledger = ledger
            self.handle(member, directives, partition: partition)
            var coordinator = self.hosts[member]!.coordinator
            let more: [Coordinator.Directive]
            if case .operationResult(let result) = decoded.message {
                more = coordinator.onResult(result, now: self.now)
            } else {
                more = coordinator.onChange(now: self.now)
            }
            self.hosts[member]!.coordinator = coordinator
            self.handle(member, more, partition: partition)
        }
    }

    private func handle(_ node: String, _ directives: [ClusterLedger.Directive], partition: Int) {
        for directive in directives {
            switch directive {
            case .broadcast(let message): self.queue.append((partition, Envelope(from: node, message: message)))
            case .announceLocalResources:
                self.queue.append((partition, Envelope(from: node, message: .resourceReport(self.hosts[node]!.local))))
            case .persist(let document): self.hosts[node]!.persisted = document
            case .requestDone(let request, let refusal):
                if request.node == node { self.requestOutcomes[request] = .some(refusal) }
            case .runAction(let request): self.execute(request, on: node)
            case .prepareMigration(let request):
                self.queue.append((partition, Envelope(from: node, message: .migrationPrepared(
                    request: request.id, exitCode: OCFExit.success, output: nil))))
            case .migrationPrepared: break
            case .event(let text): self.events.append("\(node): \(text)")
            case .refused(let text): self.events.append("\(node): refused: \(text)")
            case .stopAllLocalResources(let reason):
                self.events.append("\(node): self-fence: \(reason)")
                for (resource, state) in self.hosts[node]!.local where state.role.isActive {
                    self.setRole(resource, on: node, .stopped)
                }
                self.hosts[node]!.held.removeAll()
            }
        }
    }

    private func handle(_ node: String, _ directives: [Coordinator.Directive], partition: Int) {
        for directive in directives {
            switch directive {
            case .send(let request): self.queue.append((partition, Envelope(from: node, message: .actionRequest(request))))
            case .fence(let target):
                self.events.append("\(node) (coordinator): fencing \(target.name)")
                self.queue.append((partition, Envelope(from: node, message: .fenced(node: target.name))))
            case .wakeUp(let at): self.timers.append((node, at))
            case .event(let text): self.events.append("\(node) (coordinator): \(text)")
            }
        }
    }

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
                    self.send(from: node, .attribute(name: ping.attribute, value: String(ping.hosts.count * ping.multiplier)))
                } else if request.action == .stop {
                    self.send(from: node, .attribute(name: ping.attribute, value: nil))
                }
            }
        } else {
            self.setRole(request.resource, on: node, .failed)
        }
        self.send(from: node, .operationResult(OperationResult(
            request: request.id, resource: request.resource, node: node, action: request.action, exitCode: exitCode,
            migrationTarget: request.migrationTarget, at: self.now)))
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
