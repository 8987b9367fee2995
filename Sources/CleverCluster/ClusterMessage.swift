import CleverModel
import Foundation

/// Everything agents say to each other over the Corosync CPG group, delivered to every member in
/// the same (agreed) order. Its wire form (explicit, versioned) is in ClusterWire.swift.
public enum ClusterMessage: Hashable, Sendable {
    /// After a membership change every member offers its document; the best offer wins (see `ClusterLedger`).
    case sync(ClusterDocument)
    /// An operator applied a new config; `config.epoch` must exceed the current one.
    case applyConfig(ClusterConfig, request: RequestID)
    /// An operator intent (migrate, forcestop, cleanup, …).
    case intent(OperatorIntent, request: RequestID)
    /// A node's own transient attribute (e.g. `pingd` from its ping resource).
    case attribute(name: String, value: String?)
    /// A node's whole local resource state, after it joins or re-joins.
    case resourceReport([String: ResourceNodeState])
    /// A node ran an action; the result updates the shared state.
    case operationResult(OperationResult)
    /// The coordinator asks a node to run an action.
    case actionRequest(ActionRequest)
    /// A live migration's source asks the target to get ready to receive (QEMU `-incoming`). Not a
    /// state change: the VM runs on the target only once the source's `migrate_to` succeeded.
    case prepareMigration(ActionRequest)
    /// The target's answer: its exit code and output (the incoming URI).
    case migrationPrepared(request: RequestID, exitCode: Int, output: String?)
    /// The coordinator's fence agent confirmed that this departed node is off.
    case fenced(node: String)
    /// An operator on a host without a replica asks the host that runs the volume to resolve its split brain.
    case resolveVolume(VolumeResolveRequest)
    /// That host's answer: whether the resolve (and the resync it started) finished, and what it said.
    case volumeResolved(request: RequestID, succeeded: Bool, text: String)
}

/// `clevervm volume resolve NAME --discard HOST` sent through the group (from a host that holds no replica).
public struct VolumeResolveRequest: Hashable, Sendable, Codable {
    public var id: RequestID
    public var volume: String
    public var discard: String
    public var dryRun: Bool

    public init(id: RequestID, volume: String, discard: String, dryRun: Bool) {
        self.id = id
        self.volume = volume
        self.discard = discard
        self.dryRun = dryRun
    }

    enum CodingKeys: String, CodingKey { case id, volume, discard, dryRun }
}

public struct RequestID: Hashable, Sendable, Codable, CustomStringConvertible {
    public var node: String
    public var serial: Int
    public init(node: String, serial: Int) {
        self.node = node
        self.serial = serial
    }
    public var description: String { "\(self.node)#\(self.serial)" }

    /// Wire keys, fixed: renaming a property must not change what goes between hosts.
    enum CodingKeys: String, CodingKey { case node, serial }
}

/// The node a `migrate` or `unmigrate` names: one by its cluster name, or the host whose agent takes the request (the
/// CLI and the web console do not know their host's cluster name). The agent resolves it before the intent goes to
/// the group; a group member resolves a leftover `thisHost` to the node that sent the request.
public enum NodeSelector: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    case thisHost
    case named(String)

    /// A node name as an operator typed it, where empty means this host (as the control protocol's first release
    /// sent "this host": `"node": ""`).
    public init(typed name: String) {
        self = name.isEmpty ? .thisHost : .named(name)
    }

    public init(stringLiteral name: String) { self = .named(name) }

    /// The name, with `local` for `thisHost`.
    public func name(thisHost local: String) -> String {
        switch self {
        case .thisHost: local
        case .named(let name): name
        }
    }

    /// The name when one is given.
    public var named: String? {
        if case .named(let name) = self { return name }
        return nil
    }

    public var description: String { self.named ?? "this host" }
}

public enum OperatorIntent: Hashable, Sendable, CustomStringConvertible {
    case migrate(node: NodeSelector, to: String?, expires: Timestamp?)
    /// `node` nil: every node's `migrate` marks go.
    case unmigrate(node: NodeSelector?)
    case forceStart(resource: String)
    case forceStop(resource: String)
    case cleanup(resource: String?, node: String?)
    case standby(node: String)
    case unstandby(node: String)
    /// Replication fencing: the disk of `volume` on `node` missed writes (the primary lost its link and goes on
    /// alone); recorded before the primary is told it may go on.
    case outdateDisk(volume: String, node: String)
    /// That disk resynced to UpToDate (or an operator accepts its data): the mark goes.
    case clearOutdated(volume: String, node: String)

    /// The same intent with `thisHost` replaced by `local`.
    public func resolving(thisHost local: String) -> OperatorIntent {
        switch self {
        case .migrate(.thisHost, let to, let expires): .migrate(node: .named(local), to: to, expires: expires)
        case .unmigrate(.thisHost?): .unmigrate(node: .named(local))
        default: self
        }
    }

    public var description: String {
        switch self {
        case .migrate(let node, let to, let expires):
            "migrate \(node)" + (to.map { " --to \($0)" } ?? "") + (expires.map { " (until \($0))" } ?? "")
        case .unmigrate(let node): "unmigrate" + (node.map { " \($0)" } ?? "")
        case .forceStart(let resource): "forcestart \(resource)"
        case .forceStop(let resource): "forcestop \(resource)"
        case .cleanup(let resource, let node): "cleanup" + (resource.map { " \($0)" } ?? "") + (node.map { " on \($0)" } ?? "")
        case .standby(let node): "standby \(node)"
        case .unstandby(let node): "unstandby \(node)"
        case .outdateDisk(let volume, let node): "outdate the disk of \(volume) on \(node)"
        case .clearOutdated(let volume, let node): "the disk of \(volume) on \(node) is current again"
        }
    }
}

public struct ActionRequest: Hashable, Sendable, Codable, CustomStringConvertible {
    public var id: RequestID
    public var resource: String
    public var node: String
    public var action: ResourceAction
    /// For a live migration: where the resource goes.
    public var migrationTarget: String?
    public var timeout: Seconds
    public var reason: String
    /// For a promote: every other node that could hold the data has left and waited out its
    /// self-fence time, so "the peer may be primary" no longer holds.
    public var peerFenced: Bool?
    /// For a promote: a VM using this volume migrates live, so both hosts are briefly primary.
    public var allowTwoPrimaries: Bool?

    public init(id: RequestID, resource: String, node: String, action: ResourceAction, migrationTarget: String? = nil,
                timeout: Seconds, reason: String, peerFenced: Bool? = nil, allowTwoPrimaries: Bool? = nil) {
        self.id = id
        self.resource = resource
        self.node = node
        self.action = action
        self.migrationTarget = migrationTarget
        self.timeout = timeout
        self.reason = reason
        self.peerFenced = peerFenced
        self.allowTwoPrimaries = allowTwoPrimaries
    }

    public var description: String { "\(self.action.rawValue) \(self.resource) on \(self.node)" }

    enum CodingKeys: String, CodingKey { case id, resource, node, action, migrationTarget, timeout, reason, peerFenced, allowTwoPrimaries }
}

public struct OperationResult: Hashable, Sendable, Codable, CustomStringConvertible {
    public var request: RequestID?
    public var resource: String
    public var node: String
    public var action: ResourceAction
    /// OCF exit code: 0 success, 7 not running, 8 running promoted; anything else is a failure.
    public var exitCode: Int
    public var migrationTarget: String?
    public var at: Timestamp
    public var output: String?

    public init(request: RequestID?, resource: String, node: String, action: ResourceAction, exitCode: Int,
                migrationTarget: String? = nil, at: Timestamp, output: String? = nil) {
        self.request = request
        self.resource = resource
        self.node = node
        self.action = action
        self.exitCode = exitCode
        self.migrationTarget = migrationTarget
        self.at = at
        self.output = output
    }

    public var succeeded: Bool { self.exitCode == OCFExit.success || (self.action == .stop && self.exitCode == OCFExit.notRunning) }

    public var description: String { "\(self.action.rawValue) \(self.resource) on \(self.node): exit \(self.exitCode)" }

    enum CodingKeys: String, CodingKey { case request, resource, node, action, exitCode, migrationTarget, at, output }
}

/// OCF resource agent exit codes, which every executor speaks.
public enum OCFExit {
    public static let success = 0
    public static let generic = 1
    public static let invalidArgument = 2
    public static let unimplemented = 3
    public static let insufficientPrivileges = 4
    public static let notInstalled = 5
    public static let notConfigured = 6
    public static let notRunning = 7
    public static let runningPromoted = 8
    public static let failedPromoted = 9
    /// Not OCF: CleverVM's code for an action killed at its timeout.
    public static let timedOut = 198
}

/// What every host keeps identical and on disk: the config and the operator's intents.
public struct ClusterDocument: Hashable, Sendable, Codable {
    public var config: ClusterConfig
    public var marks: [PlacementMark]
    public var targetRoles: [String: ResourceMeta.TargetRole]
    public var standby: [String]
    /// Raised by every accepted change; the highest generation wins when members sync.
    public var generation: Int
    /// The node whose copy this is, for the tie-break between equal generations (lowest id wins).
    public var origin: Int
    /// Volume replicas recorded Outdated by replication fencing (sorted): never promoted until resynced.
    public var outdatedDisks: [DiskMark]

    public init(config: ClusterConfig, marks: [PlacementMark] = [], targetRoles: [String: ResourceMeta.TargetRole] = [:],
                standby: [String] = [], generation: Int = 0, origin: Int = 0, outdatedDisks: [DiskMark] = []) {
        self.config = config
        self.marks = marks
        self.targetRoles = targetRoles
        self.standby = standby
        self.generation = generation
        self.origin = origin
        self.outdatedDisks = outdatedDisks
    }

    /// Wire keys, fixed. `outdatedDisks` is written only when not empty, so a document without marks has the
    /// shape older releases wrote (and read: they ignore the key).
    enum CodingKeys: String, CodingKey { case config, marks, targetRoles, standby, generation, origin, outdatedDisks }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.config = try container.decode(ClusterConfig.self, forKey: .config)
        self.marks = try container.decode([PlacementMark].self, forKey: .marks)
        self.targetRoles = try container.decode([String: ResourceMeta.TargetRole].self, forKey: .targetRoles)
        self.standby = try container.decode([String].self, forKey: .standby)
        self.generation = try container.decode(Int.self, forKey: .generation)
        self.origin = try container.decode(Int.self, forKey: .origin)
        self.outdatedDisks = try container.decodeIfPresent([DiskMark].self, forKey: .outdatedDisks) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.config, forKey: .config)
        try container.encode(self.marks, forKey: .marks)
        try container.encode(self.targetRoles, forKey: .targetRoles)
        try container.encode(self.standby, forKey: .standby)
        try container.encode(self.generation, forKey: .generation)
        try container.encode(self.origin, forKey: .origin)
        if !self.outdatedDisks.isEmpty { try container.encode(self.outdatedDisks, forKey: .outdatedDisks) }
    }

    /// Whether `other` wins over this copy: a higher generation, or the same from a lower node id.
    public func isBeaten(by other: ClusterDocument) -> Bool {
        (other.generation, -other.origin) > (self.generation, -self.origin)
    }
}
