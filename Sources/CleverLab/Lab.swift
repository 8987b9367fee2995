import CleverModel
import CorosyncConfig
import CleverSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real multi-host cluster on this machine. Each host is a network namespace (its own addresses, its own
/// abstract unix sockets, so corosync's IPC stays private) plus a mount namespace held by a long-lived holder
/// process, with its own /etc/corosync, /etc/clevervm, /var/lib/corosync, /var/lib/clevervm, /run and /dev/shm,
/// and its own host name. A gateway namespace runs corosync-qnetd and is the hosts' ping target. Everything hangs
/// off a bridge with no uplink; the root namespace has no address on it.
///
/// Operations are synchronous and serialised between processes by a lock file; the state lives in
/// /run/clevervm-lab/NAME/state.json, so `down`, `power` and the rest work from any process.
public struct Lab: Sendable {
    public let name: String

    public init(name: String = LabLayout.defaultName) throws(LabError) {
        try LabLayout.validate(name: name)
        self.name = name
    }

    public var stateDirectory: String { "\(LabLayout.stateRoot)/\(self.name)" }

    static func spawnDaemon(_ arguments: [String], log: String) throws(LabError) -> pid_t {
        do {
            return try Subprocess.spawnDaemon(arguments, log: log)
        } catch {
            throw LabError("spawn \(arguments.joined(separator: " "))", error.reason)
        }
    }

    /// The recorded state; fails when the lab is not up.
    public func state() throws(LabError) -> LabState { try LabState.load(from: self.stateDirectory) }

    /// The daemons' logs of a host ("gw" for the gateway): corosync.log, qdevice.log, qnetd.log, ….
    public func logDirectory(of host: String) -> String {
        host == "gw" ? "\(self.stateDirectory)/gateway/logs" : "\(self.stateDirectory)/hosts/\(host)/logs"
    }

    // MARK: Up

    /// Builds the lab and waits until every host is quorate (with the qdevice's vote when there is one).
    /// On failure everything made so far is torn down and the error carries the daemons' log tails.
    public func up(
        layout: LabLayout, config: ClusterConfig? = nil, timeout: Duration = .seconds(60),
        progress: (String) -> Void = { _ in }
    ) throws(LabError) {
        guard layout.name == self.name else { throw LabError("lab \(self.name)", "layout is for lab \(layout.name)") }
        let clusterConfig = config ?? layout.defaultClusterConfig()
        let corosyncConf: String
        do {
            corosyncConf = try CorosyncConfigFile.render(clusterConfig, options: .lab)
        } catch {
            throw LabError("lab \(self.name)", error.description)
        }
        try self.withLock { () throws(LabError) in
            if FileManager.default.fileExists(atPath: LabState.path(in: self.stateDirectory)) {
                throw LabError("lab \(self.name)", "already up (state in \(self.stateDirectory)); run `lab down` first")
            }
            let leftovers = Self.leftovers(of: layout)
            if !leftovers.isEmpty {
                progress("removing leftovers of an earlier lab \(self.name): \(leftovers.joined(separator: ", "))")
                _ = self.removeEverything(layout: layout, progress: progress)
            }
        }
        do {
            try self.withLock { () throws(LabError) in
                try self.build(layout: layout, clusterConfig: clusterConfig, corosyncConf: corosyncConf, progress: progress)
            }
            try self.waitUntilQuorate(hosts: layout.hosts.map(\.name), timeout: timeout, progress: progress)
        } catch {
            progress("start-up failed; tearing down")
            let logs = self.logTails(layout: layout)
            _ = self.down()
            throw LabError(error.place, error.message, details: [error.details, logs].compactMap { $0 }.joined(separator: "\n"))
        }
    }

    private func build(layout: LabLayout, clusterConfig: ClusterConfig, corosyncConf: String, progress: (String) -> Void) throws(LabError) {
        var state = LabState(layout: layout)
        state.usesQdevice = clusterConfig.quorum?.qdeviceHost != nil
        try Self.makeDirectory(self.stateDirectory)
        try state.save()

        progress("bridge \(layout.bridge) (no uplink)")
        try Self.ip(["link", "add", layout.bridge, "type", "bridge"])
        try Self.ip(["link", "set", layout.bridge, "up"])

        progress("gateway \(layout.gatewayNamespace): \(layout.gatewayAddress)")
        try self.makeNamespace(layout.gatewayNamespace, veth: layout.gatewayVeth, bridge: layout.bridge, address: layout.gatewayAddress, gateway: nil)
        for host in layout.hosts {
            progress("host \(host.name) (node \(host.nodeID)) \(layout.namespace(of: host)): \(host.address)")
            try self.makeNamespace(layout.namespace(of: host), veth: layout.veth(of: host), bridge: layout.bridge, address: host.address, gateway: layout.gatewayAddress)
        }

        progress("corosync.conf (knet, crypto aes256/sha256, token 1000 ms\(state.usesQdevice ? ", qdevice ffsplit on \(layout.gatewayAddress), TLS on" : "")) and authkey")
        let key = AuthKey.generate()
        for host in layout.hosts {
            let directory = layout.directory(of: host)
            for sub in ["etc-corosync", "etc-clevervm", "var-lib-corosync", "var-lib-clevervm", "run", "logs"] {
                try Self.makeDirectory("\(directory)/\(sub)")
            }
            try Self.write(corosyncConf, to: "\(directory)/etc-corosync/corosync.conf")
            do { try AuthKey.write(key, to: "\(directory)/etc-corosync/authkey") } catch {
                throw LabError("lab \(self.name), host \(host.name)", error.description)
            }
        }
        for sub in ["etc-corosync", "run", "logs"] { try Self.makeDirectory("\(layout.gatewayDirectory)/\(sub)") }
        // Mount points the holders bind over; on a machine without clevervm installed they do not exist yet.
        for point in ["/etc/clevervm", "/var/lib/clevervm", "/var/lib/corosync"] { try Self.makeDirectory(point) }

        progress("holder processes (mount + UTS namespaces)")
        state.holders["gw"] = try self.startHolder(namespace: layout.gatewayNamespace, hostName: "gw", directory: layout.gatewayDirectory, isGateway: true)
        for host in layout.hosts {
            state.holders[host.name] = try self.startHolder(namespace: layout.namespace(of: host), hostName: host.name, directory: layout.directory(of: host), isGateway: false)
        }
        try state.save()
        try LabWatchdog.startAll(self, config: clusterConfig, layout: layout, progress: progress)  // watchdog (issue 11)

        if state.usesQdevice {
            progress("qdevice TLS: a CA on qnetd, the cluster's certificate signed by it and imported on every host")
            try self.makeQdeviceCertificates(layout: layout, state: state, cluster: clusterConfig.name)
            progress("corosync-qnetd on the gateway (TLS required)")
            state.services["gw"] = [LabState.Service(name: "qnetd", command: ["corosync-qnetd", "-f", "-d", "-s", "req"], restartsOnCrash: true)]
            try self.startServices(of: "gw", in: &state)
        }
        for host in layout.hosts {
            progress("corosync on \(host.name)")
            state.services[host.name] = [LabState.Service(name: "corosync", command: ["corosync", "-f"])]
            if state.usesQdevice {
                state.services[host.name]?.append(LabState.Service(name: "qdevice", command: ["corosync-qdevice", "-f", "-d"]))
            }
        }
        for host in layout.hosts { try self.startServices(of: host.name, in: &state) }
        try state.save()
    }

    /// The certificate steps of corosync-qdevice-net-certutil(8), done by hand inside the lab's hosts (the tool's
    /// own `-Q` needs ssh): qnetd's NSS database with a CA, every host's database trusting it, one host's
    /// certificate request signed by qnetd for the cluster's name, imported there and its PKCS#12 copied to the
    /// other hosts.
    private func makeQdeviceCertificates(layout: LabLayout, state: LabState, cluster: String) throws(LabError) {
        func inside(_ host: String, _ script: String) throws(LabError) {
            guard let holder = state.holders[host] else { throw LabError("lab \(self.name), host \(host)", "has no holder process") }
            let result = Subprocess.run(Self.enter(holder: holder, ["sh", "-c", script]), timeout: .seconds(120))
            guard result.succeeded else { throw LabError("lab \(self.name), host \(host)", "\(script) failed: \(result.output)") }
        }
        func copy(_ from: String, _ to: String) throws(LabError) {
            do {
                if FileManager.default.fileExists(atPath: to) { try FileManager.default.removeItem(atPath: to) }
                try FileManager.default.copyItem(atPath: from, toPath: to)
            } catch {
                throw LabError("lab \(self.name)", "cannot copy \(from) to \(to): \(error)")
            }
        }
        let gateway = "\(layout.gatewayDirectory)/etc-corosync"
        let hosts = layout.hosts.map { (name: $0.name, etc: "\(layout.directory(of: $0))/etc-corosync") }
        guard let first = hosts.first else { return }
        try inside("gw", "corosync-qnetd-certutil -i >/dev/null")
        for host in hosts {
            try copy("\(gateway)/qnetd/nssdb/qnetd-cacert.crt", "\(host.etc)/qnetd-cacert.crt")
            try inside(host.name, "corosync-qdevice-net-certutil -i -c /etc/corosync/qnetd-cacert.crt >/dev/null")
        }
        try inside(first.name, "corosync-qdevice-net-certutil -r -n '\(cluster)' >/dev/null")
        try copy("\(first.etc)/qdevice/net/nssdb/qdevice-net-node.crq", "\(gateway)/qdevice-net-node.crq")
        try inside("gw", "corosync-qnetd-certutil -s -c /etc/corosync/qdevice-net-node.crq -n '\(cluster)' >/dev/null")
        try copy("\(gateway)/qnetd/nssdb/cluster-\(cluster).crt", "\(first.etc)/cluster.crt")
        try inside(first.name, "corosync-qdevice-net-certutil -M -c /etc/corosync/cluster.crt >/dev/null")
        for host in hosts.dropFirst() {
            try copy("\(first.etc)/qdevice/net/nssdb/qdevice-net-node.p12", "\(host.etc)/qdevice-net-node.p12")
            try inside(host.name, "corosync-qdevice-net-certutil -m -c /etc/corosync/qdevice-net-node.p12 >/dev/null")
        }
    }

    // MARK: Down

    /// Kills every process in the lab's namespaces, deletes the namespaces, the bridge and the veths, and the
    /// state directory. Idempotent; finds leftovers by name even when the state file is gone. Returns the
    /// problems met (empty: clean).
    @discardableResult
    public func down(progress: (String) -> Void = { _ in }) -> [String] {
        let layout = (try? self.state().layout) ?? (try? LabLayout(name: self.name, hostCount: 1))
        guard let layout else { return ["lab \(self.name): invalid name"] }
        let problems = (try? self.withLock { () throws(LabError) in self.removeEverything(layout: layout, progress: progress) }) ?? []
        // Leave nothing behind: the lock file, and the state root once no lab uses it.
        unlink("\(LabLayout.stateRoot)/\(self.name).lock")
        rmdir(LabLayout.stateRoot)
        return problems
    }

    private func removeEverything(layout: LabLayout, progress: (String) -> Void) -> [String] {
        var problems: [String] = []
        // watchdog (issue 11): the watchers live outside the namespaces; end them first, or the agents' deaths
        // below would have them power hosts off.
        LabWatchdog.stopAll(self)
        let namespaces = Self.namespaces().filter(layout.ownsNamespace)
        for namespace in namespaces {
            let killed = Subprocess.killAll(inNetworkNamespace: namespace)
            progress("namespace \(namespace): killed \(killed) processes, deleting")
            let result = Subprocess.run(["ip", "netns", "delete", namespace])
            if !result.succeeded { problems.append("ip netns delete \(namespace): \(result.output)") }
        }
        for link in Self.links().filter(layout.ownsLink) {
            progress("link \(link): deleting")
            let result = Subprocess.run(["ip", "link", "delete", link])
            if !result.succeeded, Self.links().contains(link) { problems.append("ip link delete \(link): \(result.output)") }
        }
        if FileManager.default.fileExists(atPath: self.stateDirectory) {
            progress("state \(self.stateDirectory): removing")
            do { try FileManager.default.removeItem(atPath: self.stateDirectory) } catch {
                problems.append("remove \(self.stateDirectory): \(error)")
            }
        }
        return problems
    }

    /// Names of this lab's namespaces and links that exist now.
    static func leftovers(of layout: LabLayout) -> [String] {
        Self.namespaces().filter(layout.ownsNamespace) + Self.links().filter(layout.ownsLink)
    }

    // MARK: Running commands in a host

    /// The argv that runs `command` inside `host` (its network, mount and UTS namespaces); "gw" is the gateway.
    /// The CLI execs it; tests run it.
    public func commandLine(host: String, _ command: [String]) throws(LabError) -> [String] {
        let state = try self.state()
        let place = "lab \(self.name), host \(host)"
        guard host == "gw" || state.layout.hosts.contains(where: { $0.name == host }) else {
            _ = try state.layout.host(named: host)
            throw LabError(place, "unknown host")
        }
        guard !state.poweredOff.contains(host) else { throw LabError(place, "powered off (`lab power on \(host)`)") }
        guard let holder = state.holders[host], Subprocess.isAlive(holder) else {
            throw LabError(place, "its holder process is gone; `lab power on \(host)` or `lab down` and `lab up`")
        }
        guard !command.isEmpty else { throw LabError(place, "no command to run") }
        return Self.enter(holder: holder, command)
    }

    /// Runs `command` inside `host` and returns its exit status and output (stdout and stderr together).
    public func run(host: String, _ command: [String], input: String? = nil, timeout: Duration = .seconds(30)) throws(LabError) -> LabCommandResult {
        let result = Subprocess.run(try self.commandLine(host: host, command), input: input, timeout: timeout)
        return LabCommandResult(status: result.status, output: result.output)
    }

    /// Starts a long-lived daemon inside `host`, logging to `logs/NAME.log`, and records it so that power off
    /// kills it and power on starts it again (after corosync and qdevice). Returns its pid.
    @discardableResult
    public func startService(host: String, name: String, command: [String]) throws(LabError) -> Int32 {
        try self.withLock { () throws(LabError) in
            var state = try self.state()
            _ = try self.commandLine(host: host, command)
            state.services[host, default: []].removeAll { $0.name == name }
            state.services[host, default: []].append(LabState.Service(name: name, command: command))
            try self.startServices(of: host, in: &state, only: name)
            try state.save()
            return state.services[host]?.last?.pid ?? 0
        }
    }

    /// Stops (SIGTERM, then SIGKILL after 5 s) and forgets a service started with `startService`.
    public func stopService(host: String, name: String) throws(LabError) {
        try self.withLock { () throws(LabError) in
            var state = try self.state()
            if let service = state.services[host]?.first(where: { $0.name == name }) { Self.terminate(service) }
            state.services[host]?.removeAll { $0.name == name }
            try state.save()
        }
    }

    /// Crashes a service of `host` (SIGKILL, nothing restarts it): e.g. the agent, to see that the cluster does not
    /// take a host whose agent died for a dead host.
    public func crashService(host: String, name: String) throws(LabError) {
        try self.withLock { () throws(LabError) in
            var state = try self.state()
            guard let index = state.services[host]?.firstIndex(where: { $0.name == name }) else {
                throw LabError("lab \(self.name), host \(host)", "has no service \(name) (services: \((state.services[host] ?? []).map(\.name).joined(separator: ", ")))")
            }
            if let pid = state.services[host]![index].pid, pid > 0 {
                state.services[host]![index].signal(SIGKILL)
                let deadline = ContinuousClock.now.advanced(by: .seconds(5))
                while Subprocess.isAlive(pid), ContinuousClock.now < deadline { usleep(10_000) }
            }
            state.services[host]![index].pid = nil
            try state.save()
        }
    }

    /// Starts a service of `host` again (after `crashService`, or to restart it: a running one is stopped first).
    public func restartService(host: String, name: String) throws(LabError) {
        try self.withLock { () throws(LabError) in
            var state = try self.state()
            guard let service = state.services[host]?.first(where: { $0.name == name }) else {
                throw LabError("lab \(self.name), host \(host)", "has no service \(name)")
            }
            if let pid = service.pid, pid > 0, Subprocess.isAlive(pid) { Self.terminate(service) }
            try self.startServices(of: host, in: &state, only: name)
            try state.save()
        }
    }

    // MARK: Power

    /// Kills every process of `host` (everything in its network namespace: corosync, qdevice, the agent, any
    /// `exec`), which also drops its mount namespace, and takes its link down so it no longer answers on the
    /// network — a pulled plug.
    public func powerOff(_ host: String) throws(LabError) {
        try self.withLock { () throws(LabError) in
            var state = try self.state()
            let entry = try state.layout.host(named: host)
            // The host's end of its cable: works from the machine and from inside another host alike.
            _ = Subprocess.run(["ip", "netns", "exec", state.layout.namespace(of: entry), "ip", "link", "set", "eth0", "down"])
            Subprocess.killAll(inNetworkNamespace: state.layout.namespace(of: entry))
            state.poweredOff.insert(host)
            state.holders[host] = nil
            for index in state.services[host, default: []].indices { state.services[host]?[index].pid = nil }
            try state.save()
        }
    }

    /// Boots a powered-off host: link up, a fresh /run and /dev/shm, then its services in order. Returns once
    /// corosync answers locally (not waiting for quorum).
    public func powerOn(_ host: String, progress: (String) -> Void = { _ in }) throws(LabError) {
        try self.withLock { () throws(LabError) in
            var state = try self.state()
            let entry = try state.layout.host(named: host)
            guard state.poweredOff.contains(host) else { throw LabError("lab \(self.name), host \(host)", "already on") }
            let directory = state.layout.directory(of: entry)
            // A fresh /run, as after a reboot; the two mount points stay (never descend into them).
            for item in (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/run")) ?? []
            where item != "clevervm-lab" && item != "netns" {
                try? FileManager.default.removeItem(atPath: "\(directory)/run/\(item)")
            }
            try Self.ip(["netns", "exec", state.layout.namespace(of: entry), "ip", "link", "set", "eth0", "up"])
            progress("\(host): holder")
            state.holders[host] = try self.startHolder(namespace: state.layout.namespace(of: entry), hostName: host, directory: directory, isGateway: false)
            state.poweredOff.remove(host)
            try state.save()
            try LabWatchdog.restart(self, host: host)  // watchdog (issue 11): /run was wiped; a fresh FIFO and watcher
            progress("\(host): \(state.services[host, default: []].map(\.name).joined(separator: ", "))")
            try self.startServices(of: host, in: &state)
            try state.save()
        }
    }

    // MARK: Network faults

    /// Cuts all traffic between every host of `hosts` and every host of `others` (default: all other hosts;
    /// "gw" may be named to cut the gateway, qnetd included). Adds to earlier partitions; `heal` removes all.
    public func partition(_ hosts: [String], from others: [String]? = nil) throws(LabError) {
        try self.withLock { () throws(LabError) in
            var state = try self.state()
            let layout = state.layout
            let place = "lab \(self.name): partition"
            let sideA = Set(hosts)
            let sideB = Set(others ?? layout.hosts.map(\.name).filter { !sideA.contains($0) })
            guard !sideA.isEmpty, !sideB.isEmpty else { throw LabError(place, "both sides need at least one host") }
            guard sideA.isDisjoint(with: sideB) else {
                throw LabError(place, "a host cannot be on both sides: \(sideA.intersection(sideB).sorted().joined(separator: ", "))")
            }
            for name in sideA.union(sideB) where name != "gw" { _ = try layout.host(named: name) }
            let addresses = { (names: Set<String>) throws(LabError) -> Set<String> in
                var result: Set<String> = []
                for name in names { result.insert(name == "gw" ? layout.gatewayAddress : try layout.host(named: name).address) }
                return result
            }
            let addressesA = try addresses(sideA)
            let addressesB = try addresses(sideB)
            for name in sideA { state.blocked[name, default: []].formUnion(addressesB) }
            for name in sideB { state.blocked[name, default: []].formUnion(addressesA) }
            for name in sideA.union(sideB).sorted() {
                try self.loadFilter(NetworkFilter.partition(blocking: Array(state.blocked[name] ?? [])), host: name, layout: layout)
            }
            try state.save()
        }
    }

    /// Removes every partition.
    public func heal() throws(LabError) {
        try self.withLock { () throws(LabError) in
            var state = try self.state()
            for name in ["gw"] + state.layout.hosts.map(\.name) {
                try self.loadFilter(NetworkFilter.partition(blocking: []), host: name, layout: state.layout)
            }
            state.blocked = [:]
            try state.save()
        }
    }

    /// `host` can no longer ping the gateway (ICMP echo dropped), so its `ping` attribute and its qdevice
    /// heuristics fail; its corosync and qnetd traffic still flows.
    public func cutPing(_ host: String) throws(LabError) { try self.setPing(host, cut: true) }

    public func restorePing(_ host: String) throws(LabError) { try self.setPing(host, cut: false) }

    /// `host`'s replication links break (TCP on the volumes' ports dropped); Corosync, qnetd and ping go on.
    public func cutReplication(_ host: String) throws(LabError) { try self.setReplication(host, cut: true) }

    public func restoreReplication(_ host: String) throws(LabError) { try self.setReplication(host, cut: false) }

    private func setReplication(_ host: String, cut: Bool) throws(LabError) {
        try self.withLock { () throws(LabError) in
            let state = try self.state()
            _ = try state.layout.host(named: host)
            try self.loadFilter(NetworkFilter.replication(cut: cut), host: host, layout: state.layout)
        }
    }

    private func setPing(_ host: String, cut: Bool) throws(LabError) {
        try self.withLock { () throws(LabError) in
            var state = try self.state()
            _ = try state.layout.host(named: host)
            try self.loadFilter(NetworkFilter.ping(target: state.layout.gatewayAddress, cut: cut), host: host, layout: state.layout)
            if cut { state.pingCut.insert(host) } else { state.pingCut.remove(host) }
            try state.save()
        }
    }

    private func loadFilter(_ script: String, host: String, layout: LabLayout) throws(LabError) {
        let namespace = host == "gw" ? layout.gatewayNamespace : layout.namespace(of: try layout.host(named: host))
        let result = Subprocess.run(["ip", "netns", "exec", namespace, "nft", "-f", "-"], input: script)
        guard result.succeeded else {
            throw LabError("lab \(self.name), host \(host)", "nft failed: \(result.output)", details: script)
        }
    }

    // MARK: Quorum and status

    /// corosync-quorumtool's view from inside `host`; nil when corosync does not answer there.
    public func quorum(of host: String) -> HostQuorum? {
        guard let result = try? self.run(host: host, ["corosync-quorumtool", "-s"], timeout: .seconds(5)),
            result.status != 1 || result.output.contains("Quorate:")
        else { return nil }
        return HostQuorum(parsing: result.output)
    }

    /// Waits until each of `hosts` is quorate with every expected vote present (all nodes, and the qdevice's).
    public func waitUntilQuorate(hosts: [String], timeout: Duration = .seconds(60), progress: (String) -> Void = { _ in }) throws(LabError) {
        let state = try self.state()
        let clock = ContinuousClock()
        let start = clock.now
        var pending = hosts
        let allVotes = state.layout.hosts.count - state.poweredOff.count + (state.usesQdevice ? 1 : 0)
        while !pending.isEmpty {
            pending = pending.filter { host in
                // Every vote present: all nodes in the ring and, with a qdevice, its vote cast too.
                guard let quorum = self.quorum(of: host), quorum.quorate, quorum.totalVotes == quorum.expectedVotes,
                    quorum.totalVotes >= allVotes
                else { return true }
                if state.usesQdevice, !quorum.flags.contains("Qdevice") { return true }
                let elapsed = (clock.now - start).formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))
                progress("\(host): quorate, votes \(quorum.totalVotes)/\(quorum.expectedVotes) (\(elapsed))")
                return false
            }
            if pending.isEmpty { break }
            guard clock.now - start < timeout else {
                throw LabError("lab \(self.name)", "not quorate after \(timeout): \(pending.joined(separator: ", "))")
            }
            usleep(200_000)
        }
    }

    /// Everything `lab status` shows.
    public func status() throws(LabError) -> LabStatus {
        let state = try self.state()
        let layout = state.layout
        var hosts: [LabStatus.HostStatus] = []
        for (name, address) in [("gw", layout.gatewayAddress)] + layout.hosts.map({ ($0.name, $0.address) }) {
            let holder = state.holders[name]
            let on = !state.poweredOff.contains(name) && holder.map(Subprocess.isAlive) == true
            let services = (state.services[name] ?? []).map { service in
                LabStatus.ServiceStatus(name: service.name, pid: service.pid, running: service.pid.map(Subprocess.isAlive) ?? false)
            }
            let blocked = (state.blocked[name] ?? []).sorted().map { address in
                address == layout.gatewayAddress ? "gw" : layout.hosts.first { $0.address == address }?.name ?? address
            }
            hosts.append(
                LabStatus.HostStatus(
                    name: name, address: address, poweredOn: on, services: services,
                    quorum: on && name != "gw" ? self.quorum(of: name) : nil,
                    blockedPeers: blocked, pingCut: state.pingCut.contains(name)))
        }
        return LabStatus(name: self.name, bridge: layout.bridge, stateDirectory: self.stateDirectory, hosts: hosts)
    }

    // MARK: Pieces

    private func makeNamespace(_ namespace: String, veth: String, bridge: String, address: String, gateway: String?) throws(LabError) {
        try Self.ip(["netns", "add", namespace])
        try Self.ip(["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace])
        try Self.ip(["link", "set", veth, "master", bridge, "up"])
        let inside = ["ip", "netns", "exec", namespace]
        // A host's address sits on bridge lan0 (eth0 its uplink port), as on a host whose VMs join the LAN:
        // a VM with `bridge: lan0` is then on the lab network with its own address.
        let hostDevice = gateway == nil ? "eth0" : LabLayout.hostBridge
        // And a host-internal bridge nat0, the same address and MAC on every host, for a VM behind a forwarded
        // floating address (`forward-to`): after a move the guest's gateway is the same, on the new host.
        let hostBridge: [[String]] = gateway == nil ? [] : [
            ["ip", "link", "add", LabLayout.hostBridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"],
            ["ip", "link", "set", "eth0", "master", LabLayout.hostBridge],
            ["ip", "link", "set", LabLayout.hostBridge, "up"],
            ["ip", "link", "add", LabLayout.internalBridge, "address", LabLayout.internalBridgeMAC, "type", "bridge",
             "stp_state", "0", "forward_delay", "0"],
            ["ip", "address", "add", LabLayout.internalGateway, "dev", LabLayout.internalBridge],
            ["ip", "link", "set", LabLayout.internalBridge, "up"],
        ]
        for command in [
            ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"],
            ["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"],
            ["ip", "link", "set", "lo", "up"],
        ] + hostBridge + [
            ["ip", "address", "add", "\(address)/\(LabLayout.prefixLength)", "dev", hostDevice],
            ["ip", "link", "set", "eth0", "up"],
        ] + (gateway.map { [["ip", "route", "add", "default", "via", $0]] } ?? []) {
            let result = Subprocess.run(inside + command)
            guard result.succeeded else {
                throw LabError("lab \(self.name), namespace \(namespace)", "\(command.joined(separator: " ")) failed: \(result.output)")
            }
        }
    }

    /// Starts the process that holds a host's mount and UTS namespaces: it binds the host's own directories over
    /// the shared ones, mounts a fresh /dev/shm, names the host, and sleeps. Returns its pid once the mounts are done.
    private func startHolder(namespace: String, hostName: String, directory: String, isGateway: Bool) throws(LabError) -> Int32 {
        let binds = isGateway
            ? [("etc-corosync", "/etc/corosync")]
            : [("etc-corosync", "/etc/corosync"), ("etc-clevervm", "/etc/clevervm"),
               ("var-lib-corosync", "/var/lib/corosync"), ("var-lib-clevervm", "/var/lib/clevervm")]
        var script = "set -e\n"
        for (source, target) in binds { script += "mount --bind '\(directory)/\(source)' \(target)\n" }
        script += "mount -t tmpfs -o mode=1777,size=256m labshm /dev/shm\n"
        script += "hostname \(hostName)\n"
        // The lab's state and the named network namespaces stay visible inside the host, so lab operations (the
        // lab fence agent) work from within a host too. Bound into the host's run directory first, then the whole
        // tree over /run — last, because the host directories live under /run/clevervm-lab.
        script += "mkdir -p '\(directory)/run/clevervm-lab' '\(directory)/run/netns'\n"
        script += "mount --rbind \(LabLayout.stateRoot) '\(directory)/run/clevervm-lab'\n"
        script += "mount --rbind /run/netns '\(directory)/run/netns'\n"
        script += "mount --rbind '\(directory)/run' /run\n"
        script += "mkdir -p /run/corosync-qdevice /run/corosync-qnetd /run/lock\n"
        script += ": > /run/lab-holder-ready\n"
        script += "exec sleep infinity\n"
        let readyFile = "\(directory)/run/lab-holder-ready"
        try? FileManager.default.removeItem(atPath: readyFile)
        let pid = try Self.spawnDaemon(
            ["ip", "netns", "exec", namespace, "unshare", "--mount", "--uts", "--propagation", "private", "sh", "-c", script],
            log: "\(directory)/logs/holder.log")
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while !FileManager.default.fileExists(atPath: readyFile) {
            guard Subprocess.isAlive(pid), ContinuousClock.now < deadline else {
                throw LabError(
                    "lab \(self.name), host \(hostName)", "the holder process did not come up",
                    details: Subprocess.tail("\(directory)/logs/holder.log"))
            }
            usleep(10_000)
        }
        return pid
    }

    /// Starts the host's services in order (or just `only`), each after the one before answers.
    private func startServices(of host: String, in state: inout LabState, only: String? = nil) throws(LabError) {
        guard let holder = state.holders[host] else { throw LabError("lab \(self.name), host \(host)", "has no holder process") }
        let logs = self.logDirectory(of: host)
        for index in state.services[host, default: []].indices {
            let service = state.services[host]![index]
            if let only, service.name != only { continue }
            let log = "\(logs)/\(service.name).log"
            let pid = try Self.spawnDaemon(Self.enter(holder: holder, service.command), log: log)
            state.services[host]![index].pid = pid
            if service.name == "corosync" {
                try self.waitForCorosync(host: host, holder: holder, pid: pid, log: log)
            } else {
                usleep(100_000)
                guard Subprocess.isAlive(pid) else {
                    throw LabError("lab \(self.name), host \(host)", "\(service.name) exited at start", details: Subprocess.tail(log))
                }
            }
        }
    }

    private func waitForCorosync(host: String, holder: Int32, pid: Int32, log: String) throws(LabError) {
        let deadline = ContinuousClock.now.advanced(by: .seconds(15))
        while true {
            guard Subprocess.isAlive(pid) else {
                throw LabError("lab \(self.name), host \(host)", "corosync exited at start", details: Subprocess.tail(log))
            }
            let result = Subprocess.run(Self.enter(holder: holder, ["corosync-quorumtool", "-s"]), timeout: .seconds(5))
            if result.output.contains("Quorate:") { return }
            guard ContinuousClock.now < deadline else {
                throw LabError("lab \(self.name), host \(host)", "corosync did not answer within 15 s", details: Subprocess.tail(log))
            }
            usleep(50_000)
        }
    }

    private func logTails(layout: LabLayout) -> String {
        var text = ""
        for host in ["gw"] + layout.hosts.map(\.name) {
            let directory = self.logDirectory(of: host)
            for file in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() {
                text += "--- \(host) \(file) ---\n" + Subprocess.tail("\(directory)/\(file)") + "\n"
            }
        }
        return text
    }

    static func enter(holder: Int32, _ command: [String]) -> [String] {
        ["nsenter", "--target", String(holder), "--mount", "--net", "--uts", "--"] + command
    }

    /// SIGTERM, then SIGKILL after 5 s; `group`: to the process group `pid` leads (a service that restarts on crash:
    /// the loop and its daemon).
    static func terminate(_ pid: Int32, group: Bool = false) {
        let target = group ? -pid : pid
        kill(target, SIGTERM)
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        while Subprocess.isAlive(pid), ContinuousClock.now < deadline { usleep(20_000) }
        if Subprocess.isAlive(pid) { kill(target, SIGKILL) }
    }

    static func terminate(_ service: LabState.Service) {
        guard let pid = service.pid, pid > 0 else { return }
        Self.terminate(pid, group: service.restartsOnCrash == true)
    }

    static func ip(_ arguments: [String]) throws(LabError) {
        let result = Subprocess.run(["ip"] + arguments)
        guard result.succeeded else { throw LabError("ip \(arguments.joined(separator: " "))", result.output.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    static func namespaces() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []).sorted()
    }

    static func links() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/net")) ?? []).sorted()
    }

    static func makeDirectory(_ path: String) throws(LabError) {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw LabError("directory \(path)", "cannot create: \(error)")
        }
    }

    static func write(_ text: String, to path: String) throws(LabError) {
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw LabError("file \(path)", "cannot write: \(error)")
        }
    }

    /// Serialises lab operations across processes (flock on /run/clevervm-lab/NAME.lock).
    private func withLock<T>(_ body: () throws(LabError) -> T) throws(LabError) -> T {
        try Self.makeDirectory(LabLayout.stateRoot)
        let fd = open("\(LabLayout.stateRoot)/\(self.name).lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LabError("lab \(self.name)", "cannot open lock file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}

/// A command run inside a lab host.
public struct LabCommandResult: Hashable, Sendable {
    public var status: Int32
    public var output: String
    public var succeeded: Bool { self.status == 0 }
}
