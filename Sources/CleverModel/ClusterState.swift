/// What the cluster knows now: nodes, where each resource runs and in which role, failures, and the
/// operator's intents. Built by the agent from replicated messages, or read from a file for simulation.
public struct ClusterState: Hashable, Sendable, Codable {
    public var nodes: [String: NodeState]
    /// Resource id (clone instances share the clone's id) -> node -> state on that node.
    public var resources: [String: [String: ResourceNodeState]]
    public var marks: [PlacementMark]
    /// target-role set by forcestart/forcestop; overrides the config's meta.
    public var targetRoles: [String: ResourceMeta.TargetRole]
    public var hasQuorum: Bool
    /// Volume replicas that missed writes (replication fencing): never promoted.
    public var outdatedDisks: [DiskMark]

    public init(
        nodes: [String: NodeState] = [:],
        resources: [String: [String: ResourceNodeState]] = [:],
        marks: [PlacementMark] = [],
        targetRoles: [String: ResourceMeta.TargetRole] = [:],
        hasQuorum: Bool = true,
        outdatedDisks: [DiskMark] = []
    ) {
        self.nodes = nodes
        self.resources = resources
        self.marks = marks
        self.targetRoles = targetRoles
        self.hasQuorum = hasQuorum
        self.outdatedDisks = outdatedDisks
    }

    enum CodingKeys: String, CodingKey { case nodes, resources, marks, targetRoles, hasQuorum, outdatedDisks }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.nodes = try container.decode([String: NodeState].self, forKey: .nodes)
        self.resources = try container.decode([String: [String: ResourceNodeState]].self, forKey: .resources)
        self.marks = try container.decode([PlacementMark].self, forKey: .marks)
        self.targetRoles = try container.decode([String: ResourceMeta.TargetRole].self, forKey: .targetRoles)
        self.hasQuorum = try container.decode(Bool.self, forKey: .hasQuorum)
        self.outdatedDisks = try container.decodeIfPresent([DiskMark].self, forKey: .outdatedDisks) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.nodes, forKey: .nodes)
        try container.encode(self.resources, forKey: .resources)
        try container.encode(self.marks, forKey: .marks)
        try container.encode(self.targetRoles, forKey: .targetRoles)
        try container.encode(self.hasQuorum, forKey: .hasQuorum)
        if !self.outdatedDisks.isEmpty { try container.encode(self.outdatedDisks, forKey: .outdatedDisks) }
    }

    /// Every configured node online, nothing running: a cluster that just formed.
    public static func fresh(for config: ClusterConfig) -> ClusterState {
        var state = ClusterState()
        for node in config.nodes {
            state.nodes[node.name] = NodeState(status: .online, attributes: node.attributes)
        }
        return state
    }

    public func state(of resource: String, on node: String) -> ResourceNodeState {
        self.resources[resource]?[node] ?? ResourceNodeState()
    }

    public mutating func update(_ resource: String, on node: String, _ change: (inout ResourceNodeState) -> Void) {
        var current = self.state(of: resource, on: node)
        change(&current)
        self.resources[resource, default: [:]][node] = current
    }

    /// Nodes where the resource is active (started, promoted or unpromoted), sorted by name.
    public func activeNodes(of resource: String) -> [String] {
        (self.resources[resource] ?? [:]).filter { $0.value.role.isActive }.map(\.key).sorted()
    }

    /// Node attributes merged with the node's name, as rules see them (`#uname` as in Pacemaker).
    public func ruleAttributes(of node: String) -> [String: String] {
        var attributes = self.nodes[node]?.attributes ?? [:]
        attributes["#uname"] = node
        return attributes
    }
}

public struct NodeState: Hashable, Sendable, Codable {
    public enum Status: String, Hashable, Sendable, Codable, CaseIterable {
        /// A member of the cluster partition.
        case online
        /// Not a member: powered off, crashed or cut off.
        case offline
    }

    public var status: Status
    /// Operator put the node in standby: it runs nothing.
    public var standby: Bool
    /// Online in Corosync, but its agent is gone (crashed, restarting): what runs there runs on, nothing can be
    /// started, stopped or moved there until the agent is back, and nothing new is placed there while another
    /// host can take it.
    public var agentDown: Bool
    /// Transient and static attributes (`pingd`, `master-RSC`, user attributes).
    public var attributes: [String: String]

    public init(status: Status = .online, standby: Bool = false, agentDown: Bool = false, attributes: [String: String] = [:]) {
        self.status = status
        self.standby = standby
        self.agentDown = agentDown
        self.attributes = attributes
    }

    enum CodingKeys: String, CodingKey { case status, standby, agentDown, attributes }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.status = try container.decode(Status.self, forKey: .status)
        self.standby = try container.decode(Bool.self, forKey: .standby)
        self.agentDown = try container.decodeIfPresent(Bool.self, forKey: .agentDown) ?? false
        self.attributes = try container.decode([String: String].self, forKey: .attributes)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.status, forKey: .status)
        try container.encode(self.standby, forKey: .standby)
        if self.agentDown { try container.encode(true, forKey: .agentDown) }
        try container.encode(self.attributes, forKey: .attributes)
    }
}

/// Where a resource is on one node, in Pacemaker's roles.
public enum ResourceRole: String, Hashable, Sendable, Codable, CaseIterable {
    case stopped = "Stopped"
    case started = "Started"
    case promoted = "Promoted"
    case unpromoted = "Unpromoted"
    /// An operation failed and left the resource in an unknown, possibly running, state: it must be
    /// stopped before it can run anywhere else.
    case failed = "Failed"
    /// Not probed yet.
    case unknown = "Unknown"

    /// May be running here: what must be stopped before the resource runs elsewhere, what self-fencing stops, what
    /// survivors wait for. A failed resource counts (its state is unknown).
    public var isActive: Bool {
        switch self {
        case .started, .promoted, .unpromoted, .failed: true
        case .stopped, .unknown: false
        }
    }

    /// Running in a state an action put it in (started, promoted, unpromoted): where stickiness holds it. A failed
    /// resource is active (it may run) but not running cleanly.
    public var isRunningCleanly: Bool {
        switch self {
        case .started, .promoted, .unpromoted: true
        case .stopped, .unknown, .failed: false
        }
    }
}

public struct ResourceNodeState: Hashable, Sendable, Codable {
    public var role: ResourceRole
    public var failCount: Int
    public var lastFailure: Timestamp?
    public var lastOperations: [OperationRecord]

    /// The last operation was a stop that failed: what runs there is in an unknown state. Without fencing it is
    /// left alone (Pacemaker's on-fail=block) until an operator runs `cleanup`; retrying would loop.
    public var stopFailed: Bool {
        guard let last = self.lastOperations.last, last.action == .stop else { return false }
        return last.exitCode != 0 && last.exitCode != 7
    }

    public init(role: ResourceRole = .stopped, failCount: Int = 0, lastFailure: Timestamp? = nil, lastOperations: [OperationRecord] = []) {
        self.role = role
        self.failCount = failCount
        self.lastFailure = lastFailure
        self.lastOperations = lastOperations
    }
}

public struct OperationRecord: Hashable, Sendable, Codable {
    public var action: ResourceAction
    /// OCF exit code: 0 success, 7 not running, 8 running promoted, other: failure.
    public var exitCode: Int
    public var at: Timestamp

    public init(action: ResourceAction, exitCode: Int, at: Timestamp) {
        self.action = action
        self.exitCode = exitCode
        self.at = at
    }
}

/// An operator's placement intent, as Pacemaker's `cli-ban-*` / `cli-prefer-*` constraints, but
/// with the reason kept and an optional expiry so marks do not stay forever by accident.
public struct PlacementMark: Hashable, Sendable, Codable {
    public enum Kind: String, Hashable, Sendable, Codable { case ban, prefer }

    public var kind: Kind
    /// nil: every resource (a `migrate` of a whole host marks it unfit).
    public var resource: String?
    public var node: String
    public var expires: Timestamp?
    public var createdBy: String

    public init(kind: Kind, resource: String?, node: String, expires: Timestamp? = nil, createdBy: String = "operator") {
        self.kind = kind
        self.resource = resource
        self.node = node
        self.expires = expires
        self.createdBy = createdBy
    }

    public func isActive(at now: Timestamp) -> Bool {
        guard let expires else { return true }
        return now < expires
    }

    /// Pacemaker's name for the equivalent constraint.
    public var pacemakerID: String {
        switch self.kind {
        case .ban: "cli-ban-\(self.resource ?? "*")-on-\(self.node)"
        case .prefer: "cli-prefer-\(self.resource ?? "*")"
        }
    }
}

extension PlacementMark {
    /// The `createdBy` of the marks `migrate` writes: the ones `unmigrate` removes.
    public static let madeByMigrate = "migrate"
    public var isMadeByMigrate: Bool { self.createdBy == Self.madeByMigrate }
}

extension [PlacementMark] {
    /// `migrate NODE [--to TO]`: NODE is unfit (and TO preferred) until `expires`; replaces an earlier migrate of NODE.
    /// The one definition the ledger and the simulator apply.
    public mutating func migrate(node: String, to: String?, expires: Timestamp?) {
        self.removeAll { $0.isMadeByMigrate && $0.node == node }
        self.append(PlacementMark(kind: .ban, resource: nil, node: node, expires: expires, createdBy: PlacementMark.madeByMigrate))
        if let to {
            self.append(PlacementMark(kind: .prefer, resource: nil, node: to, expires: expires, createdBy: PlacementMark.madeByMigrate))
        }
    }

    /// `unmigrate [NODE]`: removes migrate's marks on NODE (every node when nil), and every preference it set.
    public mutating func unmigrate(node: String?) {
        self.removeAll { $0.isMadeByMigrate && (node == nil || $0.node == node || $0.kind == .prefer) }
    }
}

/// One resource on one node: the key of per-node bookkeeping (in-flight actions), instead of a `"res@node"` string.
public struct ResourceOnNode: Hashable, Sendable, CustomStringConvertible {
    public var resource: String
    public var node: String

    public init(_ resource: String, on node: String) {
        self.resource = resource
        self.node = node
    }

    public var description: String { "\(self.resource)@\(self.node)" }
}
