import CleverCluster
import CleverControl
import CleverModel

/// What the agent's shell does for its core, in the order the core returns them.
public enum AgentDirective: Hashable, Sendable {
    /// Send this message to the group (one sender, in order).
    case broadcast(ClusterMessage)
    /// Ask the executor what runs here and send it (`AgentCore.announce`).
    case announceLocalResources
    /// Write the document to disk (temp file, fsync, rename), then give the executor its config; before anything
    /// that follows.
    case persist(ClusterDocument)
    /// Keep this node's attributes in the run directory, so a restarted agent announces them at once.
    case saveAttributes([String: String])
    /// Run an action the coordinator asked of this node (the executor queues it per resource).
    case runAction(ActionRequest)
    /// Get ready to receive a live migration; the outcome goes back through `onIncomingPrepared`.
    case prepareIncoming(ActionRequest)
    /// A resource arrived here by live migration: the executor tracks and monitors it.
    case adopt(resource: String)
    /// Stop every local resource at once, as a pulled plug; then `onSelfFenceDone`.
    case selfFence(reason: String)
    /// Run this departed node's fence agent (`action=off`); then `onFenceDone`.
    case fence(NodeConfig)
    /// Call `onTimer(timer)` at `deadline` on the core's clock.
    case schedule(AgentTimer, at: Timestamp)
    /// Forget a scheduled timer (its reason is gone).
    case cancel(AgentTimer)
    /// A live-migration prepare this node asked for is over (answered, target gone, or timed out).
    case finishPrepare(RequestID, PrepareOutcome)
    /// Answer a control-socket call.
    case answer(ControlCall, ControlResponse)
    /// Run an operator's direct action on this host; then `onDirectDone`.
    case runDirect(ControlCall, action: ResourceAction, resource: String)
    /// A log line (already in the event history).
    case log(AgentLogEntry)
    /// Resolve a split brain of a local volume for another host (and wait for the resync); then `onVolumeResolveDone`.
    case resolveVolume(VolumeResolveRequest)
    /// Replication fencing: give a local volume this command; then `onVolumeCommandDone`.
    case volumeCommand(volume: String, VolumeCommand)
}

/// A deadline the core asked the shell to keep.
public enum AgentTimer: Hashable, Sendable {
    /// The coordinator's own wake-up: debounce, the survivors' self-fence wait, action deadlines.
    case coordinatorWakeUp(at: Timestamp)
    /// An operator request sent to the group gets no answer (`AgentCore.requestPatience`).
    case requestExpiry(RequestID)
    /// A live-migration target did not get ready within the action's timeout.
    case prepareExpiry(RequestID)
    /// Replication fencing looks at a volume again (a request unanswered or refused, a command that failed).
    case fencingRetry(volume: String)
}

/// One control-socket call awaiting its answer (numbered by the core).
public struct ControlCall: Hashable, Sendable, CustomStringConvertible {
    public var serial: Int
    public init(serial: Int) { self.serial = serial }
    public var description: String { "call #\(self.serial)" }
}

/// Log levels the agent uses (mapped onto swift-log's by the shell).
public enum AgentLogLevel: String, Hashable, Sendable, Comparable {
    case debug, info, notice, warning, error

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
    private var rank: Int {
        switch self {
        case .debug: 0
        case .info: 1
        case .notice: 2
        case .warning: 3
        case .error: 4
        }
    }
}

public struct AgentLogEntry: Hashable, Sendable {
    public var level: AgentLogLevel
    public var text: String
    /// Metadata: the resource and the operation the line is about, when it is about one.
    public var resource: String?
    public var op: ResourceAction?

    public init(level: AgentLogLevel, text: String, resource: String? = nil, op: ResourceAction? = nil) {
        self.level = level
        self.text = text
        self.resource = resource
        self.op = op
    }
}
