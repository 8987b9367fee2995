/// nftables rule sets the lab loads inside a host's network namespace. Two tables, so that `heal` and
/// `restore-ping` each remove only their own: `clevervm_partition` drops all IP traffic to and from the given
/// peers; `clevervm_ping` drops ICMP echo to the gateway (the ping target) but keeps the rest, qnetd included.
/// Pure text.
public enum NetworkFilter {
    public static let partitionTable = "clevervm_partition"
    public static let pingTable = "clevervm_ping"
    public static let replicationTable = "clevervm_replication"
    /// The TCP ports the lab's replicated volumes use (`port:` of each volume; 7788 is the console relay's).
    public static let replicationPorts = 7789...7999

    /// Replaces the partition table: drop everything from and to `peers` (empty: remove the table).
    public static func partition(blocking peers: [String]) -> String {
        var script = Self.reset(Self.partitionTable)
        guard !peers.isEmpty else { return script }
        let set = peers.sorted().joined(separator: ", ")
        script += """
            table inet \(Self.partitionTable) {
                chain input {
                    type filter hook input priority 0; policy accept;
                    ip saddr { \(set) } drop
                }
                chain output {
                    type filter hook output priority 0; policy accept;
                    ip daddr { \(set) } drop
                }
            }

            """
        return script
    }

    /// Replaces the ping table: when `cut`, echo requests to `target` are dropped (ping fails at once).
    public static func ping(target: String, cut: Bool) -> String {
        var script = Self.reset(Self.pingTable)
        guard cut else { return script }
        script += """
            table inet \(Self.pingTable) {
                chain output {
                    type filter hook output priority 0; policy accept;
                    ip daddr \(target) icmp type echo-request drop
                }
                chain input {
                    type filter hook input priority 0; policy accept;
                    ip saddr \(target) icmp type echo-reply drop
                }
            }

            """
        return script
    }

    /// Replaces the replication table: when `cut`, TCP to and from the volumes' ports is dropped both ways, so the
    /// replication links break while Corosync, qnetd and ping go on (issue 11: the link cut alone).
    public static func replication(cut: Bool, ports: ClosedRange<Int> = Self.replicationPorts) -> String {
        var script = Self.reset(Self.replicationTable)
        guard cut else { return script }
        let range = "\(ports.lowerBound)-\(ports.upperBound)"
        script += """
            table inet \(Self.replicationTable) {
                chain output {
                    type filter hook output priority 0; policy accept;
                    tcp dport \(range) drop
                    tcp sport \(range) drop
                }
                chain input {
                    type filter hook input priority 0; policy accept;
                    tcp dport \(range) drop
                    tcp sport \(range) drop
                }
            }

            """
        return script
    }

    /// Deletes a table whether or not it exists (nft 1.0.6 has no `destroy`): add it, then delete it.
    static func reset(_ table: String) -> String {
        "add table inet \(table)\ndelete table inet \(table)\n"
    }
}
