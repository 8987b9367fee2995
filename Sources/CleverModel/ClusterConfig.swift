/// The whole cluster as the operator describes it: one config file, the same on every host.
public struct ClusterConfig: Hashable, Sendable, Codable {
    public var name: String
    /// Raised by every accepted `config apply`; the highest epoch wins when members sync.
    public var epoch: Int
    public var properties: ClusterProperties
    public var nodes: [NodeConfig]
    public var quorum: QuorumConfig?
    public var resources: [ResourceConfig]
    public var groups: [GroupConfig]
    public var constraints: [Constraint]

    public init(
        name: String,
        epoch: Int = 1,
        properties: ClusterProperties = ClusterProperties(),
        nodes: [NodeConfig] = [],
        quorum: QuorumConfig? = nil,
        resources: [ResourceConfig] = [],
        groups: [GroupConfig] = [],
        constraints: [Constraint] = []
    ) {
        self.name = name
        self.epoch = epoch
        self.properties = properties
        self.nodes = nodes
        self.quorum = quorum
        self.resources = resources
        self.groups = groups
        self.constraints = constraints
    }

    public func resource(named id: String) -> ResourceConfig? { self.resources.first { $0.id == id } }
    public func group(named id: String) -> GroupConfig? { self.groups.first { $0.id == id } }
    public func node(named name: String) -> NodeConfig? { self.nodes.first { $0.name == name } }
    /// The two hosts that hold a replica of every volume: the first two nodes (a third is a tie-breaker or runs
    /// only what needs no replicated disk).
    public var replicaHosts: [NodeConfig] { Array(self.nodes.prefix(2)) }

    /// The group a resource belongs to, if any.
    public func group(containing resourceID: String) -> GroupConfig? {
        self.groups.first { $0.members.contains(resourceID) }
    }
}

/// Cluster-wide defaults, named as in Pacemaker where one exists.
public struct ClusterProperties: Hashable, Sendable, Codable {
    public var defaultStickiness: Score
    public var noQuorumPolicy: NoQuorumPolicy
    public var migrationThreshold: Int
    public var failureTimeout: Seconds?
    /// false: resources run only where a location constraint allows them (Pacemaker's opt-in cluster).
    public var symmetric: Bool
    /// A host that loses quorum stops its resources within this time; survivors of a host without a watchdog
    /// (`watchdog: none`) count this in their wait (`FencingTiming`).
    public var selfFenceTimeout: Seconds
    /// W: a host whose agent stops petting its watchdog is reset this long after the last pet. nil: 5 s
    /// (`FencingTiming.defaultWatchdogTimeout`); a node may override it.
    public var watchdogTimeout: Seconds?
    /// Corosync's totem token timeout (corosync.conf `totem.token`); nil: 1 s.
    public var token: Seconds?
    /// Corosync's consensus timeout; nil: 1.2 × token (Corosync's own rule).
    public var consensus: Seconds?

    public init(
        defaultStickiness: Score = 100,
        noQuorumPolicy: NoQuorumPolicy = .stop,
        migrationThreshold: Int = 3,
        failureTimeout: Seconds? = Seconds(600),
        symmetric: Bool = true,
        selfFenceTimeout: Seconds = Seconds(2),
        watchdogTimeout: Seconds? = nil,
        token: Seconds? = nil,
        consensus: Seconds? = nil
    ) {
        self.watchdogTimeout = watchdogTimeout
        self.token = token
        self.consensus = consensus
        self.defaultStickiness = defaultStickiness
        self.noQuorumPolicy = noQuorumPolicy
        self.migrationThreshold = migrationThreshold
        self.failureTimeout = failureTimeout
        self.symmetric = symmetric
        self.selfFenceTimeout = selfFenceTimeout
    }
}

public enum NoQuorumPolicy: String, Hashable, Sendable, Codable, CaseIterable {
    /// Stop every resource in a partition without quorum (Pacemaker's default).
    case stop
    /// Keep what runs, start nothing new.
    case freeze
    /// Behave as if quorate. Unsafe with shared or replicated data; for tests and single hosts.
    case ignore
}

public struct NodeConfig: Hashable, Sendable, Codable {
    public var name: String
    /// Corosync node id; 1-based, unique. The coordinator is the lowest id in the quorate partition.
    public var id: Int
    /// One or two link addresses (Corosync knet links, replication).
    public var addresses: [String]
    /// Static node attributes usable in location rules.
    public var attributes: [String: String]
    /// A fence agent (the standard `fence_*` interface: `key=value` lines on stdin) that powers this
    /// node off; nil: the cluster relies on the node fencing itself within the self-fence time.
    public var fenceAgent: String?
    public var fenceParameters: [String: String]
    /// The host's watchdog; nil: not configured, and the agent there runs no resources (it says so in status).
    public var watchdog: WatchdogSetting?
    /// This host's W, overriding the cluster's `watchdog-timeout` (e.g. a hardware watchdog with a fixed timeout).
    public var watchdogTimeout: Seconds?

    public init(name: String, id: Int, addresses: [String], attributes: [String: String] = [:], fenceAgent: String? = nil,
                fenceParameters: [String: String] = [:], watchdog: WatchdogSetting? = nil, watchdogTimeout: Seconds? = nil) {
        self.watchdog = watchdog
        self.watchdogTimeout = watchdogTimeout
        self.name = name
        self.id = id
        self.addresses = addresses
        self.attributes = attributes
        self.fenceAgent = fenceAgent
        self.fenceParameters = fenceParameters
    }
}

/// The two-host tie-breaker: corosync-qdevice talking to corosync-qnetd on a third host.
public struct QuorumConfig: Hashable, Sendable, Codable {
    public var qdeviceHost: String?
    public var algorithm: String
    /// Heuristics: hosts pinged by qdevice; the partition that still reaches them keeps quorum.
    public var pingTargets: [String]
    /// quorum.device.timeout: how long votequorum keeps a qdevice vote that is not renewed. nil: 3 s.
    public var timeout: Seconds?
    /// quorum.device.sync_timeout: the same during a membership change. nil: 5 s.
    public var syncTimeout: Seconds?

    public init(qdeviceHost: String?, algorithm: String = "ffsplit", pingTargets: [String] = [], timeout: Seconds? = nil,
                syncTimeout: Seconds? = nil) {
        self.timeout = timeout
        self.syncTimeout = syncTimeout
        self.qdeviceHost = qdeviceHost
        self.algorithm = algorithm
        self.pingTargets = pingTargets
    }
}

/// An ordered, colocated list of resources (Pacemaker's group): each member runs with the one before
/// it and starts after it.
public struct GroupConfig: Hashable, Sendable, Codable {
    public var id: String
    public var members: [String]
    public var meta: ResourceMeta

    public init(id: String, members: [String], meta: ResourceMeta = ResourceMeta()) {
        self.id = id
        self.members = members
        self.meta = meta
    }
}
