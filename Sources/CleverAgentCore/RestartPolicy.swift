import CleverModel

/// Why an agent instance ended, and whether the daemon starts a new one.
public enum AgentStop: Error, Hashable, Sendable, CustomStringConvertible {
    /// Corosync went away under a running agent (restart, crash): the host self-fenced; a new instance probes what
    /// runs and rejoins once Corosync is back.
    case corosyncConnectionLost
    /// Corosync is not running or not configured on this host.
    case corosyncUnavailable(String)
    /// This host's Corosync node id is not in the cluster config.
    case notInConfig(nodeID: UInt32, nodes: [String])
    /// Neither a persisted document nor a loadable config.
    case configUnloadable(String)
    /// The control socket cannot be served.
    case controlSocket(String)
    /// The process group or votequorum cannot be joined.
    case cannotJoin(String)
    /// The configured watchdog device cannot be opened or armed.
    case watchdogUnavailable(String)

    /// How long to wait before the next instance, or nil: the daemon exits with this error.
    public var restartDelay: Seconds? {
        switch self {
        case .corosyncConnectionLost: Seconds(2)
        case .corosyncUnavailable, .notInConfig, .configUnloadable, .controlSocket, .cannotJoin, .watchdogUnavailable: nil
        }
    }

    public var description: String {
        switch self {
        case .corosyncConnectionLost: "lost the connection to corosync"
        case .corosyncUnavailable(let reason): "corosync is not running on this host or not configured: \(reason)"
        case .notInConfig(let id, let nodes):
            "this host is corosync node \(id), which the cluster config does not list (nodes: \(nodes.joined(separator: ", ")))"
        case .configUnloadable(let reason): "cannot load the cluster config:\n\(reason)"
        case .controlSocket(let reason): "control socket: \(reason)"
        case .cannotJoin(let reason): "cannot join the cluster through corosync: \(reason)"
        case .watchdogUnavailable(let reason): "watchdog: \(reason)"
        }
    }
}
