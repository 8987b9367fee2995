import CleverTesting
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The faults of the campaign (issue 5, then issue 11's item 6: Pacemaker CTS and Jepsen's list for the cluster
/// stack). One case per fault; `inject` does it and undoes it, and returns where the VM runs afterwards. To add a
/// fault: a case, its line in `inject`, and `needsWatchdog` when only a watchdog makes it survivable (a frozen
/// Corosync keeps its host's VM running until the watchdog resets it; `watchdog: none` cannot stop that).
public enum Fault: String, CaseIterable, Codable, Sendable {
    case cutActivePing, cutPassivePing, powerOffActive, powerOffPassive, partition, crashActiveAgent, crashActiveVolume
    case crashCoordinatorMidMove
    /// SIGSTOP of the VM host's agent for 1–3 s (below the liveness bound): nothing moves.
    case freezeActiveAgentBriefly
    /// SIGSTOP of the VM host's agent until its watchdog powers the host off.
    case freezeActiveAgent
    /// SIGSTOP of the VM host's corosync until its watchdog powers the host off.
    case freezeActiveCorosync
    /// SIGSTOP of every process of the VM host (QEMU included): a stuck host.
    case freezeActiveHost
    /// SIGSTOP of every process of the other host.
    case freezePassiveHost
    /// `systemctl stop clevervm` on the VM host (SIGTERM, no restart): the VM keeps running, the watchdog stays armed
    /// and resets the host W later (docs/architecture.md, "Stopping the agent").
    case stopActiveAgentService
    /// The VM host cut from its peer and from qnetd (and its gateway).
    case isolateActive
    /// The other host cut from its peer and from qnetd.
    case isolatePassive
    /// A partition (both still reach qnetd), and the agent of one side (drawn) restarted during it.
    case restartAgentWhilePartitioned
    /// qnetd dies, then a host (drawn) is powered off: the survivor has no quorum and runs nothing.
    case qnetdDiesThenHostFails
    /// Both hosts powered off at once, then on again: a cold start from the replicas.
    case powerCycleBoth
    /// Loss and delay on Corosync's traffic (knet, UDP 5405) of one host (drawn), for 6 s (tc netem).
    case corosyncLossAndDelay

    public var needsWatchdog: Bool {
        [.freezeActiveAgent, .freezeActiveCorosync, .freezeActiveHost, .freezePassiveHost, .stopActiveAgentService].contains(self)
    }

    /// Every applicable fault once per round, each round in an order drawn from the seed, until `count`.
    public static func schedule(seed: UInt64, count: Int, watchdog: Bool, from kinds: [Fault] = Fault.allCases) -> [Fault] {
        var generator = SeededRandom(seed: seed)
        let applicable = kinds.filter { watchdog || !$0.needsWatchdog }
        guard !applicable.isEmpty else { return [] }
        var faults: [Fault] = []
        while faults.count < count { faults += applicable.shuffled(using: &generator) }
        return Array(faults.prefix(count))
    }
}

/// What a fault works on: the lab, the VM's host before it, and the seed's draws (durations, sides).
public struct FaultContext {
    public let lab: CampaignLab
    public var active: String
    public var draws: SeededRandom
    public var passive: String { self.lab.other(self.active) }
    /// Lines for the progress output (what was drawn, what happened).
    public var notes: [String] = []
}

extension Fault {
    /// Injects the fault, waits for the cluster's answer and undoes it; returns the host the VM settled on.
    public func inject(_ context: inout FaultContext) throws -> String {
        let lab = context.lab
        let active = context.active
        let passive = context.passive
        switch self {
        case .cutActivePing:
            try lab.lab(["cut-ping", active])
            let host = try lab.settle(after: "\(self)", on: passive)
            try lab.lab(["restore-ping", active])
            return host
        case .cutPassivePing:
            try lab.lab(["cut-ping", passive])
            Thread.sleep(forTimeInterval: 4)
            let host = try lab.settle(after: "\(self)", on: active)
            try lab.lab(["restore-ping", passive])
            return host
        case .powerOffActive:
            try lab.lab(["power", "off", active])
            let host = try lab.settle(after: "\(self)", on: passive, from: passive)
            try lab.lab(["power", "on", active])
            return host
        case .powerOffPassive:
            try lab.lab(["power", "off", passive])
            Thread.sleep(forTimeInterval: 4)
            let host = try lab.settle(after: "\(self)", on: active, from: active)
            try lab.lab(["power", "on", passive])
            return host
        case .crashActiveAgent:
            // The agent dies, QEMU and Corosync stay: the other host must not take this for a dead host. A watchdog
            // left armed by the dead agent may reset the host before the agent is back (then the VM moves).
            try lab.lab(["crash", active, "clevervm"])
            Thread.sleep(forTimeInterval: 1)  // systemd's Restart=always delay
            try lab.lab(["restart", active, "clevervm"])
            Thread.sleep(forTimeInterval: 4)
            if lab.poweredOff(active) {
                context.notes.append("\(active) was reset by its watchdog before its agent was back")
                let host = try lab.settle(after: "\(self)", on: passive, from: passive)
                try lab.ensurePoweredOn(active)
                return host
            }
            return try lab.settle(after: "\(self)")
        case .crashCoordinatorMidMove:
            // The operator moves the VM live; the coordinator's agent dies while the move runs (the source or the
            // destination). The survivor takes over coordination; the move ends on one host or the other.
            let coordinator = lab.status(active)?.coordinator ?? active
            let delay = Double.random(in: 0.0...0.6, using: &context.draws)  // the move itself takes about 0.5 s
            let migrate = lab.clevervm(active, ["migrate"])
            guard migrate.status == 0 else { throw CampaignLab.LabFailure("\(self): migrate: \(migrate.error)") }
            Thread.sleep(forTimeInterval: delay)
            try lab.lab(["crash", coordinator, "clevervm"])
            context.notes.append(String(format: "%@'s agent (the coordinator) crashed %.2f s into the move from %@", coordinator, delay, active))
            Thread.sleep(forTimeInterval: 6)
            if lab.poweredOff(coordinator) {
                context.notes.append("\(coordinator) was reset by its watchdog")
                try lab.ensurePoweredOn(coordinator)
            } else {
                try lab.lab(["restart", coordinator, "clevervm"])
            }
            let host = try lab.settle(after: "\(self)")
            _ = lab.clevervm(host, ["unmigrate"])
            _ = lab.clevervm(lab.other(host), ["unmigrate"])
            return host
        case .crashActiveVolume:
            // The VM's disk process dies under it: the cluster recovers the volume (and the VM, where it must).
            let pidFile = "\(lab.hostsDirectory)/\(active)/run/clevervm/disk0.volume.pid"
            guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            else { throw CampaignLab.LabFailure("\(self): no volume pid in \(pidFile)") }
            kill(pid, SIGKILL)
            Thread.sleep(forTimeInterval: 3)
            let host = try lab.settle(after: "\(self)")
            // The operator clears the failure record, as after any repaired fault.
            _ = lab.clevervm(host, ["cleanup"])
            return host
        case .partition:
            // Both still reach the gateway and qnetd: qdevice lets one side keep quorum, the other stops everything
            // (self-fence) before the winner starts anything.
            try lab.lab(["partition", "alpha", "--from", "beta"])
            Thread.sleep(forTimeInterval: 3)
            guard let winner = lab.quorateHost() else { throw CampaignLab.LabFailure("\(self): no side kept quorum") }
            let host = try lab.settle(after: "\(self)", from: winner)
            try lab.lab(["heal"])
            return host
        case .freezeActiveAgentBriefly:
            let seconds = Double.random(in: 1...3, using: &context.draws)
            let pid = try self.pid(lab, active, "clevervm")
            kill(pid, SIGSTOP)
            Thread.sleep(forTimeInterval: seconds)
            kill(pid, SIGCONT)
            context.notes.append(String(format: "%@'s agent stopped for %.1f s", active, seconds))
            return try lab.settle(after: "\(self)", on: active)
        case .freezeActiveAgent, .freezeActiveCorosync, .freezeActiveHost, .freezePassiveHost, .stopActiveAgentService:
            let stuck = self == .freezePassiveHost ? passive : active
            let pids: [Int32]
            switch self {
            case .stopActiveAgentService: pids = []
                kill(try self.pid(lab, stuck, "clevervm"), SIGTERM)
            case .freezeActiveAgent: pids = [try self.pid(lab, stuck, "clevervm")]
            case .freezeActiveCorosync: pids = [try self.pid(lab, stuck, "corosync")]
            default: pids = lab.processes(of: stuck)
            }
            let start = Date()
            for pid in pids { kill(pid, SIGSTOP) }
            // Its watchdog powers it off: the liveness bound (or at once, with the agent stopped), W, the watcher's poll.
            guard lab.waitUntil(20, { lab.poweredOff(stuck) }) else {
                for pid in pids { kill(pid, SIGCONT) }
                throw CampaignLab.LabFailure("\(self): \(stuck) stopped, but its watchdog did not power it off within 20 s")
            }
            context.notes.append(String(format: "%@ powered off by its watchdog %.1f s after the stop", stuck, Date().timeIntervalSince(start)))
            let host = try lab.settle(after: "\(self)", on: lab.other(stuck), from: lab.other(stuck))
            try lab.ensurePoweredOn(stuck)
            return host
        case .isolateActive, .isolatePassive:
            let isolated = self == .isolateActive ? active : passive
            try lab.lab(["partition", isolated, "--from", lab.other(isolated), "gw"])
            let host = try lab.settle(after: "\(self)", on: lab.other(isolated), from: lab.other(isolated))
            try lab.lab(["heal"])
            return host
        case .restartAgentWhilePartitioned:
            try lab.lab(["partition", "alpha", "--from", "beta"])
            Thread.sleep(forTimeInterval: 3)
            let restarted = Bool.random(using: &context.draws) ? "alpha" : "beta"
            context.notes.append("\(restarted)'s agent restarted while partitioned")
            try lab.lab(["restart", restarted, "clevervm"])
            Thread.sleep(forTimeInterval: 4)
            if lab.poweredOff(restarted) { context.notes.append("\(restarted) was reset by its watchdog") }
            if let winner = lab.quorateHost() {
                _ = try lab.settle(after: "\(self)", from: winner)
            }
            try lab.lab(["heal"])
            for host in lab.hosts { try lab.ensurePoweredOn(host) }
            return try lab.settle(after: "\(self), healed")
        case .qnetdDiesThenHostFails:
            try lab.lab(["crash", "gw", "qnetd"])
            Thread.sleep(forTimeInterval: 2)
            let failed = Bool.random(using: &context.draws) ? active : passive
            context.notes.append("qnetd down, then \(failed) powered off")
            try lab.lab(["power", "off", failed])
            // The survivor holds 1 of 3 votes: no quorum, so it must run nothing.
            Thread.sleep(forTimeInterval: 8)
            try lab.lab(["restart", "gw", "qnetd"])
            try lab.lab(["power", "on", failed])
            return try lab.settle(after: "\(self)")
        case .powerCycleBoth:
            try lab.lab(["power", "off", "alpha"])
            try lab.lab(["power", "off", "beta"])
            Thread.sleep(forTimeInterval: 1)
            try lab.lab(["power", "on", "alpha"])
            try lab.lab(["power", "on", "beta"])
            return try lab.settle(after: "\(self)")
        case .corosyncLossAndDelay:
            let host = Bool.random(using: &context.draws) ? active : passive
            let loss = Int.random(in: 5...30, using: &context.draws)
            let delay = Int.random(in: 20...300, using: &context.draws)
            context.notes.append("\(host): corosync traffic \(loss)% loss, \(delay) ms delay for 6 s")
            try Netem.degradeCorosync(lab, host, lossPercent: loss, delayMilliseconds: delay)
            Thread.sleep(forTimeInterval: 6)
            Netem.clear(lab, host)
            return try lab.settle(after: "\(self)")
        }
    }

    private func pid(_ lab: CampaignLab, _ host: String, _ service: String) throws -> Int32 {
        guard let pid = lab.pid(host, service), pid > 0 else { throw CampaignLab.LabFailure("\(self): no pid of \(service) on \(host)") }
        return pid
    }
}

/// `tc netem` on one lab host's link, for Corosync's traffic only (knet's UDP port 5405, either direction): a prio
/// qdisc whose third band delays and drops, and u32 filters steering that port into it.
enum Netem {
    static let corosyncPort = "5405"

    static func degradeCorosync(_ lab: CampaignLab, _ host: String, lossPercent: Int, delayMilliseconds: Int) throws {
        let commands: [[String]] = [
            ["qdisc", "add", "dev", "eth0", "root", "handle", "1:", "prio"],
            ["qdisc", "add", "dev", "eth0", "parent", "1:3", "handle", "30:", "netem", "delay", "\(delayMilliseconds)ms",
             "loss", "\(lossPercent)%"],
            ["filter", "add", "dev", "eth0", "parent", "1:0", "protocol", "ip", "u32", "match", "ip", "dport", Self.corosyncPort,
             "0xffff", "flowid", "1:3"],
            ["filter", "add", "dev", "eth0", "parent", "1:0", "protocol", "ip", "u32", "match", "ip", "sport", Self.corosyncPort,
             "0xffff", "flowid", "1:3"],
        ]
        for command in commands {
            let result = CampaignLab.runCommand(["ip", "netns", "exec", lab.namespace(host), "tc"] + command)
            guard result.status == 0 else {
                self.clear(lab, host)
                throw CampaignLab.LabFailure("tc \(command.joined(separator: " ")) on \(host): \(result.output)")
            }
        }
    }

    static func clear(_ lab: CampaignLab, _ host: String) {
        _ = CampaignLab.runCommand(["ip", "netns", "exec", lab.namespace(host), "tc", "qdisc", "del", "dev", "eth0", "root"])
    }
}
