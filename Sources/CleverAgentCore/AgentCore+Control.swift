import CleverCluster
import CleverControl
import CleverModel

extension AgentCore {
    /// A request on the control socket. The answer comes as `.answer(call, …)`: in these directives when the core
    /// knows it now, later when the group or the executor must act first.
    public mutating func onControl(_ request: ControlRequest, now: Timestamp) -> (ControlCall, [AgentDirective]) {
        self.callSerial += 1
        let call = ControlCall(serial: self.callSerial)
        switch request {
        case .status:
            var report = StatusReport(ledger: self.ledger, pendingActions: self.coordinator.pendingActions, now: now)
            report.wireVersion = self.wireVersion
            return (call, [.answer(call, .status(report))])
        case .snapshot:
            return (call, [.answer(call, .snapshot(config: self.config, state: self.ledger.clusterState, now: now))])
        case .showConfig:
            return (call, [.answer(call, .config(self.config))])
        case .events(let limit):
            return (call, [.answer(call, .events(Array(self.events.suffix(max(1, limit)))))])
        case .intent(let asked):
            let intent = asked.resolving(thisHost: self.localNode)
            if let problem = IntentProblem.find(in: intent, config: self.config) {
                return (call, [.answer(call, .failure(problem.description))])
            }
            let logged = self.log(.notice, "operator asks: \(intent)", now: now)
            return (call, [logged] + self.awaitGroup(call, subject: intent.description, { .intent(intent, request: $0) }, now: now))
        case .applyConfig(var config):
            config.epoch = self.config.epoch + 1
            let logged = self.log(.notice, "operator applies a new config (epoch \(config.epoch))", now: now)
            return (call, [logged] + self.awaitGroup(call, subject: nil, { [config] in .applyConfig(config, request: $0) }, now: now))
        case .direct(let action, let resource):
            let logged = self.log(.warning, "operator runs \(action.rawValue) \(resource) directly on \(self.localNode), behind the cluster's back",
                                  now: now, resource: resource, op: action)
            return (call, [logged, .runDirect(call, action: action, resource: resource)])
        case .resolveVolume(let volume, let discard, let dryRun):
            guard case .volume = self.config.resource(named: volume)?.kind else {
                return (call, [.answer(call, .failure("\(volume) is not a replicated volume of this cluster"))])
            }
            guard self.config.replicaHosts.contains(where: { $0.name == discard }) else {
                return (call, [.answer(call, .failure("\(discard) holds no replica of \(volume)"))])
            }
            let id = self.nextRequestID()
            self.waitingResolves[id] = call
            let logged = self.log(.notice, "operator asks: resolve \(volume) --discard \(discard)\(dryRun ? " --dry-run" : "") through the cluster",
                                  now: now, resource: volume)
            return (call, [logged, .broadcast(.resolveVolume(VolumeResolveRequest(id: id, volume: volume, discard: discard, dryRun: dryRun)))]
                    + self.schedule(.requestExpiry(id), at: now + Self.resolvePatience))
        }
    }

    /// How long a resolve through the group waits for the holder's answer (it waits for the resync first).
    public static let resolvePatience = Seconds(600)
    /// How long the holder waits for the resync that a resolve started.
    public static let resolveResyncWait = Seconds(540)

    /// This host ran a resolve another host asked for: the group learns how it went.
    public mutating func onVolumeResolveDone(_ request: VolumeResolveRequest, succeeded: Bool, text: String, now: Timestamp) -> [AgentDirective] {
        [self.log(succeeded ? .notice : .warning, "resolve of \(request.volume) for \(request.id.node): \(text)", now: now, resource: request.volume),
         .broadcast(.volumeResolved(request: request.id, succeeded: succeeded, text: text))]
    }

    /// The answer to a resolve this host forwarded.
    mutating func onVolumeResolved(_ request: RequestID, succeeded: Bool, text: String) -> [AgentDirective] {
        guard let call = self.waitingResolves.removeValue(forKey: request) else { return [] }
        return self.cancel(.requestExpiry(request)) + [.answer(call, succeeded ? .done(text) : .failure(text))]
    }

    /// An operator's direct action finished; `roles` is what runs here now.
    public mutating func onDirectDone(_ call: ControlCall, action: ResourceAction, resource: String, exitCode: Int, output: String?,
                                      roles: [String: ResourceRole]) -> [AgentDirective] {
        let answer: ControlResponse = exitCode == OCFExit.success
            ? .done("\(action.rawValue) \(resource) done on \(self.localNode)")
            : .failure("\(action.rawValue) \(resource) failed (exit \(exitCode)): \(output ?? "")")
        return self.announce(roles) + [.answer(call, answer)]
    }

}

/// Why an operator intent cannot be sent to the group: it names something the config does not have.
public enum IntentProblem: Error, Hashable, Sendable, CustomStringConvertible {
    case unknownNode(String, known: [String])
    case unknownResource(String, known: [String])
    case migrateToItself(String)

    /// The first problem with `intent` under `config`, or nil when it may be sent.
    public static func find(in intent: OperatorIntent, config: ClusterConfig) -> IntentProblem? {
        func node(_ name: String?) -> IntentProblem? {
            guard let name, config.node(named: name) == nil else { return nil }
            return .unknownNode(name, known: config.nodes.map(\.name))
        }
        func resource(_ name: String?) -> IntentProblem? {
            guard let name, config.resource(named: name) == nil, config.group(named: name) == nil else { return nil }
            return .unknownResource(name, known: config.resources.map(\.id))
        }
        switch intent {
        case .migrate(let from, let to, _):
            if let from = from.named, from == to { return .migrateToItself(from) }
            return node(from.named) ?? node(to)
        case .unmigrate(let name): return node(name?.named)
        case .forceStart(let name), .forceStop(let name): return resource(name)
        case .cleanup(let name, let on): return resource(name) ?? node(on)
        case .standby(let name), .unstandby(let name): return node(name)
        case .outdateDisk(let volume, let name), .clearOutdated(let volume, let name): return resource(volume) ?? node(name)
        }
    }

    public var description: String {
        switch self {
        case .unknownNode(let name, let known): "no node named '\(name)' (nodes: \(known.joined(separator: ", ")))"
        case .unknownResource(let name, let known): "no resource named '\(name)' (resources: \(known.joined(separator: ", ")))"
        case .migrateToItself(let node): "cannot migrate \(node) to itself"
        }
    }
}
