/// Quorum as `corosync-quorumtool -s` reports it inside one host.
public struct HostQuorum: Hashable, Sendable, Codable {
    public var quorate: Bool
    public var nodeID: Int?
    public var expectedVotes: Int
    public var totalVotes: Int
    /// Votes needed.
    public var quorum: Int
    /// e.g. ["Quorate", "Qdevice"].
    public var flags: [String]
    /// Node ids listed under "Membership information" (the qdevice's pseudo-node 0 left out). corosync 3.1
    /// keeps listing a node there for a while after it left: count `totalVotes`, or use the Corosync binding.
    public var members: [Int]

    /// Parses the text; missing fields read as 0 / empty.
    public init(parsing text: String) {
        var fields: [String: String] = [:]
        var members: [Int] = []
        var inMembership = false
        for line in text.split(separator: "\n") {
            if line.hasPrefix("Membership information") { inMembership = true; continue }
            if inMembership {
                let columns = line.split(separator: " ")
                if let id = columns.first.flatMap({ Int($0) }), id != 0 { members.append(id) }
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            fields[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        self.quorate = fields["Quorate"] == "Yes"
        self.nodeID = fields["Node ID"].flatMap { Int($0) }
        self.expectedVotes = fields["Expected votes"].flatMap { Int($0) } ?? 0
        self.totalVotes = fields["Total votes"].flatMap { Int($0) } ?? 0
        self.quorum = fields["Quorum"].flatMap { Int($0.split(separator: " ").first ?? "") } ?? 0
        self.flags = (fields["Flags"] ?? "").split(separator: " ").map(String.init)
        self.members = members
    }
}

/// What `lab status` shows: per host (and the gateway) power, services, quorum and network faults.
public struct LabStatus: Hashable, Sendable, Codable, CustomStringConvertible {
    public struct ServiceStatus: Hashable, Sendable, Codable {
        public var name: String
        public var pid: Int32?
        public var running: Bool
    }

    public struct HostStatus: Hashable, Sendable, Codable {
        public var name: String
        public var address: String
        public var poweredOn: Bool
        public var services: [ServiceStatus]
        public var quorum: HostQuorum?
        /// Hosts ("gw" for the gateway) this host cannot reach because of `partition`.
        public var blockedPeers: [String]
        public var pingCut: Bool
    }

    public var name: String
    public var bridge: String
    public var stateDirectory: String
    public var hosts: [HostStatus]

    public var description: String {
        var lines = ["lab \(self.name): bridge \(self.bridge), state \(self.stateDirectory)"]
        for host in self.hosts {
            var parts = [host.name.padding(toLength: 8, withPad: " ", startingAt: 0), host.address.padding(toLength: 15, withPad: " ", startingAt: 0)]
            parts.append(host.poweredOn ? "on " : "off")
            parts.append(
                host.services.map { "\($0.name) \($0.running ? "up" : "down")\($0.pid.map { " (\($0))" } ?? "")" }.joined(separator: ", "))
            if let quorum = host.quorum {
                parts.append(
                    "\(quorum.quorate ? "quorate" : "NOT quorate") votes \(quorum.totalVotes)/\(quorum.expectedVotes)\(quorum.flags.contains("Qdevice") ? " (qdevice)" : "")")
            } else if host.poweredOn && host.name != "gw" {
                parts.append("corosync not answering")
            }
            if !host.blockedPeers.isEmpty { parts.append("partitioned from \(host.blockedPeers.joined(separator: ","))") }
            if host.pingCut { parts.append("ping cut") }
            lines.append(parts.joined(separator: "  "))
        }
        return lines.joined(separator: "\n")
    }
}
