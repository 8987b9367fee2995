import CleverModel

/// The replicated cluster state machine. Every agent feeds it the same membership views and the same
/// messages in the same (Corosync agreed) order, so every agent holds the same state. It does no I/O:
/// it returns directives for its shell.
///
/// Sync rule: after a membership change every member broadcasts its `ClusterDocument`; each member
/// adopts an offer that beats its copy (higher generation; on a tie, the lower node id). Since every
/// member sees every offer, all end with the best one. Until every member's offer is delivered, operator
/// changes are refused (with a reason), so none can be lost in the merge.
public struct ClusterLedger: Sendable {
    public enum Directive: Hashable, Sendable {
        /// Broadcast this message to the group.
        case broadcast(ClusterMessage)
        /// Send this node's whole local resource state (the shell asks its executor).
        case announceLocalResources
        /// Write the document to disk atomically (temp file, fsync, rename).
        case persist(ClusterDocument)
        /// An operator request this agent sent was applied cluster-wide, or refused with a reason.
        case requestDone(RequestID, refusal: String?)
        /// The coordinator asks this node to run an action.
        case runAction(ActionRequest)
        /// Get ready to receive a live migration (this node is the target).
        case prepareMigration(ActionRequest)
        /// The target of a migration this node started answered.
        case migrationPrepared(RequestID, exitCode: Int, output: String?)
        /// Something worth a log line and the event history.
        case event(String)
        /// A message was refused (malformed, from a non-member, or not allowed).
        case refused(String)
        /// This node runs the volume another host asked to resolve: resolve it, then answer the group.
        case resolveVolume(VolumeResolveRequest)
        /// The answer to a resolve this node asked for.
        case volumeResolved(RequestID, succeeded: Bool, text: String)
        /// The Outdated marks of this volume changed (or were confirmed): the agents act on them (`AgentCore`).
        case diskMarksChanged(volume: String)
        /// This partition lost quorum under no-quorum-policy stop: stop every local resource now; the
        /// survivors wait `selfFenceTimeout` before starting them elsewhere.
        case stopAllLocalResources(reason: String)
    }

    public let localNode: String
    public private(set) var document: ClusterDocument
    /// Members of the current view, by name, sorted by node id.
    public private(set) var members: [String] = []
    public private(set) var quorate = false
    /// Whether votequorum's first verdict has arrived (`quorate` is false before it).
    public private(set) var hasVerdict = false
    /// Members whose sync offer for this view has not been delivered yet.
    public private(set) var syncPending: Set<String> = []
    public private(set) var attributes: [String: [String: String]] = [:]
    public private(set) var resources: [String: [String: ResourceNodeState]] = [:]
    /// When each node left (cleared when it rejoins): survivors wait out its self-fence time. A node has left when
    /// it is neither in the agents' view nor in Corosync's ring.
    public private(set) var departed: [String: Timestamp] = [:]
    /// The same departures on the shell's monotonic clock (survivors' fencing wait; a wall-clock step must not
    /// shorten it). The wall clock stands in when the shell passes none.
    public private(set) var departedSince: [String: Timestamp] = [:]
    /// Nodes in Corosync's ring (votequorum's node list); nil until the first node list arrives.
    public private(set) var ringMembers: Set<String>?
    /// Departed nodes a fence agent confirmed off: nothing of theirs can still run, no need to wait.
    public private(set) var fenced: Set<String> = []
    /// The last move of each VM, with the guest's downtime when QEMU measured it.
    public private(set) var lastMoves: [String: MoveRecord] = [:]
    /// Where each resource last started or arrived (for a VM: whose RAM it had), so a cold boot elsewhere is
    /// recorded as a move.
    public private(set) var lastHosts: [String: String] = [:]
    /// When each resource last became active where it runs, for uptime.
    public private(set) var activeSince: [String: Timestamp] = [:]

    public init(localNode: String, document: ClusterDocument) {
        self.localNode = localNode
        self.document = document
    }

    public var config: ClusterConfig { self.document.config }

    /// Nodes whose Corosync is in the ring but whose agent is not in the view (it crashed, or is restarting).
    /// Nothing stops what runs there — no agent self-fences it — so what ran there stays frozen: not started
    /// elsewhere until the agent returns and reports, or the node leaves the ring and its self-fence time passes
    /// (or its fence agent confirms it off).
    public var agentless: Set<String> {
        guard let ring = self.ringMembers else { return [] }
        return ring.subtracting(self.members).subtracting([self.localNode])
    }
    public var isSynced: Bool { self.syncPending.isEmpty && self.members.contains(self.localNode) }

    /// The coordinator: the member with the lowest node id, once the partition is quorate and this view's sync is
    /// complete (before that, nobody acts). The one definition the coordinator, the status and the tests use.
    public var coordinatorNode: String? {
        guard self.quorate, self.isSynced else { return nil }
        return self.members.first
    }

    /// Resources active on a node whose agent is gone but whose Corosync is in the ring (`agentless`), with what
    /// belongs to them (their group, their mandatory colocation dependents), each with the node that freezes it: they
    /// may be running there with nobody to stop them, so nothing starts them elsewhere, without a time limit.
    public var frozenByAgentless: [String: String] {
        var frozen: [String: String] = [:]
        for node in self.agentless.sorted() {
            for (resource, perNode) in self.resources.sorted(by: { $0.key < $1.key }) where perNode[node]?.role.isActive == true {
                frozen[resource] = frozen[resource] ?? node
                for member in self.config.group(containing: resource)?.members ?? [] { frozen[member] = frozen[member] ?? node }
            }
        }
        for case .colocation(let colocation) in self.config.effectiveConstraints where colocation.score.isInfinite {
            if let node = frozen[colocation.primary] { frozen[colocation.dependent] = frozen[colocation.dependent] ?? node }
        }
        return frozen
    }

    func nodeID(_ name: String) -> Int? { self.config.node(named: name)?.id }

    /// The state the scheduler sees.
    public var clusterState: ClusterState {
        var state = ClusterState(hasQuorum: self.quorate)
        let agentless = self.agentless
        for node in self.config.nodes {
            var attributes = node.attributes
            attributes.merge(self.attributes[node.name] ?? [:]) { _, transient in transient }
            // A host whose agent is gone but whose Corosync is in the ring is alive: what runs there still runs,
            // and the scheduler must plan with it there, not as if the host were dead.
            let down = agentless.contains(node.name)
            state.nodes[node.name] = NodeState(
                status: self.members.contains(node.name) || down ? .online : .offline,
                standby: self.document.standby.contains(node.name), agentDown: down, attributes: attributes)
        }
        state.resources = self.resources
        state.marks = self.document.marks
        state.targetRoles = self.document.targetRoles
        state.outdatedDisks = self.document.outdatedDisks
        return state
    }

    // MARK: - Membership and quorum

    /// A new view from Corosync: node ids of the members.
    public mutating func onView(memberIDs: [Int], now: Timestamp, monotonic: Timestamp? = nil) -> [Directive] {
        let names = memberIDs.sorted().compactMap { id in self.config.nodes.first { $0.id == id }?.name }
        var directives: [Directive] = []
        for unknown in memberIDs where !self.config.nodes.contains(where: { $0.id == unknown }) {
            directives.append(.event("node id \(unknown) joined but is not in the config; ignored"))
        }
        let left = self.members.filter { !names.contains($0) }
        let joined = names.filter { !self.members.contains($0) }
        for node in left {
            if self.ringMembers?.contains(node) == true {
                // Its attributes (pingd) stay as they were: a restarted agent reports them anew, and until then the
                // host has not become unfit.
                directives.append(.event("node \(node): its agent left, its Corosync is still in the ring; what runs there stays "
                                         + "put until the agent returns or the node leaves"))
            } else {
                self.departed[node] = now
                self.departedSince[node] = monotonic ?? now
                self.attributes[node] = nil
                directives.append(.event("node \(node) left the cluster"))
            }
        }
        for node in joined {
            self.departed[node] = nil
            self.departedSince[node] = nil
            self.fenced.remove(node)
            // Its report replaces what we knew; until then nothing is known to run there.
            for resource in self.resources.keys { self.resources[resource]?[node] = nil }
            directives.append(.event("node \(node) joined the cluster"))
        }
        self.members = names
        self.syncPending = Set(names)
        directives.append(.broadcast(.sync(self.document)))
        directives.append(.announceLocalResources)
        return directives
    }

    /// A new Corosync ring: node ids of its members (votequorum's node list). A node whose agent had already
    /// left the view departs now that its Corosync is gone too.
    public mutating func onRing(memberIDs: [UInt32], now: Timestamp, monotonic: Timestamp? = nil) -> [Directive] {
        let names = Set(memberIDs.compactMap { id in self.config.nodes.first { $0.id == Int(id) }?.name })
        var directives: [Directive] = []
        for node in (self.ringMembers ?? []).subtracting(names) where !self.members.contains(node) && self.departed[node] == nil {
            self.departed[node] = now
            self.departedSince[node] = monotonic ?? now
            self.attributes[node] = nil
            directives.append(.event("node \(node) left the cluster (its agent had left before)"))
        }
        self.ringMembers = names
        return directives
    }

    public mutating func onQuorum(_ quorate: Bool) -> [Directive] {
        // The first verdict counts even when it repeats the initial `false`: a restarted agent in a minority must
        // stop what its host still runs (issue 11, finding 2).
        guard quorate != self.quorate || !self.hasVerdict else { return [] }
        let first = !self.hasVerdict
        self.hasVerdict = true
        self.quorate = quorate
        var directives: [Directive] = [.event(quorate ? "this partition has quorum" : first ? "no quorum at start" : "this partition lost quorum")]
        if !quorate, self.config.properties.noQuorumPolicy == .stop {
            directives.append(.stopAllLocalResources(reason: first ? "no quorum at start (no-quorum-policy stop)" : "quorum lost (no-quorum-policy stop)"))
        }
        return directives
    }

    // MARK: - Messages

    public mutating func onDeliver(_ envelope: Envelope, now: Timestamp) -> [Directive] {
        let sender = envelope.from
        guard self.members.contains(sender) else {
            return [.refused("message from \(sender), which is not a member of the current view")]
        }
        switch envelope.message {
        case .sync(let offer):
            return self.onSync(offer, from: sender)
        case .applyConfig(let config, let request):
            return self.onApplyConfig(config, request: request)
        case .intent(let intent, let request):
            return self.onIntent(intent, request: request, now: now)
        case .attribute(let name, let value):
            if self.attributes[sender]?[name] == value { return [] }
            self.attributes[sender, default: [:]][name] = value
            return [.event("node \(sender): attribute \(name)=\(value ?? "(removed)")")]
        case .resourceReport(let report):
            // The node knows what runs on it; the cluster keeps the failure history.
            for resource in Set(self.resources.keys).union(report.keys) {
                let known = self.resources[resource]?[sender]
                var entry = report[resource] ?? ResourceNodeState()
                entry.failCount = max(entry.failCount, known?.failCount ?? 0)
                entry.lastFailure = known?.lastFailure ?? entry.lastFailure
                entry.lastOperations = known?.lastOperations ?? []
                self.resources[resource, default: [:]][sender] = entry
            }
            return []
        case .operationResult(let result):
            guard result.node == sender else { return [.refused("\(sender) reported a result for \(result.node)")] }
            return self.onResult(result)
        case .actionRequest(let request):
            return request.node == self.localNode ? [.runAction(request)] : []
        case .prepareMigration(let request):
            return request.node == self.localNode ? [.prepareMigration(request)] : []
        case .fenced(let node):
            guard self.departed[node] != nil else { return [] }
            self.fenced.insert(node)
            return [.event("node \(node) was fenced (powered off by its fence agent)")]
        case .migrationPrepared(let request, let exitCode, let output):
            return request.node == self.localNode ? [.migrationPrepared(request, exitCode: exitCode, output: output)] : []
        case .resolveVolume(let request):
            // Every member picks the same holder from the same state; with none, the asker answers itself.
            guard let holder = self.resolveHolder(of: request.volume) else {
                return request.id.node == self.localNode
                    ? [.volumeResolved(request.id, succeeded: false, text: "no member of the cluster runs \(request.volume) now")] : []
            }
            return holder == self.localNode ? [.resolveVolume(request)] : []
        case .volumeResolved(let request, let succeeded, let text):
            return request.node == self.localNode ? [.volumeResolved(request, succeeded: succeeded, text: text)] : []
        }
    }

    /// The member that performs a resolve of `volume` asked through the group: the replica host with the lowest node id
    /// whose agent runs the volume (its process answers there).
    public func resolveHolder(of volume: String) -> String? {
        let replicaHosts = Set(self.config.replicaHosts.map(\.name))
        return self.members.first { replicaHosts.contains($0) && self.resources[volume]?[$0]?.role.isActive == true }
    }

    mutating func onSync(_ offer: ClusterDocument, from sender: String) -> [Directive] {
        self.syncPending.remove(sender)
        var directives: [Directive] = []
        if self.document.isBeaten(by: offer) {
            self.document = offer
            directives.append(.persist(offer))
            directives.append(.event("adopted the cluster document of \(sender) (generation \(offer.generation))"))
        }
        return directives
    }

    /// The refusal while a joined member's document has not been merged yet: nothing changed, and the same request
    /// succeeds moments later (the CLI waits and asks again).
    public static let membershipChanging = "cluster membership is changing; try again in a moment"

    func refusal(for request: RequestID) -> String? {
        if !self.quorate { return "this partition has no quorum" }
        if !self.syncPending.isEmpty { return Self.membershipChanging }
        return nil
    }

    mutating func onApplyConfig(_ config: ClusterConfig, request: RequestID) -> [Directive] {
        if let reason = self.refusal(for: request) { return [.requestDone(request, refusal: reason)] }
        guard config.epoch > self.config.epoch else {
            return [.requestDone(request, refusal: "config epoch \(config.epoch) is not newer than the cluster's \(self.config.epoch) (another change was applied first)")]
        }
        self.document.config = config
        // Intents about resources or nodes that no longer exist go with them.
        self.document.marks.removeAll { mark in
            config.node(named: mark.node) == nil || mark.resource.map { config.resource(named: $0) == nil && config.group(named: $0) == nil } == true
        }
        self.document.targetRoles = self.document.targetRoles.filter { config.resource(named: $0.key) != nil || config.group(named: $0.key) != nil }
        self.document.outdatedDisks.removeAll { config.resource(named: $0.volume) == nil || config.node(named: $0.node) == nil }
        return self.commit(request, event: "config epoch \(config.epoch) applied")
    }

    mutating func onIntent(_ intent: OperatorIntent, request: RequestID, now: Timestamp) -> [Directive] {
        if let reason = self.refusal(for: request) { return [.requestDone(request, refusal: reason)] }
        // Agents resolve "this host" before sending; should one not have, it is the host that asked.
        let intent = intent.resolving(thisHost: request.node)
        switch intent {
        case .migrate(let node, let to, let expires):
            self.document.marks.migrate(node: node.name(thisHost: request.node), to: to, expires: expires)
        case .unmigrate(let node):
            self.document.marks.unmigrate(node: node?.name(thisHost: request.node))
        case .forceStart(let resource):
            self.document.targetRoles[resource] = .started
        case .forceStop(let resource):
            self.document.targetRoles[resource] = .stopped
        case .cleanup(let resource, let node):
            let members = resource.flatMap { self.config.group(named: $0)?.members } ?? resource.map { [$0] }
            for (id, perNode) in self.resources where members == nil || members!.contains(id) {
                for name in perNode.keys where node == nil || name == node {
                    self.resources[id]?[name]?.failCount = 0
                    self.resources[id]?[name]?.lastFailure = nil
                    // A blocked failed stop is tried again.
                    self.resources[id]?[name]?.lastOperations = []
                }
            }
        case .standby(let node):
            if !self.document.standby.contains(node) { self.document.standby.append(node) }
        case .unstandby(let node):
            self.document.standby.removeAll { $0 == node }
        case .outdateDisk(let volume, let node):
            return self.onOutdateDisk(DiskMark(volume: volume, node: node), request: request)
        case .clearOutdated(let volume, let node):
            let mark = DiskMark(volume: volume, node: node)
            guard self.document.outdatedDisks.contains(mark) else { return [.requestDone(request, refusal: nil)] }
            self.document.outdatedDisks.removeAll { $0 == mark }
            return self.commit(request, event: "the disk of \(mark) is current again; it may be promoted") + [.diskMarksChanged(volume: volume)]
        }
        return self.commit(request, event: "operator: \(intent)")
    }

    /// Replication fencing (DRBD's fence-peer handler): a primary whose link broke asks to record its peer's disk
    /// as Outdated before it acknowledges more writes. Whoever is recorded first wins: a node whose own disk of the
    /// volume is already Outdated cannot outdate the other (both primaries of a live migration may ask), and a
    /// disk that serves as Primary is never outdated.
    mutating func onOutdateDisk(_ mark: DiskMark, request: RequestID) -> [Directive] {
        guard case .volume = self.config.resource(named: mark.volume)?.kind else {
            return [.requestDone(request, refusal: "\(mark.volume) is not a replicated volume")]
        }
        guard self.config.node(named: mark.node) != nil else { return [.requestDone(request, refusal: "no node named \(mark.node)")] }
        if self.document.outdatedDisks.contains(mark) { return [.requestDone(request, refusal: nil), .diskMarksChanged(volume: mark.volume)] }
        let asker = request.node
        if asker != mark.node, self.document.outdatedDisks.contains(DiskMark(volume: mark.volume, node: asker)) {
            return [.requestDone(request, refusal: "the disk of \(mark.volume) on \(asker) is Outdated itself; it cannot outdate \(mark.node)")]
        }
        if asker != mark.node, self.members.contains(mark.node), self.resources[mark.volume]?[mark.node]?.role == .promoted {
            return [.requestDone(request, refusal: "\(mark.volume) is Primary on \(mark.node)")]
        }
        self.document.outdatedDisks = (self.document.outdatedDisks + [mark]).sorted()
        return self.commit(request, event: "fencing: \(mark.refusal); recorded at \(asker)'s request")
            + [.diskMarksChanged(volume: mark.volume)]
    }

    mutating func commit(_ request: RequestID, event: String) -> [Directive] {
        self.document.generation += 1
        // Every member stamps the same origin after applying the same change, so copies stay equal.
        self.document.origin = self.members.compactMap(self.nodeID).min() ?? self.document.origin
        return [.persist(self.document), .requestDone(request, refusal: nil), .event(event)]
    }

    mutating func onResult(_ result: OperationResult) -> [Directive] {
        let resource = self.config.resource(named: result.resource)
        let promotable = resource?.isPromotable ?? false
        var entry = self.resources[result.resource]?[result.node] ?? ResourceNodeState()
        entry.lastOperations = Array((entry.lastOperations + [OperationRecord(action: result.action, exitCode: result.exitCode, at: result.at)]).suffix(5))
        var directives: [Directive] = []
        if result.succeeded || (result.action == .monitor && [OCFExit.success, OCFExit.runningPromoted].contains(result.exitCode)) {
            switch result.action {
            case .start, .demote: entry.role = promotable ? .unpromoted : .started
            case .promote: entry.role = .promoted
            case .stop: entry.role = .stopped
            case .monitor: entry.role = result.exitCode == OCFExit.runningPromoted ? .promoted : entry.role
            case .migrateTo:
                entry.role = .stopped
                if let target = result.migrationTarget {
                    self.resources[result.resource, default: [:]][target, default: ResourceNodeState()].role = .started
                }
            case .migrateFrom: entry.role = .started
            }
        } else {
            entry.failCount += 1
            entry.lastFailure = result.at
            // A failed start bans the node at once (Pacemaker's start-failure-is-fatal).
            if result.action == .start {
                entry.failCount = max(entry.failCount, self.config.effectiveMeta(of: result.resource).migrationThreshold)
            }
            entry.role = .failed
            directives.append(.event("\(result.action.rawValue) of \(result.resource) on \(result.node) failed (exit \(result.exitCode))\(result.output.map { ": \($0)" } ?? "")"))
        }
        self.resources[result.resource, default: [:]][result.node] = entry
        if result.succeeded {
            if result.action == .start || result.action == .promote { self.activeSince[result.resource] = result.at }
            if let move = MoveRecord(result: result, previousHost: self.lastHosts[result.resource]) {
                self.lastMoves[result.resource] = move
                directives.append(.event(move.description))
            }
            switch result.action {
            case .start, .migrateFrom: self.lastHosts[result.resource] = result.node
            case .migrateTo: if let target = result.migrationTarget { self.lastHosts[result.resource] = target }
            default: break
            }
        }
        return directives
    }
}
