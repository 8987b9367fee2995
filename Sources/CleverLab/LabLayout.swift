import CleverModel

/// Every name and address of one lab, derived from the lab's name so that labs with different names never
/// collide: network namespaces `NAME-gw` and `NAME-HOST`, bridge `NAMEbr0`, root-side veths `NAMEv0` (gateway)
/// `NAMEv1`… (hosts), state in /run/clevervm-lab/NAME. Addresses come from 198.51.100.0/24 (TEST-NET-2):
/// gateway .1, hosts .11, .12, …  Pure.
public struct LabLayout: Hashable, Sendable, Codable {
    public static let defaultName = "clevervm"
    public static let stateRoot = "/run/clevervm-lab"
    public static let hostNamePool = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    public static let subnetPrefix = "198.51.100."
    public static let prefixLength = 24
    /// The bridge inside each lab host that holds its address and that VMs join (`bridge: lan0`).
    public static let hostBridge = "lan0"
    /// The host-internal bridge for VMs behind a forwarded floating address: 198.51.100.240/29 with this host
    /// as .241, identical (address and MAC) on every host.
    public static let internalBridge = "nat0"
    public static let internalGateway = "198.51.100.241/29"
    public static let internalBridgeMAC = "02:00:c6:33:64:f1"

    public struct Host: Hashable, Sendable, Codable {
        public var name: String
        /// Corosync node id.
        public var nodeID: Int
        public var address: String
        /// Position in the lab (1-based; 0 is the gateway): names the veth.
        public var index: Int
    }

    public var name: String
    public var hosts: [Host]

    /// A lab of `hostCount` hosts named alpha, bravo, … with node ids 1, 2, …
    public init(name: String = LabLayout.defaultName, hostCount: Int) throws(LabError) {
        try Self.validate(name: name)
        guard (1...Self.hostNamePool.count).contains(hostCount) else {
            throw LabError("lab \(name)", "a lab has 1 to \(Self.hostNamePool.count) hosts, not \(hostCount)")
        }
        self.name = name
        self.hosts = (0..<hostCount).map { index in
            Host(name: Self.hostNamePool[index], nodeID: index + 1, address: "\(Self.subnetPrefix)\(11 + index)", index: index + 1)
        }
    }

    /// A lab whose hosts are the config's nodes: same names and ids, first address in 198.51.100.0/24.
    public init(name: String = LabLayout.defaultName, config: ClusterConfig) throws(LabError) {
        try Self.validate(name: name)
        guard (1...Self.hostNamePool.count).contains(config.nodes.count) else {
            throw LabError("lab \(name)", "a lab has 1 to \(Self.hostNamePool.count) hosts; the config has \(config.nodes.count) nodes")
        }
        var hosts: [Host] = []
        for (position, node) in config.nodes.enumerated() {
            let place = "lab \(name), node \(node.name)"
            guard Self.isSimpleName(node.name), node.name != "gw", node.name.utf8.count <= 20 else {
                throw LabError(place, "node names in a lab must be 1 to 20 lowercase letters or digits, and not \"gw\"")
            }
            guard let address = node.addresses.first, address.hasPrefix(Self.subnetPrefix),
                let last = Int(address.dropFirst(Self.subnetPrefix.count)), (2...239).contains(last)
            else {
                throw LabError(place, "its first address must be in \(Self.subnetPrefix)2 to \(Self.subnetPrefix)239 (.1 is the gateway, .240/29 the hosts' internal VM network), got \(node.addresses.first ?? "none")")
            }
            hosts.append(Host(name: node.name, nodeID: node.id, address: address, index: position + 1))
        }
        self.name = name
        self.hosts = hosts
    }

    static func validate(name: String) throws(LabError) {
        guard Self.isSimpleName(name), (1...10).contains(name.utf8.count) else {
            throw LabError("lab \(name)", "a lab name is 1 to 10 lowercase letters or digits (it prefixes interface names, at most 15 bytes)")
        }
    }

    static func isSimpleName(_ text: String) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) }
    }

    public var bridge: String { "\(self.name)br0" }
    public var gatewayNamespace: String { "\(self.name)-gw" }
    public var gatewayAddress: String { "\(Self.subnetPrefix)1" }
    public var gatewayVeth: String { "\(self.name)v0" }
    public func namespace(of host: Host) -> String { "\(self.name)-\(host.name)" }
    public func veth(of host: Host) -> String { "\(self.name)v\(host.index)" }
    public var stateDirectory: String { "\(Self.stateRoot)/\(self.name)" }
    public func directory(of host: Host) -> String { "\(self.stateDirectory)/hosts/\(host.name)" }
    public var gatewayDirectory: String { "\(self.stateDirectory)/gateway" }

    public func host(named name: String) throws(LabError) -> Host {
        guard let host = self.hosts.first(where: { $0.name == name }) else {
            throw LabError("lab \(self.name)", "no host named \"\(name)\" (hosts: \(self.hosts.map(\.name).joined(separator: ", ")))")
        }
        return host
    }

    /// The cluster config the lab runs when none is given: every host a node, and for two hosts a qdevice
    /// on the gateway with the gateway as ping target.
    public func defaultClusterConfig() -> ClusterConfig {
        ClusterConfig(
            name: self.name,
            nodes: self.hosts.map { NodeConfig(name: $0.name, id: $0.nodeID, addresses: [$0.address]) },
            quorum: self.hosts.count == 2
                ? QuorumConfig(qdeviceHost: self.gatewayAddress, algorithm: "ffsplit", pingTargets: [self.gatewayAddress])
                : nil)
    }

    /// Namespace names of this lab among `names` (leftovers of a crashed lab included).
    public func ownsNamespace(_ namespace: String) -> Bool { namespace.hasPrefix("\(self.name)-") }

    /// Root-namespace links of this lab among `names`: the bridge and `NAMEv<digits>`.
    public func ownsLink(_ link: String) -> Bool {
        if link == self.bridge { return true }
        let prefix = "\(self.name)v"
        guard link.hasPrefix(prefix) else { return false }
        let rest = link.dropFirst(prefix.count)
        return !rest.isEmpty && rest.allSatisfy(\.isNumber)
    }
}

/// A lab operation failed: names the lab (and host) and says what to do.
public struct LabError: Error, Hashable, Sendable, CustomStringConvertible {
    public var place: String
    public var message: String
    /// Relevant log tails (daemon logs) to show with the error.
    public var details: String?

    public init(_ place: String, _ message: String, details: String? = nil) {
        self.place = place
        self.message = message
        self.details = details
    }

    public var description: String {
        var text = "\(self.place): \(self.message)"
        if let details, !details.isEmpty { text += "\n" + details }
        return text
    }
}
