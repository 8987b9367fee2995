import CleverCluster
import CleverControl
import CleverModel

/// Every decision the agent makes, as a value: the replicated ledger and the coordinator wired together, the
/// verdict pause, the timers (coordinator wake-ups, operator-request and migration-prepare deadlines) as
/// directives with deadlines, request correlation and intent validation. It does no I/O and reads no clock: each
/// event carries `now` from the shell's monotonic clock (`AgentClock` in the agent, a fake one in tests).
///
/// The shell (`Agent`) feeds it Corosync's views, deliveries and quorum, the control socket's requests and the
/// executor's results, and performs the returned directives in the order given: a `persist` is written before the
/// `runAction` that follows it.
public struct AgentCore: Sendable {
    public private(set) var ledger: ClusterLedger
    public private(set) var coordinator: Coordinator
    /// The transient attributes this node last reported, re-sent after every membership change (a node that was
    /// away forgot them) and kept by the shell in the run directory across agent restarts.
    public private(set) var localAttributes: [String: String]
    /// Since when votequorum owes a verdict for the current ring (nil: the verdict is in).
    public private(set) var awaitingVerdictSince: Timestamp?
    /// What the agent did, for `clevervm events` (the newest `eventHistoryLimit`).
    public private(set) var events: [EventRecord] = []
    /// Timers asked of the shell and not yet fired or cancelled.
    public private(set) var scheduledTimers: Set<AgentTimer> = []
    /// The highest group wire version this agent speaks (lower only in tests of a rolling upgrade).
    public let highestWireVersion: Int
    /// The highest wire version each member of the view announced in its envelopes.
    public private(set) var memberWireVersions: [String: Int] = [:]

    /// Operator requests sent to the group and not yet answered: the control call each answers.
    var waitingRequests: [RequestID: PendingRequest] = [:]
    var callSerial = 0
    /// Live-migration prepares this node asked of a target, by request: the target whose answer it waits for.
    private var preparingOn: [RequestID: String] = [:]
    private var serial = 0
    /// Resolves forwarded to the host that runs the volume, by request: the control call each answers.
    var waitingResolves: [RequestID: ControlCall] = [:]
    /// Replication fencing: local volumes' last states, requests in flight, commands given (AgentCore+Fencing).
    var fencing = FencingBook()

    /// Between a membership change and votequorum's verdict the old verdict still stands: the coordinator pauses
    /// rather than act on it; self-fencing waits for the verdict itself, so a survivor does not stop its VM whenever a
    /// peer joins or dies. votequorum does not always send a verdict after a node-list change that leaves quorum as
    /// it was (a survivor kept waiting 5 s), so the pause is bounded. 1.5 s covers the verdicts measured here
    /// (0.5–1.3 s after the ring change); a host that loses the tie-break also gets no further than the self-fence
    /// wait, which counts from the same membership change.
    public static let verdictPatience = Seconds(1.5)
    /// How often a coordinator wake-up that fell into the verdict pause looks again.
    public static let verdictRecheck = Seconds(0.1)
    /// How long an operator request waits for the group's answer.
    public static let requestPatience = Seconds(10)
    public static let eventHistoryLimit = 2000

    public init(localNode: String, document: ClusterDocument, localAttributes: [String: String] = [:],
                highestWireVersion: Int = WireVersion.current) {
        self.highestWireVersion = highestWireVersion
        self.ledger = ClusterLedger(localNode: localNode, document: document)
        self.coordinator = Coordinator(localNode: localNode)
        self.localAttributes = localAttributes
    }

    public var localNode: String { self.ledger.localNode }
    public var config: ClusterConfig { self.ledger.config }
    public var isCoordinator: Bool { self.coordinator.isCoordinator(self.ledger) }

    /// Whether the verdict pause holds at `now`.
    public func isAwaitingVerdict(at now: Timestamp) -> Bool {
        guard let since = self.awaitingVerdictSince else { return false }
        return now.seconds(since: since) < Self.verdictPatience.value
    }

    /// The wire version this agent writes: the highest every member of the view announced. A member not heard
    /// from in this view counts as the oldest version, so a newer agent speaks the older version until every member
    /// said it speaks the newer one (a rolling upgrade); all members switch at the same delivered message.
    public var wireVersion: Int {
        let announced = self.ledger.members.map { self.memberWireVersions[$0] ?? WireVersion.legacy }.min() ?? WireVersion.legacy
        return min(announced, self.highestWireVersion)
    }

    /// The envelope for a message this agent broadcasts, in the negotiated version.
    public func envelope(_ message: ClusterMessage) -> Envelope {
        Envelope(from: self.localNode, message: message, version: self.wireVersion, maxVersion: self.highestWireVersion)
    }

    // MARK: - Corosync

    /// A new CPG view: the node ids of the agents in the group (a second agent process on a node is the same member).
    public mutating func onView(memberIDs: [UInt32], now: Timestamp) -> [AgentDirective] {
        var directives = self.ledgerDirectives(self.ledger.onView(memberIDs: Set(memberIDs).map { Int($0) }, now: now), now: now)
        // A member that left may come back as another release: it announces its version again.
        self.memberWireVersions = self.memberWireVersions.filter { self.ledger.members.contains($0.key) }
        directives += self.failPreparesOnDeparted(now: now)
        directives += self.coordinatorChanged(now: now)
        return directives
    }

    /// A votequorum update: the ring's node list, and the verdict (or that it is still owed).
    public mutating func onQuorum(_ update: QuorumUpdate, now: Timestamp) -> [AgentDirective] {
        var directives: [AgentDirective] = []
        if let ring = update.ring { directives += self.ledgerDirectives(self.ledger.onRing(memberIDs: ring, now: now), now: now) }
        if update.awaitingVerdict {
            self.awaitingVerdictSince = self.awaitingVerdictSince ?? now
        } else {
            self.awaitingVerdictSince = nil
            directives += self.ledgerDirectives(self.ledger.onQuorum(update.quorate), now: now)
        }
        directives += self.coordinatorChanged(now: now)
        return directives
    }

    /// A message delivered by the group, as bytes, with the node id Corosync says sent it.
    public mutating func onDelivery(_ payload: [UInt8], fromNodeID nodeID: UInt32, now: Timestamp) -> [AgentDirective] {
        let envelope: Envelope
        do {
            envelope = try Envelope.decode(payload)
        } catch {
            return [self.log(.warning, "refused a message from node \(nodeID): \(error)", now: now)]
        }
        guard self.config.node(named: envelope.from)?.id == Int(nodeID) else {
            return [self.log(.warning, "refused a message claiming to be from \(envelope.from) but sent by node \(nodeID)", now: now)]
        }
        if self.ledger.members.contains(envelope.from) { self.memberWireVersions[envelope.from] = envelope.maxVersion }
        var directives = self.ledgerDirectives(self.ledger.onDeliver(envelope, now: now), now: now)
        if case .operationResult(let result) = envelope.message {
            // A VM that arrived here by live migration runs here now: the executor tracks and monitors it.
            if result.action == .migrateTo, result.succeeded, result.migrationTarget == self.localNode {
                directives.append(.adopt(resource: result.resource))
            }
            directives += self.coordinatorDirectives(self.coordinator.onResult(result, now: now), now: now)
        } else {
            directives += self.coordinatorChanged(now: now)
        }
        return directives
    }

    /// The Corosync connection closed: this host cannot know whether it still has quorum, and the others already
    /// count it as gone, so everything here stops, as on a quorum loss.
    public mutating func onCorosyncClosed(reason: String, now: Timestamp) -> [AgentDirective] {
        [self.log(.error, "corosync connection closed: \(reason); self-fencing", now: now),
         .selfFence(reason: "lost the connection to corosync")]
    }

    // MARK: - Executor

    /// An action ran here: the group learns its result.
    public mutating func onLocalResult(_ result: OperationResult) -> [AgentDirective] {
        [.broadcast(.operationResult(result))]
    }

    /// A local resource reported a transient attribute (pingd, a volume's promotion score).
    public mutating func onLocalAttribute(name: String, value: String?) -> [AgentDirective] {
        self.localAttributes[name] = value
        return [.saveAttributes(self.localAttributes), .broadcast(.attribute(name: name, value: value))]
    }

    /// What runs here, as the executor knows it: the group's copy is replaced, and this node's attributes repeated.
    public func announce(_ roles: [String: ResourceRole]) -> [AgentDirective] {
        [.broadcast(.resourceReport(roles.mapValues { ResourceNodeState(role: $0) }))]
            + self.localAttributes.sorted { $0.key < $1.key }.map { .broadcast(.attribute(name: $0.key, value: $0.value)) }
    }

    /// The self-fence finished: `failed` are the resources it could not stop.
    public mutating func onSelfFenceDone(failed: [String], roles: [String: ResourceRole], now: Timestamp) -> [AgentDirective] {
        let text = failed.isEmpty ? "self-fence complete" : "self-fence: could not stop \(failed.sorted())"
        return [self.log(failed.isEmpty ? .notice : .error, text, now: now)] + self.announce(roles)
    }

    /// This node is the target of a live migration and got ready (or not).
    public mutating func onIncomingPrepared(_ request: ActionRequest, exitCode: Int, output: String?) -> [AgentDirective] {
        [.broadcast(.migrationPrepared(request: request.id, exitCode: exitCode, output: output))]
    }

    /// The fence agent for a departed node returned.
    public mutating func onFenceDone(node: String, succeeded: Bool, status: Int32, output: String, now: Timestamp) -> [AgentDirective] {
        if succeeded { return [.broadcast(.fenced(node: node))] }
        // Parameters may hold passwords: log the agent's answer, never its input.
        return [self.log(.error, "fencing \(node) failed (exit \(status)): \(output.suffix(300)); waiting out its self-fence time instead",
                         now: now)]
    }

    // MARK: - Live migration (source side)

    /// The VM agent moving a resource live asks the target host (through the group) to get ready. The answer comes
    /// as `.finishPrepare` with the returned request id: the target's reply, its departure, or the timeout.
    public mutating func onPrepareRequested(resource: String, target: String?, timeout: Seconds,
                                            now: Timestamp) -> (RequestID, [AgentDirective]) {
        let id = self.nextRequestID()
        guard let target else {
            return (id, [.finishPrepare(id, PrepareOutcome(exitCode: OCFExit.invalidArgument, output: "no migration target"))])
        }
        let request = ActionRequest(id: id, resource: resource, node: target, action: .migrateFrom, migrationTarget: target,
                                    timeout: timeout, reason: "live migration")
        self.preparingOn[id] = target
        return (id, [.broadcast(.prepareMigration(request))] + self.schedule(.prepareExpiry(id), at: now + timeout))
    }

    private mutating func endPrepare(_ id: RequestID, _ outcome: PrepareOutcome) -> [AgentDirective] {
        guard self.preparingOn.removeValue(forKey: id) != nil else { return [] }
        return self.cancel(.prepareExpiry(id)) + [.finishPrepare(id, outcome)]
    }

    /// A target whose agent left will not answer: the move fails now (and is rescheduled), instead of holding the VM's
    /// queue until the action's timeout.
    private mutating func failPreparesOnDeparted(now: Timestamp) -> [AgentDirective] {
        let members = Set(self.ledger.members)
        var directives: [AgentDirective] = []
        for (id, target) in self.preparingOn.sorted(by: { $0.key.serial < $1.key.serial }) where !members.contains(target) {
            directives += self.endPrepare(id, PrepareOutcome(exitCode: OCFExit.generic, output: "the agent on \(target) left before it was ready"))
        }
        return directives
    }

    // MARK: - Timers

    /// A timer the shell scheduled came due.
    public mutating func onTimer(_ timer: AgentTimer, now: Timestamp) -> [AgentDirective] {
        guard self.scheduledTimers.remove(timer) != nil else { return [] }
        switch timer {
        case .coordinatorWakeUp:
            if self.isAwaitingVerdict(at: now) { return self.schedule(.coordinatorWakeUp(at: now + Self.verdictRecheck), at: now + Self.verdictRecheck) }
            return self.coordinatorDirectives(self.coordinator.onTimer(ledger: self.ledger, now: now), now: now)
        case .requestExpiry(let id):
            if let call = self.waitingResolves.removeValue(forKey: id) {
                return [.answer(call, .failure("no answer from the host that runs the volume within \(Int(Self.resolvePatience.value)) s"))]
            }
            guard let pending = self.waitingRequests.removeValue(forKey: id) else { return [] }
            return [.answer(pending.call, .failure("no answer from the cluster within \(Int(Self.requestPatience.value)) s (is corosync running?)"))]
        case .prepareExpiry(let id):
            guard let target = self.preparingOn[id] else { return [] }
            return self.endPrepare(id, PrepareOutcome(exitCode: OCFExit.timedOut, output: "\(target) did not get ready in time"))
        case .fencingRetry(let volume):
            return self.onFencingRetry(volume, now: now)
        }
    }

    mutating func schedule(_ timer: AgentTimer, at deadline: Timestamp) -> [AgentDirective] {
        guard self.scheduledTimers.insert(timer).inserted else { return [] }
        return [.schedule(timer, at: deadline)]
    }

    mutating func cancel(_ timer: AgentTimer) -> [AgentDirective] {
        guard self.scheduledTimers.remove(timer) != nil else { return [] }
        return [.cancel(timer)]
    }

    // MARK: - Wiring

    mutating func nextRequestID() -> RequestID {
        self.serial += 1
        return RequestID(node: self.localNode, serial: self.serial)
    }

    private mutating func coordinatorChanged(now: Timestamp) -> [AgentDirective] {
        self.coordinatorDirectives(self.coordinator.onChange(now: now), now: now)
    }

    private mutating func ledgerDirectives(_ directives: [ClusterLedger.Directive], now: Timestamp) -> [AgentDirective] {
        var out: [AgentDirective] = []
        for directive in directives {
            switch directive {
            case .broadcast(let message): out.append(.broadcast(message))
            case .announceLocalResources: out.append(.announceLocalResources)
            case .persist(let document): out.append(.persist(document))
            case .requestDone(let request, let refusal):
                if let fencing = self.onFencingRequestDone(request, refusal: refusal, now: now) {
                    out += fencing
                    continue
                }
                guard let pending = self.waitingRequests.removeValue(forKey: request) else { continue }
                out += self.cancel(.requestExpiry(request))
                out.append(.answer(pending.call, pending.answer(refusal: refusal)))
            case .runAction(let request):
                if let refusal = self.refusalWithoutWatchdog(request, now: now) {
                    out.append(self.log(.error, "refused \(request): \(refusal.output ?? "")", now: now, resource: request.resource, op: request.action))
                    out.append(.broadcast(.operationResult(refusal)))
                    continue
                }
                out.append(self.log(.info, "running \(request) (\(request.reason))", now: now, resource: request.resource, op: request.action))
                out.append(.runAction(request))
            case .prepareMigration(let request):
                out.append(self.log(.info, "preparing to receive \(request.resource) by live migration", now: now, resource: request.resource,
                                    op: .migrateFrom))
                out.append(.prepareIncoming(request))
            case .migrationPrepared(let request, let exitCode, let output):
                out += self.endPrepare(request, PrepareOutcome(exitCode: exitCode, output: output))
            case .event(let text): out.append(self.log(.info, text, now: now))
            case .refused(let text): out.append(self.log(.warning, "refused: \(text)", now: now))
            case .stopAllLocalResources(let reason):
                out.append(self.log(.error, "self-fencing: \(reason); stopping every local resource", now: now))
                out.append(.selfFence(reason: reason))
            case .diskMarksChanged(let volume):
                out += self.fencingDirectives(volume, now: now)
            case .resolveVolume(let request):
                out.append(self.log(.notice, "resolving \(request.volume) for \(request.id.node) (--discard \(request.discard)\(request.dryRun ? ", dry run" : ""))",
                                    now: now, resource: request.volume))
                out.append(.resolveVolume(request))
            case .volumeResolved(let request, let succeeded, let text):
                out += self.onVolumeResolved(request, succeeded: succeeded, text: text)
            }
        }
        // A document adopted from another member may carry marks this host has not acted on.
        if directives.contains(where: { if case .persist = $0 { true } else { false } }) { out += self.fencingDirectivesForAll(now: now) }
        return out
    }

    private mutating func coordinatorDirectives(_ directives: [Coordinator.Directive], now: Timestamp) -> [AgentDirective] {
        var out: [AgentDirective] = []
        for directive in directives {
            switch directive {
            case .send(let request):
                out.append(self.log(.info, "coordinator: \(request) (\(request.reason))", now: now, resource: request.resource, op: request.action))
                out.append(.broadcast(.actionRequest(request)))
            case .wakeUp(let at):
                out += self.schedule(.coordinatorWakeUp(at: at), at: at)
            case .event(let text):
                out.append(self.log(.info, "coordinator: \(text)", now: now))
            case .fence(let node):
                guard let agent = node.fenceAgent else { continue }
                out.append(self.log(.notice, "fencing \(node.name) with \(agent)", now: now))
                out.append(.fence(node))
            }
        }
        return out
    }

    /// Records an event in the history and returns the log directive for it.
    public mutating func log(_ level: AgentLogLevel, _ text: String, now: Timestamp, resource: String? = nil,
                             op: ResourceAction? = nil) -> AgentDirective {
        let record = EventRecord(at: now, node: self.localNode, text: text)
        self.events.append(record)
        if self.events.count > Self.eventHistoryLimit { self.events.removeFirst(self.events.count - Self.eventHistoryLimit) }
        return .log(AgentLogEntry(level: level, text: text, resource: resource, op: op))
    }

    // MARK: - Control requests (correlation)

    /// Sends an operator's request to the group; the ledger's `requestDone` (or the expiry timer) answers `call`.
    mutating func awaitGroup(_ call: ControlCall, subject: String?, _ make: (RequestID) -> ClusterMessage,
                             now: Timestamp) -> [AgentDirective] {
        let id = self.nextRequestID()
        self.waitingRequests[id] = PendingRequest(call: call, subject: subject)
        return [.broadcast(make(id))] + self.schedule(.requestExpiry(id), at: now + Self.requestPatience)
    }

    /// The id of the group request a control call waits on, if any (for tests and logs).
    public func request(answering call: ControlCall) -> RequestID? {
        self.waitingRequests.first { $0.value.call == call }?.key
    }

    struct PendingRequest: Hashable, Sendable {
        var call: ControlCall
        /// What the answer names (`migrate alpha`), if anything.
        var subject: String?

        func answer(refusal: String?) -> ControlResponse {
            if let refusal { return .failure("refused: \(refusal)") }
            return .done(self.subject.map { "\($0): applied cluster-wide" } ?? "applied cluster-wide")
        }
    }
}

/// What votequorum reported: the ring's node ids (nil when the update has no node list) and the verdict.
public struct QuorumUpdate: Hashable, Sendable {
    public var quorate: Bool
    public var ring: [UInt32]?
    public var awaitingVerdict: Bool

    public init(quorate: Bool, ring: [UInt32]?, awaitingVerdict: Bool = false) {
        self.quorate = quorate
        self.ring = ring
        self.awaitingVerdict = awaitingVerdict
    }
}

/// The target's answer to a live-migration prepare, in OCF exit codes (its output is the incoming URI).
public struct PrepareOutcome: Hashable, Sendable {
    public var exitCode: Int
    public var output: String?
    public init(exitCode: Int, output: String?) {
        self.exitCode = exitCode
        self.output = output
    }
}
