import CleverModel

/// Applies events to a cluster state and runs transitions as if every action succeeded, as
/// `crm_simulate -S` does. Pure: time is a value carried along.
public struct Simulator: Sendable {
    public let config: ClusterConfig
    public private(set) var state: ClusterState
    public private(set) var now: Timestamp

    /// One event and what the cluster did about it: usually one transition; more when the first
    /// one changed node attributes (a ping resource starting reports connectivity) that the
    /// scheduler then reacts to, as a live cluster would.
    public struct Round: Hashable, Sendable, Codable {
        public var event: SimulationEvent?
        public var transitions: [Transition]

        /// The last transition: its placement is where the round ends.
        public var transition: Transition { self.transitions.last! }

        /// Every action of the round, numbered in execution order.
        public var actions: [Action] {
            var result: [Action] = []
            for transition in self.transitions {
                let offset = result.count
                result += transition.actions.map { action in
                    var renumbered = action
                    renumbered.id += offset
                    renumbered.after = action.after.map { $0 + offset }
                    return renumbered
                }
            }
            return result
        }
    }

    /// A bound on transitions per round; a cluster whose attributes keep changing is reported as is.
    static let maximumTransitionsPerRound = 5

    /// Whether a starting ping resource sets its attribute as if every host answered. Off for
    /// Pacemaker CIBs, to agree with crm_simulate, which never invents attributes.
    public var synthesizesPingAttributes: Bool

    /// Whether a round also schedules again after a transition that changed what runs, until one changes nothing
    /// (at most `maximumTransitionsPerRound`), as the live coordinator reschedules when results come in. On for
    /// Pacemaker CIBs, to compare with crm_simulate run on its own output until the placement settles: the status a
    /// transition leaves (which instance holds which history) can decide the next one.
    public var reschedulesUntilSettled: Bool

    public init(
        config: ClusterConfig, state: ClusterState, now: Timestamp, synthesizesPingAttributes: Bool = true,
        reschedulesUntilSettled: Bool = false
    ) {
        self.config = config
        self.state = state
        self.now = now
        self.synthesizesPingAttributes = synthesizesPingAttributes
        self.reschedulesUntilSettled = reschedulesUntilSettled
    }

    public var scheduler: Scheduler { Scheduler(config: self.config) }

    /// Applies the event, then schedules and executes the resulting transition.
    public mutating func run(_ event: SimulationEvent?) -> Round {
        if let event { self.apply(event) }
        var transitions: [Transition] = []
        repeat {
            let transition = self.scheduler.schedule(state: self.state, now: self.now)
            let attributesBefore = self.state.nodes.mapValues(\.attributes)
            self.execute(transition)
            transitions.append(transition)
            let changedRoles = transition.actions.contains { $0.action != .monitor }
            if self.state.nodes.mapValues(\.attributes) == attributesBefore, !(self.reschedulesUntilSettled && changedRoles) { break }
        } while transitions.count < Self.maximumTransitionsPerRound
        return Round(event: event, transitions: transitions)
    }

    public mutating func apply(_ event: SimulationEvent) {
        switch event {
        case .nodeDown(let node):
            self.state.nodes[node, default: NodeState()].status = .offline
            // Transient attributes die with the node, as in Pacemaker.
            self.state.nodes[node]?.attributes = self.config.node(named: node)?.attributes ?? [:]
            for resource in self.state.resources.keys {
                self.state.update(resource, on: node) { $0.role = .stopped }
            }
        case .nodeUp(let node):
            self.state.nodes[node, default: NodeState()].status = .online
        case .setAttribute(let node, let name, let value):
            self.state.nodes[node, default: NodeState()].attributes[name] = value
        case .operationFailed(let resource, let node, let action):
            let targets = self.config.group(named: resource)?.members ?? [resource]
            for id in targets {
                self.state.update(id, on: node) { entry in
                    entry.failCount += 1
                    entry.lastFailure = self.now
                    entry.role = .failed
                    entry.lastOperations.append(OperationRecord(action: action, exitCode: 1, at: self.now))
                }
            }
        case .migrate(let node, let to, let lifetime):
            let expires = lifetime.map { self.now + $0 }
            self.state.marks.migrate(node: node, to: to, expires: expires)
        case .unmigrate(let node):
            self.state.marks.unmigrate(node: node)
        case .cleanup(let resource, let node):
            for (id, perNode) in self.state.resources where resource == nil || id == resource
                || self.config.group(named: resource!)?.members.contains(id) == true
            {
                for name in perNode.keys where node == nil || name == node {
                    self.state.update(id, on: name) { entry in
                        entry.failCount = 0
                        entry.lastFailure = nil
                    }
                }
            }
        case .standby(let node):
            self.state.nodes[node, default: NodeState()].standby = true
        case .unstandby(let node):
            self.state.nodes[node, default: NodeState()].standby = false
        case .forceStop(let resource):
            self.state.targetRoles[resource] = .stopped
        case .forceStart(let resource):
            self.state.targetRoles[resource] = .started
        case .quorum(let has):
            self.state.hasQuorum = has
        case .wait(let duration):
            self.now = self.now + duration
            self.state.marks.removeAll { !$0.isActive(at: self.now) }
        }
    }

    /// Every action succeeds. A ping resource that starts reports every host reachable, unless an
    /// event already set its attribute; one that stops removes it.
    public mutating func execute(_ transition: Transition) {
        var resources: [String: ResourceConfig] = [:]
        for resource in self.config.resources where resources[resource.id] == nil { resources[resource.id] = resource }
        for action in transition.actions {
            let id = action.resource
            if self.synthesizesPingAttributes, case .ping(let ping) = resources[id]?.kind {
                switch action.action {
                case .start where self.state.nodes[action.node]?.attributes[ping.attribute] == nil:
                    self.state.nodes[action.node]?.attributes[ping.attribute] = String(ping.hosts.count * ping.multiplier)
                case .stop:
                    self.state.nodes[action.node]?.attributes[ping.attribute] = nil
                default:
                    break
                }
            }
            // The history a live cluster records with each result (`ClusterLedger`): which node knows the resource.
            if action.action != .monitor {
                self.state.update(id, on: action.node) {
                    $0.lastOperations.append(OperationRecord(action: action.action, exitCode: 0, at: self.now))
                }
            }
            switch action.action {
            case .start, .migrateFrom:
                let promotable = resources[id]?.isPromotable ?? false
                self.state.update(id, on: action.node) { $0.role = promotable ? .unpromoted : .started }
            case .stop, .migrateTo:
                self.state.update(id, on: action.node) { $0.role = .stopped }
            case .promote:
                self.state.update(id, on: action.node) { $0.role = .promoted }
            case .demote:
                self.state.update(id, on: action.node) { $0.role = .unpromoted }
            case .monitor:
                break
            }
        }
        // crm_simulate also runs the probes Pacemaker schedules with every transition: each resource is found
        // stopped on each online node that had no history of it, and that history counts from the next
        // transition on (Pacemaker's promotion_score_applies).
        if self.reschedulesUntilSettled {
            for node in self.state.nodes.keys.sorted() where self.state.nodes[node]?.status == .online {
                for id in resources.keys.sorted() {
                    let record = self.state.state(of: id, on: node)
                    guard !record.role.isActive, record.lastOperations.isEmpty else { continue }
                    self.state.update(id, on: node) {
                        $0.lastOperations.append(OperationRecord(action: .monitor, exitCode: 7, at: self.now))
                    }
                }
            }
        }
    }
}
