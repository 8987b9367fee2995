/// Whether this host's qdevice votes (the two-host tie-breaker, corosync-qdevice talking to corosync-qnetd), as
/// `corosync-quorumtool -s` shows it in the Qdevice column of this node's line (`A,V,NMW`: alive, voting, not
/// master-wins; `NV`: not voting; `NR`: not registered, corosync-qdevice is not running). A quorate host whose qdevice
/// does not vote has no tie-breaker: quorum rests on both hosts being up and in touch, so the next host failure or
/// split stops everything everywhere. Status says so while it is still only a warning.
public struct TieBreakerVote: Hashable, Sendable, Codable {
    /// The qnetd host of the config.
    public var qnetd: String
    public var voting: Bool
    /// The Qdevice column as corosync-quorumtool printed it (`A,NV,NMW`), or nil when it printed none.
    public var flags: String?

    public init(qnetd: String, voting: Bool, flags: String?) {
        self.qnetd = qnetd
        self.voting = voting
        self.flags = flags
    }

    /// Reads `corosync-quorumtool -s` output; nil when it has no membership line for this node.
    public init?(qnetd: String, quorumTool output: String) {
        var inMembership = false
        for line in output.split(separator: "\n") {
            if line.hasPrefix("Membership information") {
                inMembership = true
                continue
            }
            guard inMembership, line.hasSuffix("(local)") else { continue }
            // "    1          1    A,V,NMW alpha (local)"; without a qdevice the column is absent.
            let columns = line.split(separator: " ")
            let column = columns.count >= 4 ? String(columns[2]) : ""
            let flags = !column.isEmpty && column.allSatisfy { "ANVMWR,".contains($0) } ? column : nil
            let voting = flags.map { $0.split(separator: ",").contains("V") } ?? false
            self.init(qnetd: qnetd, voting: voting, flags: flags)
            return
        }
        return nil
    }

    /// The attention line of `status` when the tie-breaker does not vote for this host.
    public func problem(localNode: String) -> String? {
        guard !self.voting else { return nil }
        let why = self.flags?.split(separator: ",").contains("NR") == true
            ? "corosync-qdevice is not running here" : "its qdevice is not connected to corosync-qnetd on \(self.qnetd)"
        return "the tie-breaker does not vote for \(localNode) (\(why)): quorum now needs both hosts up and in touch, so if "
            + "either fails or they lose each other, nothing runs anywhere. Check `corosync-qdevice-tool -s` here and "
            + "corosync-qnetd on \(self.qnetd)"
    }
}
