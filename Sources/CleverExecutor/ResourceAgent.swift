import CleverCluster
import CleverModel

/// What an action needs to know beyond the resource's own config.
public struct ActionContext: Sendable {
    public var resource: ResourceConfig
    public var node: String
    public var timeout: Seconds
    public var migrationTarget: String?
    /// Where this host keeps per-resource runtime files (pid files, logs).
    public var runDirectory: String
    /// See `ActionRequest.peerFenced` and `.allowTwoPrimaries`.
    public var peerFenced: Bool
    public var allowTwoPrimaries: Bool
    /// A stop as a pulled plug (self-fencing): no hibernate, no ACPI power-down, the process killed at once. The
    /// partition that kept quorum starts the resource after the self-fence timeout; a graceful stop could
    /// still be running then (a hibernate writes the guest's RAM to a replicated volume whose peer is gone).
    public var immediate: Bool

    public init(resource: ResourceConfig, node: String, timeout: Seconds, migrationTarget: String? = nil, runDirectory: String,
                peerFenced: Bool = false, allowTwoPrimaries: Bool = false, immediate: Bool = false) {
        self.immediate = immediate
        self.resource = resource
        self.node = node
        self.timeout = timeout
        self.migrationTarget = migrationTarget
        self.runDirectory = runDirectory
        self.peerFenced = peerFenced
        self.allowTwoPrimaries = allowTwoPrimaries
    }
}

/// The result of one action, in OCF exit codes.
public struct AgentOutcome: Hashable, Sendable {
    public var exitCode: Int
    /// Text for the operator: an agent's output, or what went wrong.
    public var output: String?
    /// A VM action's report (the `vm` agent's actions).
    public var report: VMReport?

    public init(_ exitCode: Int, _ output: String? = nil, report: VMReport? = nil) {
        self.exitCode = exitCode
        self.output = output
        self.report = report
    }

    /// An outcome as the group's wire carries it (`OperationResult.output`, `migrationPrepared`): a report in its
    /// JSON form, else the text.
    public init(wire exitCode: Int, output: String?) {
        let report = VMReport.parse(output)
        self.init(exitCode, report == nil ? output : nil, report: report)
    }

    /// What goes on the group's wire in `output`.
    public var wireOutput: String? { self.report?.json ?? self.output }

    public static let success = AgentOutcome(OCFExit.success)
    public static let notRunning = AgentOutcome(OCFExit.notRunning)
}

/// One resource type's way of doing actions on this host. Stop of a stopped resource succeeds;
/// monitor answers 0 (running), 7 (not running), 8 (running promoted) or a failure.
public protocol ResourceAgent: Sendable {
    func perform(_ action: ResourceAction, _ context: ActionContext) async -> AgentOutcome
}

extension Duration {
    public init(_ seconds: Seconds) {
        self = .milliseconds(Int64(seconds.value * 1000))
    }
}
