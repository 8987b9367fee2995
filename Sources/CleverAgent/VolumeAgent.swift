import CleverAgentCore
import CleverCluster
import CleverExecutor
import CleverModel
import CleverReplication
import CleverSystem
import CleverVolume
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A replicated volume as a cluster resource: its own `clevervm-volume` process per host (so an agent
/// restart never touches a VM's I/O), driven through the volume's control socket. Reports the
/// `master-ID` promotion score from the disk state: the scheduler promotes only UpToDate data, or, for
/// a volume that was never used anywhere, one side to become the first source.
struct VolumeAgent: ResourceAgent {
    typealias Report = @Sendable (String, String?) async -> Void

    let spec: VolumeSpec
    let config: ClusterConfig
    let binary: String
    let stateDirectory: String
    let report: Report
    /// Shared by every volume of this agent: reports score changes as they happen, between monitors.
    let watchers: VolumeScoreWatchers

    static let upToDateScore = "10000"
    static let freshScore = "1"

    func volumeConfig(_ context: ActionContext) -> VolumeConfig {
        let id = context.resource.id
        // A volume lives on the first two nodes (DRBD's two-node model); the peer is the other one.
        let pair = self.config.replicaHosts
        let me = pair.first { $0.name == context.node }
        let peer = pair.first { $0.name != context.node }
        var volume = VolumeConfig(
            name: id, node: context.node, spec: self.spec, listenHost: me?.addresses.first,
            peer: peer.flatMap { node in node.addresses.first.map { (name: node.name, host: $0) } },
            stateDirectory: "\(self.stateDirectory)/volumes", runDirectory: context.runDirectory)
        // Replication fencing (DRBD's `fencing resource-only`): a Primary whose link breaks holds its writes until the
        // agents have recorded the peer's disk as Outdated in the ledger (AgentCore+Fencing); off while the agent's
        // half is (Agent.replicationFencing).
        if Agent.replicationFencing { volume.fencing = .resourceOnly }
        // Both primary only for a live migration that the cluster starts (and asks for in the promote).
        volume.allowTwoPrimaries = self.config.resources.contains { resource in
            guard case .vm(let vm) = resource.kind, vm.migration == .live else { return false }
            return vm.allVolumes.contains(id)
        }
        return volume
    }

    /// This host's view of a volume in DRBD's words, for `clevervm status`.
    /// Asked while the agent answers `status` (on its actor): a volume process that is stopping may accept and not
    /// answer, and the agent must not stall on it, so it gets 2 s.
    static func replicationLine(socket: String) -> String? {
        guard let reply = try? ControlServer.send(VolumeControlRequest(command: .status), to: socket, timeout: 2), let status = reply.status else {
            return nil
        }
        return "replication: " + status.line
    }

    /// Gives a local volume a replication-fencing command; the error, or nil when it was done.
    static func give(_ command: VolumeCommand, socket: String) -> String? {
        let request = VolumeControlRequest(command: command == .markPeerOutdated ? .markPeerOutdated : .outdate)
        do {
            let reply = try ControlServer.send(request, to: socket)
            return reply.ok ? nil : reply.message
        } catch {
            return "\(error)"
        }
    }

    /// Resolves a local volume's split brain for another host (`VolumeResolveRequest`) and, unless a dry run, waits
    /// for the resync it starts. Blocking: run it off the agent's queue.
    static func resolve(_ request: VolumeResolveRequest, socket: String, wait: Duration) -> (succeeded: Bool, text: String) {
        let reply: VolumeControlReply
        do {
            reply = try ControlServer.send(VolumeControlRequest(command: .resolve, discard: request.discard, dryRun: request.dryRun), to: socket)
        } catch {
            return (false, "volume \(request.volume) does not answer here (\(socket)): \(error)")
        }
        guard reply.ok else { return (false, reply.message) }
        if request.dryRun { return (true, reply.message) }
        do {
            let result = try ControlServer.waitForSync(at: socket, timeout: wait) { _ in }
            let line = result.status?.line ?? "no status"
            return result.finished
                ? (true, "\(reply.message); resync finished: \(line)")
                : (false, "\(reply.message); the resync did not finish within \(wait): \(line)")
        } catch {
            return (false, "\(reply.message); lost the volume while waiting for the resync: \(error)")
        }
    }

    func pidFile(_ context: ActionContext) -> String { "\(context.runDirectory)/\(context.resource.id).volume.pid" }

    func status(_ volume: VolumeConfig) -> VolumeStatus? {
        guard let reply = try? ControlServer.send(VolumeControlRequest(command: .status), to: volume.controlSocket), reply.ok else { return nil }
        return reply.status
    }

    func send(_ request: VolumeControlRequest, _ volume: VolumeConfig) -> AgentOutcome {
        do {
            let reply = try ControlServer.send(request, to: volume.controlSocket)
            return reply.ok ? .success : AgentOutcome(OCFExit.generic, reply.message)
        } catch {
            return AgentOutcome(OCFExit.generic, "volume \(volume.name): \(error)")
        }
    }

    /// Whether the disk never held data anywhere (generation "just created").
    static func isFresh(_ status: VolumeStatus) -> Bool {
        let current = status.generations.split(separator: ":").first.flatMap { UInt64($0) } ?? 0
        return current & ~1 == 4
    }

    /// A never-used disk may become the first source only while connected to a peer that is never-used too: a
    /// disk still "just created" after losing its peer may have been the target of an unfinished full sync
    /// (the peer had data), and promoting it would serve a partial copy as new data.
    func score(_ status: VolumeStatus) -> String {
        if status.disk == "UpToDate" { return Self.upToDateScore }
        if status.disk == "Inconsistent", Self.isFresh(status), status.connection == "Connected", status.peerDisk == "Inconsistent",
            status.sync == nil
        {
            return Self.freshScore
        }
        return "-INFINITY"
    }

    func watch(_ volume: VolumeConfig, _ attribute: String) {
        self.watchers.watch(socket: volume.controlSocket, resource: volume.name, attribute: attribute) { [self] status in self.score(status) }
    }

    func perform(_ action: ResourceAction, _ context: ActionContext) async -> AgentOutcome {
        let volume = self.volumeConfig(context)
        let attribute = "master-\(context.resource.id)"
        switch action {
        case .start, .migrateFrom:
            if let status = self.status(volume) {
                await self.report(attribute, self.score(status))
                self.watch(volume, attribute)
                return .success
            }
            let path = "\(context.runDirectory)/\(context.resource.id).volume.json"
            do {
                try FileManager.default.createDirectory(atPath: "\(self.stateDirectory)/volumes", withIntermediateDirectories: true)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try encoder.encode(volume).write(to: URL(fileURLWithPath: path))
                let pid = try Subprocess.spawnDaemon([self.binary, "serve", "--config", path],
                                                     log: "\(context.runDirectory)/\(context.resource.id).volume.log")
                try "\(pid)\n".write(toFile: self.pidFile(context), atomically: true, encoding: .utf8)
            } catch {
                return AgentOutcome(OCFExit.generic, "cannot start volume \(volume.name): \(error)")
            }
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if let status = self.status(volume) {
                    await self.report(attribute, self.score(status))
                    self.watch(volume, attribute)
                    return .success
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return AgentOutcome(OCFExit.generic, "volume \(volume.name) did not answer on \(volume.controlSocket): "
                                + Subprocess.tail("\(context.runDirectory)/\(context.resource.id).volume.log", lines: 5))
        case .promote:
            guard var status = self.status(volume) else { return AgentOutcome(OCFExit.notRunning, "volume \(volume.name) is not running") }
            if status.role == "Primary" { return .success }
            // The peer is in the cluster (not fenced) but the link is not up yet — one side's volume process was just
            // (re)started: the volume refuses to promote while the peer may be Primary, so wait for the link first.
            if !context.peerFenced, status.connection != "Connected" {
                let deadline = ContinuousClock.now + min(Duration(context.timeout), .seconds(10))
                while ContinuousClock.now < deadline, status.connection != "Connected" {
                    try? await Task.sleep(for: .milliseconds(100))
                    status = self.status(volume) ?? status
                }
            }
            // The cluster knows the peer is gone (it left and waited out its self-fence time); the
            // replication link may not have noticed yet (it gives up after 10 s of silence). Drop it, so
            // "the peer may be primary" no longer holds, and reconnect after promoting.
            let dropLink = context.peerFenced && status.connection != "StandAlone"
            if dropLink { _ = self.send(VolumeControlRequest(command: .disconnect), volume) }
            defer { if dropLink { _ = self.send(VolumeControlRequest(command: .connect), volume) } }
            let outcome = self.send(VolumeControlRequest(
                command: .promote, peerOutdated: context.peerFenced, allowTwoPrimaries: context.allowTwoPrimaries,
                force: Self.isFresh(status)), volume)
            if let after = self.status(volume) { await self.report(attribute, self.score(after)) }
            return outcome
        case .demote:
            guard let status = self.status(volume) else { return .success }
            if status.role != "Primary" { return .success }
            return self.send(VolumeControlRequest(command: .demote), volume)
        case .stop, .migrateTo:
            await self.watchers.stop(socket: volume.controlSocket)
            // Self-fencing does not ask a volume whose peer is unreachable to demote: it is killed (its metadata is
            // crash-safe; it comes back as a crashed primary and resyncs from the side that kept quorum).
            if !context.immediate, let status = self.status(volume), status.role == "Primary" {
                _ = self.send(VolumeControlRequest(command: .demote, force: true), volume)
            }
            if let text = try? String(contentsOfFile: self.pidFile(context), encoding: .utf8),
                let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), Subprocess.isAlive(pid)
            {
                kill(pid, context.immediate ? SIGKILL : SIGTERM)
                let deadline = ContinuousClock.now + .seconds(5)
                while Subprocess.isAlive(pid), ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
                if Subprocess.isAlive(pid) { kill(pid, SIGKILL) }
            }
            await self.report(attribute, nil)
            return .success
        case .monitor:
            guard let status = self.status(volume) else { return .notRunning }
            await self.report(attribute, self.score(status))
            // After an agent restart the volume was adopted by a probe, not started: follow it from here.
            self.watch(volume, attribute)
            return status.role == "Primary" ? AgentOutcome(OCFExit.runningPromoted) : .success
        }
    }
}
