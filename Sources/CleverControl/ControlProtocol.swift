import CleverCluster
import CleverModel

/// The local control socket's protocol: one JSON request line, one JSON response line (their wire form, explicit
/// and versioned, is in ControlWire.swift). The socket is root-only (mode 0600 in a root-only directory): whoever
/// can write to it controls the cluster.
public enum ControlRequest: Hashable, Sendable {
    case status
    case intent(OperatorIntent)
    case applyConfig(ClusterConfig)
    case showConfig
    case events(limit: Int)
    /// The live config and state, for `explain` and `simulate` run by the CLI.
    case snapshot
    /// Act on a resource on this host only, behind the cluster's back.
    case direct(action: ResourceAction, resource: String)
    /// `volume resolve` from a host that holds no replica: the agent forwards it to a host that runs the volume.
    case resolveVolume(volume: String, discard: String, dryRun: Bool)
}

public enum ControlResponse: Hashable, Sendable {
    case status(StatusReport)
    case done(String)
    case config(ClusterConfig)
    case events([EventRecord])
    case snapshot(config: ClusterConfig, state: ClusterState, now: Timestamp)
    case failure(String)
}

public struct EventRecord: Hashable, Sendable, Codable {
    public var at: Timestamp
    public var node: String
    public var text: String

    public init(at: Timestamp, node: String, text: String) {
        self.at = at
        self.node = node
        self.text = text
    }
}

/// `clevervm status`: everything an operator needs on one screen.
public struct StatusReport: Hashable, Sendable, Codable {
    public struct Node: Hashable, Sendable, Codable {
        public var name: String
        public var id: Int
        public var online: Bool
        public var standby: Bool
        /// Marked unfit by `migrate` (until `unmigrate`, or until `expires`).
        public var unfit: Bool
        public var unfitUntil: Timestamp?
        public var attributes: [String: String]
        /// Corosync runs there but the agent does not (crashed, restarting): what runs there is left alone.
        public var agentDown: Bool?
        /// The node's watchdog as configured: a device path, "none", or nil when not configured (then it runs nothing).
        public var watchdog: String?

        public init(name: String, id: Int, online: Bool, standby: Bool, unfit: Bool, unfitUntil: Timestamp?, attributes: [String: String]) {
            self.name = name
            self.id = id
            self.online = online
            self.standby = standby
            self.unfit = unfit
            self.unfitUntil = unfitUntil
            self.attributes = attributes
        }
    }

    public struct Resource: Hashable, Sendable, Codable {
        public var id: String
        public var type: String
        /// Node -> role, for nodes where it is not stopped.
        public var roles: [String: String]
        /// Where the scheduler wants it, if that differs from where it is.
        public var target: [String: String]
        public var targetRole: String?
        public var failCounts: [String: Int]
        public var blocked: String?
        /// The node whose agent is down while this resource is active there: nothing moves it meanwhile.
        public var frozenBy: String?
        /// Nodes where its stop failed: left alone there (no retry) until `cleanup`.
        public var stopFailedOn: [String]?
        /// When it became active where it runs.
        public var since: Timestamp?
        /// A VM's last move between hosts.
        public var lastMove: MoveRecord?
        /// A volume's replication state on this host, in DRBD's words (`Connected Primary/Secondary UpToDate/UpToDate`).
        public var replication: String?
        /// A volume's replicas recorded Outdated by replication fencing: never promoted until they resynced.
        public var outdatedOn: [String]?

        public init(id: String, type: String, roles: [String: String], target: [String: String], targetRole: String?,
                    failCounts: [String: Int], blocked: String?, since: Timestamp? = nil, lastMove: MoveRecord? = nil,
                    replication: String? = nil) {
            self.since = since
            self.lastMove = lastMove
            self.replication = replication
            self.id = id
            self.type = type
            self.roles = roles
            self.target = target
            self.targetRole = targetRole
            self.failCounts = failCounts
            self.blocked = blocked
        }
    }

    public var cluster: String
    public var localNode: String
    public var coordinator: String?
    public var quorate: Bool
    public var configEpoch: Int
    public var nodes: [Node]
    public var resources: [Resource]
    public var marks: [PlacementMark]
    public var pendingActions: [String]
    public var now: Timestamp
    /// The group wire version this agent writes: the lowest every member speaks, so during a rolling upgrade it
    /// stays at the older release's until the last member is upgraded. nil from agents before it was reported.
    public var wireVersion: Int?
    /// Whether this host's qdevice votes (nil without a qdevice, or from agents before it was reported).
    public var tieBreaker: TieBreakerVote?

    public init(cluster: String, localNode: String, coordinator: String?, quorate: Bool, configEpoch: Int, nodes: [Node],
                resources: [Resource], marks: [PlacementMark], pendingActions: [String], now: Timestamp) {
        self.cluster = cluster
        self.localNode = localNode
        self.coordinator = coordinator
        self.quorate = quorate
        self.configEpoch = configEpoch
        self.nodes = nodes
        self.resources = resources
        self.marks = marks
        self.pendingActions = pendingActions
        self.now = now
    }
}
