import CleverCluster
import CleverConfig
import CleverControl
import CleverExecutor
import CleverModel
import CleverQEMU
import CleverSystem
import Corosync
import Foundation

/// The daemon every host runs: the shell around the pure ledger and coordinator. It feeds them
/// Corosync's views, messages and quorum in order, and performs their directives: broadcast,
/// persist, run actions, wake up, self-fence.
public actor Agent {
    public struct Options: Sendable {
        public var configPath: String
        public var stateDirectory: String
        public var runDirectory: String
        public var socketPath: String
        public var groupName: String

        public init(configPath: String = "/etc/clevervm/cluster.yaml", stateDirectory: String = "/var/lib/clevervm",
                    runDirectory: String = "/run/clevervm", socketPath: String = ControlSocket.defaultPath,
                    groupName: String = "clevervm") {
            self.configPath = configPath
            self.stateDirectory = stateDirectory
            self.runDirectory = runDirectory
            self.socketPath = socketPath
            self.groupName = groupName
        }
    }

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    let options: Options
    private var ledger: ClusterLedger
    private var coordinator: Coordinator
    private var executor: Executor!
    private var group: ProcessGroup?
    private var events: [EventRecord] = []
    private var waiting: [RequestID: CheckedContinuation<String?, Never>] = [:]
    private var preparing: [RequestID: CheckedContinuation<AgentOutcome, Never>] = [:]
    /// The host each pending prepare waits for: its answer never comes once its agent is gone.
    private var preparingOn: [RequestID: String] = [:]
    private let outbox: AsyncStream<[UInt8]>.Continuation
    private let outgoing: AsyncStream<[UInt8]>
    private var serial = 0
    private var probed = false
    private var scheduledWakeUps: Set<Timestamp> = []
    private var awaitingVerdictSince: Timestamp?
    /// This node's transient attributes as last reported, re-sent after every membership change
    /// (a node that was away forgot them).
    private var localAttributes: [String: String] = [:]
    /// watchdog (issue 11): the host's watchdog petting, shared by the agent instances of one process.
    let watchdog: WatchdogPetter?
    /// watchdog (issue 11): problems met before the agent could log (a damaged cluster.json), logged at start.
    private let startupProblems: [String]

    static func wallClock() -> Timestamp { Timestamp(seconds: Date().timeIntervalSince1970) }

    init(options: Options, document: ClusterDocument, localNode: String, watchdog: WatchdogPetter? = nil,
         startupProblems: [String] = []) {
        self.watchdog = watchdog  // watchdog (issue 11)
        self.startupProblems = startupProblems
        self.options = options
        self.ledger = ClusterLedger(localNode: localNode, document: document)
        self.coordinator = Coordinator(localNode: localNode)
        (self.outgoing, self.outbox) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .unbounded)
    }

    var documentPath: String { "\(self.options.stateDirectory)/cluster.json" }

    /// Starts the agent and runs until Corosync goes away.
    public static func run(options: Options) async throws {
        for directory in [options.stateDirectory, options.runDirectory] {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            chmod(directory, 0o700)
        }
        var startupProblems: [String] = []  // watchdog (issue 11): a damaged cluster.json is set aside, not fatal
        var document = try Self.loadDocument(options, problems: &startupProblems)
        let map: ClusterMap
        let localID: UInt32
        do {
            map = try ClusterMap()
            localID = try map.localNodeID()
        } catch {
            throw StartError(description: "corosync is not running on this host or not configured: \(error)")
        }
        guard let node = document.config.nodes.first(where: { $0.id == Int(localID) }) else {
            throw StartError(description: "this host is corosync node \(localID), which the cluster config does not list (nodes: "
                             + document.config.nodes.map { "\($0.name)=\($0.id)" }.joined(separator: ", ") + ")")
        }
        // watchdog (issue 11): armed for the whole process; stopped (disarmed only if nothing runs) when it ends.
        let watchdog = try Self.openWatchdog(node: node, config: document.config)
        defer { watchdog?.stop() }
        // A lost corosync connection ends one agent instance; the next one probes what runs and rejoins.
        while true {
            let agent = Agent(options: options, document: document, localNode: node.name, watchdog: watchdog,
                              startupProblems: startupProblems)
            startupProblems = []
            do {
                try await agent.start()
                return
            } catch let error as StartError where error.description == "lost the connection to corosync" {
                try await Self.sleepBeating(watchdog, seconds: 2)  // watchdog (issue 11): the loop is alive meanwhile
                // The next instance starts from what the last one persisted.
                document = try Self.loadDocument(options, problems: &startupProblems)
            }
        }
    }

    static func loadDocument(_ options: Options, problems: inout [String]) throws -> ClusterDocument {
        let path = "\(options.stateDirectory)/cluster.json"
        if let data = FileManager.default.contents(atPath: path) {
            do {
                return try JSONDecoder().decode(ClusterDocument.self, from: data)
            } catch {
                problems.append(Self.setAsideDamagedDocument(at: path, error: error, configPath: options.configPath))  // issue 11
            }
        }
        do {
            let config = try ConfigFile.load(path: options.configPath)
            return ClusterDocument(config: config, origin: config.nodes.map(\.id).min() ?? 0)
        } catch {
            throw StartError(description: "cannot load the cluster config:\n\(error)")
        }
    }

    func start() async throws {
        let heartbeat = self.startWatchdogHeartbeat()  // watchdog (issue 11)
        defer { heartbeat?.cancel() }
        let node = self.ledger.localNode
        let pingLoops = PingLoops { name, value in await self.sendAttribute(name, value) }
        let config = self.ledger.config
        let stateDirectory = self.options.stateDirectory
        let runDirectory = self.options.runDirectory
        let binaries = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                           ?? CommandLine.arguments[0]).deletingLastPathComponent().path
        let report: VolumeAgent.Report = { name, value in await self.sendAttribute(name, value) }
        let volumeWatchers = VolumeScoreWatchers(report: report) { resource in await self.executor.monitorNow(resource) }
        let vmAgent = VMAgent(
            settings: VMAgent.Settings(
                accelerator: .tcg, volumeSocket: { "\(runDirectory)/\($0).nbd" }, stateDirectory: "\(stateDirectory)/vm-state",
                migrationAddress: config.node(named: node)?.addresses.first ?? "127.0.0.1"),
            prepareTarget: { context in await self.prepareRemote(context) })
        self.executor = Executor(
            node: node, config: config, runDirectory: runDirectory, pingLoops: pingLoops, now: Agent.wallClock,
            extraAgents: { resource in
                switch resource.kind {
                case .volume(let spec):
                    VolumeAgent(spec: spec, config: config, binary: "\(binaries)/clevervm-volume", stateDirectory: stateDirectory,
                                report: report, watchers: volumeWatchers)
                case .vm: vmAgent
                default: nil
                }
            },
            sink: { result in await self.localResult(result) })

        // Find what still runs here before anyone can ask us to start it again.
        self.restoreAttributes()
        for problem in self.startupProblems { self.log("error: \(problem)") }  // issue 11
        let found = await self.executor.probe()
        self.probed = true
        self.watchdogNote(found.mapValues(\.role))  // watchdog (issue 11)
        self.log("agent on \(node) started; running here: \(found.filter { $0.value.role.isActive }.keys.sorted().joined(separator: ", "))")

        let handler: @Sendable (ControlRequest) async -> ControlResponse = { request in await self.handle(request) }
        do {
            try ControlSocket.serve(path: self.options.socketPath, handler: handler)
        } catch {
            throw StartError(description: "control socket: \(error)")
        }

        let quorum: VoteQuorum
        let group: ProcessGroup
        do {
            quorum = try VoteQuorum()
            group = try ProcessGroup(joining: self.options.groupName)
        } catch {
            throw StartError(description: "cannot join the cluster through corosync: \(error)")
        }
        self.group = group
        let outgoing = self.outgoing
        let sender = Task { await self.sendQueued(outgoing) }
        defer { sender.cancel() }

        let quorumTask = Task {
            for await status in quorum.updates { self.quorumChanged(status) }
        }
        for await event in group.events {
            switch event {
            case .view(let view):
                self.viewChanged(view.members.map { Int($0.nodeID) })
            case .message(let message):
                self.delivered(message.payload, from: message.sender.nodeID)
            case .ring:
                break
            case .closed(let failure):
                // Without corosync this host cannot know whether it still has quorum, and the others
                // already count it as gone: stop everything here, as on a quorum loss.
                self.log("corosync connection closed: \(failure.map { "\($0)" } ?? "shut down"); self-fencing")
                quorumTask.cancel()
                quorum.close()
                await self.selfFence()
                throw StartError(description: "lost the connection to corosync")
            }
        }
    }

    // MARK: - Inputs

    func viewChanged(_ members: [Int]) {
        // One agent per node counts; a second agent process on the same node is the same member.
        self.apply(self.ledger.onView(memberIDs: Array(Set(members)), now: Agent.wallClock(), monotonic: WatchdogPetter.monotonicNow()))
        self.failPreparesOnDeparted()
        self.coordinatorChanged()
    }

    /// Between a membership change and votequorum's verdict the old verdict still stands: the
    /// coordinator pauses rather than act on it; self-fencing waits for the verdict itself, so a
    /// survivor does not stop its VM whenever a peer joins or dies.
    /// votequorum does not always send a verdict after a node-list change that leaves quorum as it
    /// was (a survivor kept waiting 5 s), so the pause is bounded. 1.5 s covers the verdicts measured
    /// here (0.5–1.3 s after the ring change); a host that loses the tie-break also gets no further than
    /// the self-fence wait, which counts from the same membership change.
    static let verdictPatience = 1.5

    func quorumChanged(_ status: VoteQuorum.Status) {
        if status.ring != nil {
            self.apply(self.ledger.onRing(memberIDs: status.members, now: Agent.wallClock(), monotonic: WatchdogPetter.monotonicNow()))
        }
        if status.awaitingVerdict {
            self.awaitingVerdictSince = self.awaitingVerdictSince ?? Agent.wallClock()
        } else {
            self.awaitingVerdictSince = nil
            self.apply(self.ledger.onQuorum(status.quorate))
            self.watchdog?.quorumChanged(self.ledger.quorate)  // watchdog (issue 11)
        }
        self.coordinatorChanged()
    }

    var isAwaitingVerdict: Bool {
        guard let since = self.awaitingVerdictSince else { return false }
        return Agent.wallClock().seconds - since.seconds < Self.verdictPatience
    }

    func delivered(_ payload: [UInt8], from nodeID: UInt32) {
        let envelope: Envelope
        do {
            envelope = try Envelope.decode(payload)
        } catch {
            self.log("refused a message from node \(nodeID): \(error)")
            return
        }
        guard self.ledger.config.node(named: envelope.from)?.id == Int(nodeID) else {
            self.log("refused a message claiming to be from \(envelope.from) but sent by node \(nodeID)")
            return
        }
        let now = Agent.wallClock()
        self.apply(self.ledger.onDeliver(envelope, now: now))
        if case .operationResult(let result) = envelope.message, result.action == .migrateTo, result.succeeded,
            result.migrationTarget == self.ledger.localNode
        {
            let executor = self.executor!
            Task { await executor.adopt(result.resource) }
        }
        if case .operationResult(let result) = envelope.message {
            self.perform(self.coordinator.onResult(result, now: now))
        } else {
            self.coordinatorChanged()
        }
    }

    func localResult(_ result: OperationResult) {
        if self.watchdog != nil { Task { self.watchdogNote(await self.executor.localRoles()) } }  // watchdog (issue 11)
        self.broadcast(.operationResult(result))
    }

    /// The source side of a live migration asks the target host (through the group) to get ready.
    func prepareRemote(_ context: ActionContext) async -> AgentOutcome {
        guard let target = context.migrationTarget else { return AgentOutcome(OCFExit.invalidArgument, "no migration target") }
        self.serial += 1
        let id = RequestID(node: self.ledger.localNode, serial: self.serial)
        let request = ActionRequest(id: id, resource: context.resource.id, node: target, action: .migrateFrom,
                                    migrationTarget: target, timeout: context.timeout, reason: "live migration")
        return await withCheckedContinuation { continuation in
            self.preparing[id] = continuation
            self.preparingOn[id] = target
            self.broadcast(.prepareMigration(request))
            Task {
                try? await Task.sleep(for: Duration(context.timeout))
                self.endPrepare(id, AgentOutcome(OCFExit.timedOut, "\(target) did not get ready in time"))
            }
        }
    }

    private func endPrepare(_ id: RequestID, _ outcome: AgentOutcome) {
        self.preparingOn[id] = nil
        self.preparing.removeValue(forKey: id)?.resume(returning: outcome)
    }

    /// A target whose agent left will not answer: the move fails now (and is rescheduled), instead of holding the
    /// VM's queue until the action's timeout.
    private func failPreparesOnDeparted() {
        let members = Set(self.ledger.members)
        for (id, target) in self.preparingOn where !members.contains(target) {
            self.endPrepare(id, AgentOutcome(OCFExit.generic, "the agent on \(target) left before it was ready"))
        }
    }

    func sendAttribute(_ name: String, _ value: String?) {
        self.localAttributes[name] = value
        // Kept in the run directory (gone with a reboot): a restarted agent announces them again at once, so its
        // host does not look unfit (no pingd) to the coordinator until the first ping.
        if let data = try? JSONEncoder().encode(self.localAttributes) { try? AtomicFile.write(data, to: self.attributesPath) }
        self.broadcast(.attribute(name: name, value: value))
    }

    var attributesPath: String { "\(self.options.runDirectory)/attributes.json" }

    /// The attributes the previous agent process on this host reported (since the host booted).
    func restoreAttributes() {
        guard let data = FileManager.default.contents(atPath: self.attributesPath),
            let saved = try? JSONDecoder().decode([String: String].self, from: data)
        else { return }
        self.localAttributes = saved
    }

    func coordinatorChanged() {
        self.perform(self.coordinator.onChange(now: Agent.wallClock()))
    }

    func wakeUp(_ at: Timestamp) {
        self.scheduledWakeUps.remove(at)
        if self.isAwaitingVerdict {
            self.perform([.wakeUp(at: Agent.wallClock() + Seconds(0.1))])
            return
        }
        self.perform(self.coordinator.onTimer(ledger: self.ledger, now: Agent.wallClock(), monotonic: WatchdogPetter.monotonicNow()))
    }

    // MARK: - Directives

    func apply(_ directives: [ClusterLedger.Directive]) {
        for directive in directives {
            switch directive {
            case .broadcast(let message):
                self.broadcast(message)
            case .announceLocalResources:
                Task {
                    let roles = await self.executor.localRoles()
                    self.announce(roles)
                }
            case .persist(let document):
                do {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    try AtomicFile.write(try encoder.encode(document), to: self.documentPath)
                } catch {
                    self.log("cannot persist the cluster document: \(error)")
                }
                Task { await self.executor.update(config: document.config) }
            case .requestDone(let request, let refusal):
                self.waiting.removeValue(forKey: request)?.resume(returning: refusal)
            case .runAction(let request):
                // watchdog (issue 11): no start on a host whose watchdog is not configured; note what may run here.
                if let refusal = Self.refusalWithoutWatchdog(request, node: self.ledger.config.node(named: self.ledger.localNode), now: Agent.wallClock()) {
                    self.log("refused \(request): \(refusal.output ?? "")")
                    self.broadcast(.operationResult(refusal))
                    continue
                }
                self.watchdogNoteStarting(request)
                self.log("running \(request) (\(request.reason))")
                Task { await self.executor.run(request) }
            case .prepareMigration(let request):
                self.log("preparing to receive \(request.resource) by live migration")
                Task {
                    let outcome = await self.executor.prepareIncoming(request)
                    self.broadcast(.migrationPrepared(request: request.id, exitCode: outcome.exitCode, output: outcome.output))
                }
            case .migrationPrepared(let request, let exitCode, let output):
                self.endPrepare(request, AgentOutcome(exitCode, output))
            case .event(let text):
                self.log(text)
            case .refused(let text):
                self.log("refused: \(text)")
            case .stopAllLocalResources(let reason):
                self.log("self-fencing: \(reason); stopping every local resource")
                Task { await self.selfFence() }
            }
        }
    }

    /// Stops every local resource at once (VMs first, killed, not hibernated) and tells the partition what now
    /// runs here. The quorate side starts them after the self-fence timeout, so this must be quick, not graceful.
    func selfFence() async {
        let outcomes = await self.executor.stopAll(immediate: true)
        let failed = outcomes.filter { $0.value.exitCode != OCFExit.success }
        self.log(failed.isEmpty ? "self-fence complete" : "self-fence: could not stop \(failed.keys.sorted())")
        self.announce(await self.executor.localRoles())
    }

    func perform(_ directives: [Coordinator.Directive]) {
        for directive in directives {
            switch directive {
            case .send(let request):
                self.log("coordinator: \(request) (\(request.reason))")
                self.broadcast(.actionRequest(request))
            case .wakeUp(let at):
                guard self.scheduledWakeUps.insert(at).inserted else { continue }
                let delay = max(0, at.seconds - Agent.wallClock().seconds)
                Task {
                    try? await Task.sleep(for: .milliseconds(Int64(delay * 1000) + 1))
                    self.wakeUp(at)
                }
            case .event(let text):
                self.log("coordinator: \(text)")
            case .fence(let node):
                Task { await self.fence(node) }
            }
        }
    }

    /// Runs a departed node's fence agent with `action=off` and its parameters on stdin (the standard
    /// fence-agent interface). Only a confirmed fence spares the survivors the self-fence wait.
    func fence(_ node: NodeConfig) async {
        guard let agent = node.fenceAgent else { return }
        let input = (["action=off", "nodename=\(node.name)"] + node.fenceParameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
            .joined(separator: "\n") + "\n"
        self.log("fencing \(node.name) with \(agent)")
        let result = await Subprocess.run([agent], input: input, timeout: .seconds(30))
        if result.succeeded {
            self.broadcast(.fenced(node: node.name))
        } else {
            // Parameters may hold passwords: log the agent's answer, never its input.
            self.log("fencing \(node.name) failed (exit \(result.status)): \(result.output.suffix(300)); waiting out its self-fence time instead")
        }
    }

    func announce(_ roles: [String: ResourceRole]) {
        self.watchdogNote(roles)  // watchdog (issue 11)
        self.broadcast(.resourceReport(roles.mapValues { ResourceNodeState(role: $0) }))
        for (name, value) in self.localAttributes.sorted(by: { $0.key < $1.key }) {
            self.broadcast(.attribute(name: name, value: value))
        }
    }

    /// Queues a message for the group. One sender sends in order: concurrent sends on one Corosync
    /// handle corrupt its IPC, and this node's messages must arrive in the order it said them.
    func broadcast(_ message: ClusterMessage) {
        self.outbox.yield(Envelope(from: self.ledger.localNode, message: message).encoded())
    }

    func sendQueued(_ stream: AsyncStream<[UInt8]>) async {
        for await bytes in stream {
            guard let group = self.group else { continue }
            do {
                try await group.send(bytes)
            } catch {
                self.log("cannot send to the cluster: \(error)")
                if error.code == .connectionLost || error.code == .notRunning {
                    group.close()  // ends the event stream: self-fence, then rejoin
                }
            }
        }
    }

    func log(_ text: String) {
        let record = EventRecord(at: Agent.wallClock(), node: self.ledger.localNode, text: text)
        self.events.append(record)
        if self.events.count > 2000 { self.events.removeFirst(self.events.count - 2000) }
        FileHandle.standardError.write(Data("\(Self.stamp(record.at)) \(record.node): \(text)\n".utf8))
    }

    static func stamp(_ time: Timestamp) -> String {
        let seconds = time.seconds
        let day = Int(seconds) % 86400
        return String(format: "%02d:%02d:%06.3f", day / 3600, day % 3600 / 60, seconds.truncatingRemainder(dividingBy: 60))
    }

    // MARK: - Control requests

    func handle(_ request: ControlRequest) async -> ControlResponse {
        let now = Agent.wallClock()
        switch request {
        case .status:
            var report = StatusReport(ledger: self.ledger, pendingActions: self.coordinator.pendingActions, now: now)
            let runDirectory = self.options.runDirectory
            for index in report.resources.indices where report.resources[index].type == "volume" {
                report.resources[index].replication = VolumeAgent.replicationLine(
                    socket: "\(runDirectory)/\(report.resources[index].id).ctl")
            }
            return .status(report)
        case .snapshot:
            return .snapshot(config: self.ledger.config, state: self.ledger.clusterState, now: now)
        case .showConfig:
            return .config(self.ledger.config)
        case .events(let limit):
            return .events(Array(self.events.suffix(max(1, limit))))
        case .intent(var intent):
            if case .migrate(let node, let to, let expires) = intent, node.isEmpty {
                intent = .migrate(node: self.ledger.localNode, to: to, expires: expires)
            }
            if case .unmigrate(let node) = intent, node?.isEmpty == true {
                intent = .unmigrate(node: self.ledger.localNode)
            }
            if let problem = self.validate(intent) { return .failure(problem) }
            self.log("operator asks: \(intent)")
            let response = await self.submit { .intent(intent, request: $0) }
            if case .done(let text) = response { return .done("\(intent): \(text)") }
            return response
        case .applyConfig(var config):
            config.epoch = self.ledger.config.epoch + 1
            self.log("operator applies a new config (epoch \(config.epoch))")
            return await self.submit { .applyConfig(config, request: $0) }
        case .direct(let action, let resource):
            self.log("operator runs \(action.rawValue) \(resource) directly on \(self.ledger.localNode), behind the cluster's back")
            let outcome = await self.executor.runDirect(action, resource: resource)
            await self.announce(self.executor.localRoles())
            guard outcome.exitCode == OCFExit.success else {
                return .failure("\(action.rawValue) \(resource) failed (exit \(outcome.exitCode)): \(outcome.output ?? "")")
            }
            return .done("\(action.rawValue) \(resource) done on \(self.ledger.localNode)")
        }
    }

    func validate(_ intent: OperatorIntent) -> String? {
        let config = self.ledger.config
        func node(_ name: String?) -> String? {
            guard let name, config.node(named: name) == nil else { return nil }
            return "no node named '\(name)' (nodes: \(config.nodes.map(\.name).joined(separator: ", ")))"
        }
        func resource(_ name: String?) -> String? {
            guard let name, config.resource(named: name) == nil, config.group(named: name) == nil else { return nil }
            return "no resource named '\(name)' (resources: \(config.resources.map(\.id).joined(separator: ", ")))"
        }
        switch intent {
        case .migrate(let from, let to, _):
            if from == to { return "cannot migrate \(from) to itself" }
            return node(from) ?? node(to)
        case .unmigrate(let name): return node(name)
        case .forceStart(let name), .forceStop(let name): return resource(name)
        case .cleanup(let name, let on): return resource(name) ?? node(on)
        case .standby(let name), .unstandby(let name): return node(name)
        }
    }

    func submit(_ make: (RequestID) -> ClusterMessage) async -> ControlResponse {
        self.serial += 1
        let id = RequestID(node: self.ledger.localNode, serial: self.serial)
        let message = make(id)
        let refusal: String? = await withCheckedContinuation { continuation in
            self.waiting[id] = continuation
            self.broadcast(message)
            Task {
                try? await Task.sleep(for: .seconds(10))
                self.expire(id)
            }
        }
        if let refusal { return .failure("refused: \(refusal)") }
        return .done("applied cluster-wide")
    }

    func expire(_ id: RequestID) {
        self.waiting.removeValue(forKey: id)?.resume(returning: "no answer from the cluster within 10 s (is corosync running?)")
    }
}
