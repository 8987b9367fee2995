import CleverControl
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What the campaign and the lab tests wait for after a fault, and the lab's own facts (pids, power) read from its
/// state file, from outside the cluster.
extension CampaignLab {
    public var hosts: [String] { ["alpha", "beta"] }

    public func other(_ host: String) -> String { host == "alpha" ? "beta" : "alpha" }

    public func quorateHost() -> String? {
        self.hosts.first { !self.poweredOff($0) && self.status($0)?.quorate == true }
    }

    public func console(_ host: String, vm: String = "mba7") -> String {
        "\(self.hostsDirectory)/\(host)/run/clevervm/\(vm).console.log"
    }

    /// Waits until the VM runs on exactly one host (`on`, when given), seen from `from` (any quorate host when
    /// nil), and its writer acknowledges new records there. Returns that host.
    @discardableResult
    public func settle(after what: String, on expected: String? = nil, from: String? = nil, vm: String = "mba7") throws -> String {
        var host: String?
        let placed = self.waitUntil(90) {
            guard let viewer = from ?? self.quorateHost() else { return false }
            let placement = self.placement(vm, from: viewer)
            guard placement.count == 1, expected == nil || placement == [expected!], self.settled(viewer) else { return false }
            host = placement[0]
            return true
        }
        guard placed, let host else {
            throw LabFailure("after \(what): the VM did not settle on \(expected ?? "one host") within 90 s; \(self.statusSeen(from: from))")
        }
        let before = SingleRunWatch.ackCount(self.console(host, vm: vm))
        guard self.waitUntil(60, { SingleRunWatch.ackCount(self.console(host, vm: vm)) > before + 3 }) else {
            throw LabFailure("after \(what): the guest on \(host) does not write")
        }
        return host
    }

    /// What a failed wait saw, for its error: the status of `from` (or of every powered-on host), so a CI log that keeps
    /// only the failure line still says why (no quorum, a fail count at the threshold, an unfit host, a pending action).
    func statusSeen(from: String?) -> String {
        let viewers = from.map { [$0] } ?? self.hosts.filter { !self.poweredOff($0) }
        return viewers.map { host in
            let text = self.clevervm(host, ["status"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
            return "status on \(host):\n\(text.isEmpty ? "(no answer)" : text)"
        }.joined(separator: "\n")
    }

    /// Waits until both hosts are up, quorate with every vote (the tie-breaker's too), settled and every volume is
    /// UpToDate on both.
    public func waitInSync(after what: String) throws {
        let ok = self.waitUntil(120) {
            let votes = self.votes()
            return self.hosts.allSatisfy { host in
                guard let report = self.status(host), report.quorate, report.nodes.allSatisfy(\.online) else { return false }
                return self.settled(host) && report.resources.allSatisfy { $0.replication.map { $0.contains("UpToDate/UpToDate") } ?? true }
                    && votes[host].map { $0.total >= $0.expected } == true
            }
        }
        if !ok {
            let counted = self.votes()
            let votes = self.hosts.map { host in counted[host].map { "\(host) counts \($0.total) of \($0.expected) votes" } ?? "\(host): no votes known" }
            throw LabFailure("after \(what): the cluster did not come back whole and in sync within 120 s (\(votes.joined(separator: ", "))); "
                             + self.statusSeen(from: nil))
        }
    }

    /// The votes each host counts and expects, from `clevervm lab status --json` (the lab's corosync-quorumtool reading):
    /// with two hosts and a qdevice, 3 of 3 when whole. A host whose qdevice lost qnetd is quorate with 2 of 3, and alone
    /// after the next fault it would have no quorum: the campaign must see that at the fault that caused it.
    public func votes() -> [String: (total: Int, expected: Int)] {
        let output = Self.run(["lab", "status", "--name", self.name, "--json"], timeout: 20).output
        guard let report = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
              let hosts = report["hosts"] as? [[String: Any]] else { return [:] }
        var votes: [String: (total: Int, expected: Int)] = [:]
        for host in hosts {
            guard let name = host["name"] as? String, let quorum = host["quorum"] as? [String: Any],
                  let total = quorum["totalVotes"] as? Int, let expected = quorum["expectedVotes"] as? Int else { continue }
            votes[name] = (total, expected)
        }
        return votes
    }

    // MARK: The lab's state file

    private var state: [String: Any]? {
        guard let data = FileManager.default.contents(atPath: "/run/clevervm-lab/\(self.name)/state.json") else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    /// pid of a lab service of `host` (corosync, qdevice, clevervm; qnetd on gw).
    public func pid(_ host: String, _ service: String) -> Int32? {
        guard let services = (self.state?["services"] as? [String: Any])?[host] as? [[String: Any]] else { return nil }
        return (services.first { $0["name"] as? String == service }?["pid"] as? NSNumber)?.int32Value
    }

    public func poweredOff(_ host: String) -> Bool {
        (self.state?["poweredOff"] as? [String])?.contains(host) == true
    }

    /// Powers `host` on unless it is on.
    public func ensurePoweredOn(_ host: String) throws {
        if self.poweredOff(host) { try self.lab(["power", "on", host]) }
    }

    /// The network namespace of a lab host.
    public func namespace(_ host: String) -> String { "\(self.name)-\(host)" }

    /// Every process of `host` (all that live in its network namespace).
    public func processes(of host: String) -> [Int32] {
        var info = stat()
        guard stat("/run/netns/\(self.namespace(host))", &info) == 0 else { return [] }
        let wanted = "net:[\(info.st_ino)]"
        return SingleRunWatch.pids().filter { pid in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")) == wanted
        }
    }

    /// The QEMU of `vm` that runs (not `-incoming`) on `host`, if any.
    public func qemu(on host: String, vm: String = "mba7") -> Int32? {
        self.processes(of: host).first { pid in
            guard let arguments = SingleRunWatch.commandLine(pid) else { return false }
            return arguments.first?.contains("qemu-system") == true && arguments.contains("clevervm-\(vm),process=clevervm-\(vm)")
                && !arguments.contains("-incoming")
        }
    }

    /// A host's backing file of a volume, seen from outside (its /var/lib/clevervm).
    public func backingFile(_ host: String, volume: String) -> String {
        "\(self.hostsDirectory)/\(host)/var-lib-clevervm/\(volume).img"
    }
}
