#if canImport(Glibc)
import Glibc
#endif
import CleverSystem
import CleverVolume
import Foundation

/// Lab hosts for volume tests: one network namespace per host (`PREFIX-a`, `PREFIX-b`, …) whose `eth0` is one end
/// of a veth pair; the other end (`PREFIXv1`, …) is plugged into bridge `PREFIXbr0` in the root namespace, which has
/// no address and no uplink. Addresses come from 198.51.100.0/24 (TEST-NET-2).
///
/// A host can be powered off: its cable is pulled first (the root-side veth goes down, so nothing the dying
/// host's kernel sends — FIN, RST — reaches anyone), then every process in its namespace is SIGKILLed and the
/// namespace is deleted with all its sockets. `boot` makes it again. What the model does not cover: the host's
/// page cache (one kernel serves every lab host, so data written but not yet synced survives a "power-off").
final class LabNetwork: @unchecked Sendable {
    // Safety: used by one test at a time, from its own thread.
    struct Host {
        var namespace: String
        var cable: String
        var address: String
        /// The NIC's MAC, the same every time the host boots (it is the hardware's): peers' ARP caches stay right.
        var mac: String
    }

    let prefix: String
    let hosts: [String: Host]
    var bridge: String { "\(self.prefix)br0" }

    /// `addresses` maps each node name to its address; hosts are lettered in the order of their names.
    init(prefix: String, addresses: [String: String]) throws {
        self.prefix = prefix
        var hosts: [String: Host] = [:]
        for (index, node) in addresses.keys.sorted().enumerated() {
            let letter = String(UnicodeScalar(UInt8(ascii: "a") + UInt8(index)))
            hosts[node] = Host(namespace: "\(prefix)-\(letter)", cable: "\(prefix)v\(index + 1)", address: addresses[node]!,
                               mac: String(format: "02:c9:6b:00:00:%02x", index + 1))
        }
        self.hosts = hosts
        // Leftovers of a run that died before its teardown carry our prefix: nobody else uses it.
        self.tearDown()
        do {
            try Self.ip(["link", "add", self.bridge, "type", "bridge"])
            try Self.ip(["link", "set", self.bridge, "up"])
            for node in hosts.keys.sorted() { try self.boot(node) }
        } catch {
            self.tearDown()
            throw error
        }
    }

    func host(_ node: String) -> Host {
        guard let host = self.hosts[node] else { preconditionFailure("no lab host \(node) in \(self.hosts.keys.sorted())") }
        return host
    }

    /// `arguments` run inside the node's namespace (`ip netns exec` execs in place: the pid is the program's).
    func inside(_ node: String, _ arguments: [String]) -> [String] {
        ["ip", "netns", "exec", self.host(node).namespace] + arguments
    }

    /// Makes the node's namespace, its cable into the bridge and its address (a host powering on).
    func boot(_ node: String) throws {
        let host = self.host(node)
        try Self.ip(["netns", "add", host.namespace])
        try Self.ip(["link", "add", host.cable, "type", "veth", "peer", "name", "eth0", "address", host.mac, "netns", host.namespace])
        try Self.ip(["link", "set", host.cable, "master", self.bridge, "up"])
        try Self.ip(["-n", host.namespace, "link", "set", "lo", "up"])
        try Self.ip(["-n", host.namespace, "addr", "add", "\(host.address)/24", "dev", "eth0"])
        try Self.ip(["-n", host.namespace, "link", "set", "eth0", "up"])
    }

    /// Pulls the node's cable: from now on it neither sends nor receives anything.
    func cutCable(_ node: String) throws {
        try Self.ip(["link", "set", self.host(node).cable, "down"])
    }

    /// Power-off: the cable is cut first; then `killProcesses` SIGKILLs (and reaps) the processes the caller
    /// started there, by pid, and anything left in the namespace is SIGKILLed too (it is all ours: the namespace
    /// is); then the namespace goes with its sockets and the veth pair. Returns how many leftovers died.
    @discardableResult
    func powerOff(_ node: String, killProcesses: () -> Void) throws -> Int {
        let host = self.host(node)
        try self.cutCable(node)
        killProcesses()
        let killed = Subprocess.killAll(inNetworkNamespace: host.namespace)
        try Self.ip(["netns", "delete", host.namespace])
        // The root-side end goes with its peer; make sure, so `boot` can make it again.
        if Self.linkExists(host.cable) { _ = Subprocess.run(["ip", "link", "delete", host.cable]) }
        return killed
    }

    /// Kills what runs in our namespaces and deletes them, the cables and the bridge. Safe to call twice.
    func tearDown() {
        for host in self.hosts.values {
            if FileManager.default.fileExists(atPath: "/run/netns/\(host.namespace)") {
                Subprocess.killAll(inNetworkNamespace: host.namespace)
                _ = Subprocess.run(["ip", "netns", "delete", host.namespace])
            }
            if Self.linkExists(host.cable) { _ = Subprocess.run(["ip", "link", "delete", host.cable]) }
        }
        if Self.linkExists(self.bridge) { _ = Subprocess.run(["ip", "link", "delete", self.bridge]) }
    }

    static func linkExists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: "/sys/class/net/\(name)")
    }

    static func ip(_ arguments: [String]) throws {
        let result = Subprocess.run(["ip"] + arguments)
        guard result.succeeded else {
            throw VolumeError("ip \(arguments.joined(separator: " ")) failed: \(result.output)")
        }
    }
}
