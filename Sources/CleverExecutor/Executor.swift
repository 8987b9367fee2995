import CleverCluster
import CleverModel
import Foundation

/// The local resource manager: runs actions with timeouts, one at a time per resource, keeps recurring
/// monitors, and reports every result. Results go to `sink`, which the agent broadcasts.
public actor Executor {
    public typealias ResultSink = @Sendable (OperationResult) async -> Void
    public typealias WallClock = @Sendable () -> Timestamp

    public let node: String
    public private(set) var config: ClusterConfig
    let runDirectory: String
    let now: WallClock
    let sink: ResultSink
    let pingLoops: PingLoops
    /// Extra resource types (volume, vm) registered by the layers that own them.
    let extraAgents: @Sendable (ResourceConfig) -> (any ResourceAgent)?

    private var tails: [String: Task<Void, Never>] = [:]
    private var inProgress: Set<RequestID> = []
    private var monitors: [String: Task<Void, Never>] = [:]
    /// The role this host believes each local resource has, for monitors and reports.
    private var roles: [String: ResourceRole] = [:]

    public init(node: String, config: ClusterConfig, runDirectory: String, pingLoops: PingLoops,
                now: @escaping WallClock, extraAgents: @escaping @Sendable (ResourceConfig) -> (any ResourceAgent)? = { _ in nil },
                sink: @escaping ResultSink) {
        self.node = node
        self.config = config
        self.runDirectory = runDirectory
        self.pingLoops = pingLoops
        self.now = now
        self.extraAgents = extraAgents
        self.sink = sink
    }

    public func update(config: ClusterConfig) { self.config = config }

    func agent(for resource: ResourceConfig) -> any ResourceAgent {
        if let extra = self.extraAgents(resource) { return extra }
        switch resource.kind {
        case .process(let spec): return ProcessAgent(command: spec.command)
        case .ocf(let spec): return OCFAgent(spec: spec)
        case .lsb(let spec): return LSBAgent(script: spec.script)
        case .ip(let spec): return IPAgent(spec: spec)
        case .ping(let spec): return PingAgent(spec: spec, loops: self.pingLoops)
        case .volume, .vm: return UnavailableAgent(reason: "no \(resource.kind.typeName) support is installed in this agent")
        }
    }

    /// Runs a request from the coordinator. A duplicate of a request under way is ignored (a new
    /// coordinator may send it again); other actions on the same resource wait their turn.
    public func run(_ request: ActionRequest) {
        guard !self.inProgress.contains(request.id) else { return }
        guard let resource = self.config.resource(named: request.resource) else {
            let result = OperationResult(request: request.id, resource: request.resource, node: self.node, action: request.action,
                                         exitCode: OCFExit.notConfigured, at: self.now(), output: "unknown resource")
            Task { await self.sink(result) }
            return
        }
        self.inProgress.insert(request.id)
        let previous = self.tails[resource.id]
        let context = ActionContext(resource: resource, node: self.node, timeout: request.timeout,
                                    migrationTarget: request.migrationTarget, runDirectory: self.runDirectory,
                                    peerFenced: request.peerFenced ?? false, allowTwoPrimaries: request.allowTwoPrimaries ?? false)
        self.tails[resource.id] = Task {
            await previous?.value
            if [.stop, .migrateTo, .demote].contains(request.action) { self.cancelMonitor(resource.id) }
            let outcome = await self.perform(request.action, context)
            await self.finished(request, resource: resource, outcome: outcome)
        }
    }

    /// Direct actions (`clevervm start/stop`, self-fencing), outside any transition.
    public func runDirect(_ action: ResourceAction, resource id: String, timeout: Seconds? = nil, immediate: Bool = false) async -> AgentOutcome {
        guard let resource = self.config.resource(named: id) else { return AgentOutcome(OCFExit.notConfigured, "unknown resource \(id)") }
        let context = ActionContext(resource: resource, node: self.node, timeout: timeout ?? resource.operationTimeout,
                                    runDirectory: self.runDirectory, immediate: immediate)
        let previous = self.tails[id]
        let task = Task { () -> AgentOutcome in
            if immediate {
                // A fence does not queue behind an action in progress (a start, a migration): it kills now, and once
                // more after that action ends, in case the action started something meanwhile.
                self.cancelMonitor(id)
                _ = await self.perform(action, context)
            }
            await previous?.value
            if action == .stop { self.cancelMonitor(id) }
            return await self.perform(action, context)
        }
        self.tails[id] = Task { _ = await task.value }
        let outcome = await task.value
        if outcome.exitCode == OCFExit.success {
            self.roles[id] = action == .stop ? .stopped : (resource.isPromotable ? .unpromoted : .started)
        }
        return outcome
    }

    nonisolated func perform(_ action: ResourceAction, _ context: ActionContext) async -> AgentOutcome {
        let agent = await self.agent(for: context.resource)
        // A hung agent must not hold the resource forever: the action loses at its timeout.
        return await withTaskGroup(of: AgentOutcome?.self) { group in
            group.addTask { await agent.perform(action, context) }
            group.addTask {
                try? await Task.sleep(for: Duration(context.timeout) + .seconds(1))
                return Task.isCancelled ? nil : AgentOutcome(OCFExit.timedOut, "\(action.rawValue) timed out after \(context.timeout)")
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? AgentOutcome(OCFExit.generic, "no outcome")
        }
    }

    private func finished(_ request: ActionRequest, resource: ResourceConfig, outcome: AgentOutcome) async {
        self.inProgress.remove(request.id)
        let succeeded = outcome.exitCode == OCFExit.success || (request.action == .stop && outcome.exitCode == OCFExit.notRunning)
        if succeeded {
            switch request.action {
            case .start, .demote, .migrateFrom: self.roles[resource.id] = resource.isPromotable ? .unpromoted : .started
            case .promote: self.roles[resource.id] = .promoted
            case .stop, .migrateTo: self.roles[resource.id] = .stopped
            case .monitor: break
            }
            if [.start, .promote, .demote, .migrateFrom].contains(request.action) { self.startMonitor(resource) }
        } else {
            self.roles[resource.id] = .failed
        }
        await self.sink(OperationResult(
            request: request.id, resource: resource.id, node: self.node, action: request.action, exitCode: outcome.exitCode,
            migrationTarget: request.migrationTarget, at: self.now(), output: outcome.wireOutput))
    }

    // MARK: - Monitors

    private func cancelMonitor(_ id: String) {
        self.monitors.removeValue(forKey: id)?.cancel()
    }

    private func monitorContext(_ resource: ResourceConfig) -> ActionContext {
        ActionContext(resource: resource, node: self.node, timeout: resource.operationTimeout, runDirectory: self.runDirectory)
    }

    private func startMonitor(_ resource: ResourceConfig) {
        guard let interval = resource.monitorInterval, interval.value > 0 else { return }
        self.cancelMonitor(resource.id)
        let context = self.monitorContext(resource)
        self.monitors[resource.id] = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: Duration(interval))
                guard !Task.isCancelled else { return }
                let outcome = await self.perform(.monitor, context)
                guard !Task.isCancelled else { return }
                if outcome.exitCode != OCFExit.success, outcome.exitCode != OCFExit.runningPromoted {
                    await self.monitorFailed(resource.id, outcome: outcome)
                    return
                }
            }
        }
    }

    /// Runs the monitor of a monitored resource now (something saw it die: a volume's event stream ended), so its
    /// failure is handled at once instead of at the next interval.
    public func monitorNow(_ id: String) async {
        guard self.monitors[id] != nil, let resource = self.config.resource(named: id) else { return }
        let context = self.monitorContext(resource)
        let outcome = await self.perform(.monitor, context)
        // A stop (or another failure report) may have come first; then there is nothing left to report.
        guard self.monitors[id] != nil, outcome.exitCode != OCFExit.success, outcome.exitCode != OCFExit.runningPromoted else { return }
        self.cancelMonitor(id)
        await self.monitorFailed(id, outcome: outcome)
    }

    private func monitorFailed(_ id: String, outcome: AgentOutcome) async {
        self.monitors[id] = nil
        self.roles[id] = .failed
        await self.sink(OperationResult(request: nil, resource: id, node: self.node, action: .monitor, exitCode: outcome.exitCode,
                                        at: self.now(), output: outcome.output ?? "not running"))
    }

    // MARK: - Probing and self-fencing

    /// Asks every configured resource whether it runs here, so a restarted agent finds what still
    /// runs (and re-attaches its monitors) instead of starting a second copy.
    public func probe() async -> [String: ResourceNodeState] {
        var report: [String: ResourceNodeState] = [:]
        for resource in self.config.resources {
            let context = ActionContext(resource: resource, node: self.node, timeout: Seconds(10), runDirectory: self.runDirectory)
            let outcome = await self.perform(.monitor, context)
            let role: ResourceRole
            switch outcome.exitCode {
            case OCFExit.success: role = self.roles[resource.id] == .promoted ? .promoted : (resource.isPromotable ? .unpromoted : .started)
            case OCFExit.runningPromoted: role = .promoted
            case OCFExit.notRunning, OCFExit.notInstalled, OCFExit.notConfigured, OCFExit.unimplemented: role = .stopped
            default: role = .failed
            }
            self.roles[resource.id] = role
            if role.isActive, role != .failed, self.monitors[resource.id] == nil { self.startMonitor(resource) }
            report[resource.id] = ResourceNodeState(role: role)
        }
        return report
    }

    public func localRoles() -> [String: ResourceRole] { self.roles }

    /// The target side of a live migration: get ready to receive, without claiming the resource runs
    /// here (it does only once the source's `migrate_to` succeeded; then `adopt`).
    public func prepareIncoming(_ request: ActionRequest) async -> AgentOutcome {
        guard let resource = self.config.resource(named: request.resource) else {
            return AgentOutcome(OCFExit.notConfigured, "unknown resource \(request.resource)")
        }
        let context = ActionContext(resource: resource, node: self.node, timeout: request.timeout,
                                    migrationTarget: request.migrationTarget, runDirectory: self.runDirectory)
        return await self.perform(.migrateFrom, context)
    }

    /// A resource that arrived by live migration runs here now: track it and monitor it.
    public func adopt(_ id: String) {
        guard let resource = self.config.resource(named: id) else { return }
        self.roles[id] = .started
        self.startMonitor(resource)
    }

    /// Stops everything here, VMs and dependents first (reverse config order), within the self-fence time.
    /// Stops every local resource, VMs first (then the volumes under them are no longer written). `immediate`:
    /// as a pulled plug, for self-fencing (see `ActionContext.immediate`).
    public func stopAll(immediate: Bool = false) async -> [String: AgentOutcome] {
        var outcomes: [String: AgentOutcome] = [:]
        let reversed = Array(self.config.resources.reversed())
        let isVM: (ResourceConfig) -> Bool = { if case .vm = $0.kind { true } else { false } }
        let ordered = reversed.filter(isVM) + reversed.filter { !isVM($0) }
        for resource in ordered where self.roles[resource.id]?.isActive ?? true {
            if resource.isPromotable, self.roles[resource.id] == .promoted, !immediate {
                _ = await self.runDirect(.demote, resource: resource.id)
            }
            outcomes[resource.id] = await self.runDirect(.stop, resource: resource.id, immediate: immediate)
        }
        return outcomes
    }
}

struct UnavailableAgent: ResourceAgent {
    let reason: String
    func perform(_ action: ResourceAction, _ context: ActionContext) async -> AgentOutcome {
        switch action {
        case .stop: .success
        case .monitor: .notRunning
        default: AgentOutcome(OCFExit.notInstalled, self.reason)
        }
    }
}
