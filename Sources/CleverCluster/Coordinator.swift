import CleverModel
import CleverScheduler

/// Decides and dispatches: the coordinator is deterministically the member with the lowest node id in
/// the quorate partition (virtual synchrony makes an election protocol unnecessary). On every change
/// it recomputes the transition from the replicated state and sends the actions whose prerequisites
/// are done. Completed actions are part of the replicated state, so a successor recomputes without
/// repeating them.
public struct Coordinator: Sendable {
    public enum Directive: Hashable, Sendable {
        case send(ActionRequest)
        /// Run this node's fence agent (it left the cluster and has one configured).
        case fence(NodeConfig)
        /// Call `onTimer` at this time (debounce, fencing waits, action deadlines).
        case wakeUp(at: Timestamp)
        case event(String)
    }

    struct InFlight: Hashable, Sendable {
        var request: ActionRequest
        var deadline: Timestamp
    }

    public let localNode: String
    /// Requests sent and not yet answered, by resource and node (a live migration holds both ends).
    private(set) var inFlight: [ResourceOnNode: InFlight] = [:]
    private var serial = 0
    private var wakeUps: Set<Timestamp> = []
    /// Departures already handed to a fence agent: the node and when it left (a later departure is fenced again).
    private var fencingStarted: Set<Departure> = []

    struct Departure: Hashable, Sendable {
        var node: String
        var leftAt: Timestamp
    }
    /// Slack on top of an action's own timeout before the coordinator gives up waiting for its result.
    public static let resultGrace = Seconds(5)
    public static let debounce = Seconds(0.05)

    public init(localNode: String) {
        self.localNode = localNode
    }

    public func isCoordinator(_ ledger: ClusterLedger) -> Bool { ledger.coordinatorNode == self.localNode }

    /// Each request once: a live migration is held under both its ends.
    public var pendingActions: [ActionRequest] {
        Set(self.inFlight.values.map(\.request)).sorted { $0.id.serial < $1.id.serial }
    }

    /// Something in the ledger changed: recompute soon (changes come in bursts).
    public mutating func onChange(now: Timestamp) -> [Directive] {
        let at = now + Self.debounce
        guard !self.wakeUps.contains(where: { $0 <= at }) else { return [] }
        self.wakeUps.insert(at)
        return [.wakeUp(at: at)]
    }

    /// An operation result arrived (already applied to the ledger).
    public mutating func onResult(_ result: OperationResult, now: Timestamp) -> [Directive] {
        self.inFlight[ResourceOnNode(result.resource, on: result.node)] = nil
        if let target = result.migrationTarget { self.inFlight[ResourceOnNode(result.resource, on: target)] = nil }
        return self.onChange(now: now)
    }

    /// `monotonic`: the shell's monotonic clock, on which the fencing waits count (nil: `now` serves).
    public mutating func onTimer(ledger: ClusterLedger, now: Timestamp, monotonic: Timestamp? = nil) -> [Directive] {
        self.wakeUps = self.wakeUps.filter { $0 > now }
        guard self.isCoordinator(ledger) else {
            self.inFlight = [:]
            return []
        }
        var directives: [Directive] = []
        // Forget requests to nodes that left, and requests whose results never came.
        for (key, flight) in self.inFlight where !ledger.members.contains(flight.request.node) || flight.deadline <= now {
            self.inFlight[key] = nil
            directives.append(.event("no result for \(flight.request) (\(ledger.members.contains(flight.request.node) ? "timed out" : "node left")); rescheduling"))
        }

        let config = ledger.config
        for (node, leftAt) in ledger.departed where !ledger.fenced.contains(node) {
            guard let device = config.node(named: node), device.fenceAgent != nil,
                self.fencingStarted.insert(Departure(node: node, leftAt: leftAt)).inserted
            else { continue }
            directives.append(.fence(device))
        }
        let state = ledger.clusterState
        let transition = Scheduler(config: config).schedule(state: state, now: now)
        // Fencing waits end on the monotonic clock; wake-ups are on `now`'s clock.
        let monotonicNow = monotonic ?? now
        let fenceWait = self.fencingWait(ledger: ledger, now: monotonicNow).mapValues { now + Seconds($0.seconds - monotonicNow.seconds) }
        let frozen = ledger.frozenByAgentless
        let waiting = Self.waitingForAbsentAgents(transition, ledger: ledger)
        var nextWake: Timestamp? = fenceWait.values.min()

        for action in transition.actions where action.action != .monitor && action.after.isEmpty {
            if action.action == .migrateFrom || (action.action == .stop && self.isMigrationCleanup(action, transition)) { continue }
            let key = ResourceOnNode(action.resource, on: action.node)
            // One action per resource at a time, except for clones (one per instance, i.e. per node).
            let isClone = config.resource(named: action.resource)?.isClone ?? false
            guard self.inFlight[key] == nil, isClone || !self.inFlight.keys.contains(where: { $0.resource == action.resource }) else { continue }
            if [.start, .promote, .migrateTo].contains(action.action), let until = fenceWait[action.resource] {
                nextWake = min(nextWake ?? until, until)
                continue
            }
            if [.start, .promote, .migrateTo].contains(action.action), frozen[action.resource] != nil { continue }
            if waiting.contains(action.id) { continue }
            // A stop that failed is not retried in a loop: the resource is blocked there until `cleanup`.
            if ledger.resources[action.resource]?[action.node]?.stopFailed == true { continue }
            guard ledger.members.contains(action.node) else { continue }
            self.serial += 1
            let timeout = config.resource(named: action.resource)?.operationTimeout ?? Seconds(20)
            let migrationTarget = action.action == .migrateTo
                ? transition.actions.first { $0.resource == action.resource && $0.action == .migrateFrom }?.node : nil
            var request = ActionRequest(
                id: RequestID(node: self.localNode, serial: self.serial), resource: action.resource, node: action.node,
                action: action.action, migrationTarget: migrationTarget, timeout: timeout, reason: action.reason)
            if action.action == .promote {
                request.peerFenced = config.nodes.contains { !ledger.members.contains($0.name) && !ledger.agentless.contains($0.name) }
                request.allowTwoPrimaries = self.liveMigrationNeedsBothPrimary(action.resource, transition, config)
            }
            let deadline = now + Seconds(timeout.value + Self.resultGrace.value)
            self.inFlight[key] = InFlight(request: request, deadline: deadline)
            if let migrationTarget { self.inFlight[ResourceOnNode(action.resource, on: migrationTarget)] = InFlight(request: request, deadline: deadline) }
            directives.append(.send(request))
            nextWake = min(nextWake ?? deadline, deadline)
        }
        if let nextWake, !self.wakeUps.contains(nextWake) {
            self.wakeUps.insert(nextWake)
            directives.append(.wakeUp(at: nextWake))
        }
        return directives
    }

    /// Whether a VM that uses this volume migrates live in this transition (the dual-primary window).
    private func liveMigrationNeedsBothPrimary(_ volume: String, _ transition: Transition, _ config: ClusterConfig) -> Bool {
        transition.actions.contains { action in
            guard action.action == .migrateTo, case .vm(let vm) = config.resource(named: action.resource)?.kind else { return false }
            return vm.allVolumes.contains(volume)
        }
    }

    /// After a live migration the source's clean-up stop is part of `migrate_to` here.
    private func isMigrationCleanup(_ action: Action, _ transition: Transition) -> Bool {
        transition.actions.contains { $0.resource == action.resource && $0.action == .migrateTo && $0.node == action.node }
    }

    /// Actions on a host whose agent is gone (in the ring, agent absent), and every action ordered before one of
    /// them: such a chain cannot finish until the agent is back, so none of it starts. A live move to that host
    /// waits with the VM running and its address up, instead of the address going down for a move that cannot
    /// happen, or the VM stopping because its only destination cannot take it yet.
    static func waitingForAbsentAgents(_ transition: Transition, ledger: ClusterLedger) -> Set<Int> {
        let absent = ledger.agentless
        guard !absent.isEmpty else { return [] }
        var waiting = Set(transition.actions.filter { absent.contains($0.node) }.map(\.id))
        var grew = !waiting.isEmpty
        while grew {
            grew = false
            for action in transition.actions where waiting.contains(action.id) {
                for before in action.after where waiting.insert(before).inserted { grew = true }
            }
        }
        return waiting
    }

    /// Resources that were active on a node that left less than its survivor wait ago (`FencingTiming`: its last
    /// possible watchdog pet + W, or its self-fence time without a watchdog): they may still be running there until
    /// its watchdog has reset it, so nothing starts them elsewhere yet. `now` and the result: monotonic clock.
    func fencingWait(ledger: ClusterLedger, now: Timestamp) -> [String: Timestamp] {
        var waits: [String: Timestamp] = [:]
        let timing = FencingTiming(config: ledger.config)
        for (node, leftAt) in ledger.departedSince where !ledger.fenced.contains(node) {
            let until = leftAt + timing.survivorWait(for: ledger.config.node(named: node))
            guard until > now else { continue }
            for (resource, perNode) in ledger.resources where perNode[node]?.role.isActive == true {
                waits[resource] = max(waits[resource] ?? until, until)
                if let group = ledger.config.group(containing: resource) {
                    for member in group.members { waits[member] = max(waits[member] ?? until, until) }
                }
            }
        }
        // What depends on a waiting resource waits with it.
        for case .colocation(let colocation) in ledger.config.effectiveConstraints where colocation.score.isInfinite {
            if let until = waits[colocation.primary] { waits[colocation.dependent] = max(waits[colocation.dependent] ?? until, until) }
        }
        return waits
    }
}
