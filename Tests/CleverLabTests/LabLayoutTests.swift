import CleverLab
import CleverModel
import Testing

@Suite struct LabLayoutTests {
    @Test func namesDeriveFromTheLabName() throws {
        let layout = try LabLayout(name: "cvl", hostCount: 2)
        #expect(layout.hosts.map(\.name) == ["alpha", "bravo"])
        #expect(layout.hosts.map(\.address) == ["198.51.100.11", "198.51.100.12"])
        #expect(layout.hosts.map(\.nodeID) == [1, 2])
        #expect(layout.bridge == "cvlbr0")
        #expect(layout.gatewayNamespace == "cvl-gw")
        #expect(layout.namespace(of: layout.hosts[1]) == "cvl-bravo")
        #expect(layout.veth(of: layout.hosts[1]) == "cvlv2")
        #expect(layout.stateDirectory == "/run/clevervm-lab/cvl")
    }

    @Test func leftoversAreFoundByPrefixOnly() throws {
        let layout = try LabLayout(name: "cvl", hostCount: 1)
        #expect(layout.ownsNamespace("cvl-alpha"))
        #expect(layout.ownsNamespace("cvl-gw"))
        #expect(!layout.ownsNamespace("cvl2-alpha"))
        #expect(!layout.ownsNamespace("other-alpha"))
        #expect(layout.ownsLink("cvlbr0"))
        #expect(layout.ownsLink("cvlv12"))
        #expect(!layout.ownsLink("cvlv"))
        #expect(!layout.ownsLink("cvl2v1"))
        #expect(!layout.ownsLink("cvlvx"))
    }

    @Test func twoHostsGetAQdeviceOnTheGateway() throws {
        let config = try LabLayout(name: "cvl", hostCount: 2).defaultClusterConfig()
        #expect(config.quorum == QuorumConfig(qdeviceHost: "198.51.100.1", algorithm: "ffsplit", pingTargets: ["198.51.100.1"]))
        #expect(try LabLayout(name: "cvl", hostCount: 3).defaultClusterConfig().quorum == nil)
    }

    @Test func badInputIsRefusedWithTheReason() {
        #expect(throws: LabError.self) { try LabLayout(name: "Bad Name", hostCount: 2) }
        #expect(throws: LabError.self) { try LabLayout(name: "waytoolongname", hostCount: 2) }
        #expect(throws: LabError.self) { try LabLayout(name: "cvl", hostCount: 0) }
        #expect(throws: LabError.self) { try LabLayout(name: "cvl", hostCount: 9) }
        let outside = ClusterConfig(name: "c", nodes: [NodeConfig(name: "a", id: 1, addresses: ["10.0.0.1"])])
        #expect(throws: LabError.self) { try LabLayout(name: "cvl", config: outside) }
        do {
            _ = try LabLayout(name: "cvl", hostCount: 2).host(named: "zulu")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "lab cvl: no host named \"zulu\" (hosts: alpha, bravo)")
        }
    }

    @Test func configNodesBecomeHosts() throws {
        let config = ClusterConfig(
            name: "c",
            nodes: [
                NodeConfig(name: "left", id: 7, addresses: ["198.51.100.21"]),
                NodeConfig(name: "right", id: 9, addresses: ["198.51.100.22"]),
            ])
        let layout = try LabLayout(name: "cvl", config: config)
        #expect(layout.hosts.map(\.name) == ["left", "right"])
        #expect(layout.hosts.map(\.nodeID) == [7, 9])
        #expect(layout.hosts.map(\.address) == ["198.51.100.21", "198.51.100.22"])
    }
}

@Suite struct NetworkFilterTests {
    @Test func partitionDropsBothDirections() {
        #expect(
            NetworkFilter.partition(blocking: ["198.51.100.12", "198.51.100.1"]) == """
                add table inet clevervm_partition
                delete table inet clevervm_partition
                table inet clevervm_partition {
                    chain input {
                        type filter hook input priority 0; policy accept;
                        ip saddr { 198.51.100.1, 198.51.100.12 } drop
                    }
                    chain output {
                        type filter hook output priority 0; policy accept;
                        ip daddr { 198.51.100.1, 198.51.100.12 } drop
                    }
                }

                """)
    }

    @Test func healingOnlyRemovesTheTable() {
        #expect(NetworkFilter.partition(blocking: []) == "add table inet clevervm_partition\ndelete table inet clevervm_partition\n")
        #expect(NetworkFilter.ping(target: "198.51.100.1", cut: false) == "add table inet clevervm_ping\ndelete table inet clevervm_ping\n")
    }

    @Test func cutPingDropsOnlyEcho() {
        let script = NetworkFilter.ping(target: "198.51.100.1", cut: true)
        #expect(script.contains("ip daddr 198.51.100.1 icmp type echo-request drop"))
        #expect(script.contains("ip saddr 198.51.100.1 icmp type echo-reply drop"))
        #expect(!script.contains("tcp"))
    }
}

@Suite struct HostQuorumTests {
    @Test func parsesQuorumtoolOutput() {
        let text = """
            Quorum information
            ------------------
            Date:             Tue Nov 24 20:46:07 2026
            Quorum provider:  corosync_votequorum
            Nodes:            2
            Node ID:          1
            Ring ID:          1.9
            Quorate:          Yes

            Votequorum information
            ----------------------
            Expected votes:   3
            Highest expected: 3
            Total votes:      3
            Quorum:           2  
            Flags:            Quorate Qdevice 

            Membership information
            ----------------------
                Nodeid      Votes    Qdevice Name
                     1          1    A,V,NMW alpha (local)
                     2          1    A,V,NMW bravo
                     0          1            Qdevice
            """
        let quorum = HostQuorum(parsing: text)
        #expect(quorum.quorate)
        #expect(quorum.nodeID == 1)
        #expect(quorum.expectedVotes == 3)
        #expect(quorum.totalVotes == 3)
        #expect(quorum.quorum == 2)
        #expect(quorum.flags == ["Quorate", "Qdevice"])
        #expect(quorum.members == [1, 2])
    }

    @Test func notQuorate() {
        let quorum = HostQuorum(parsing: "Quorate:          No\nTotal votes:      1\nExpected votes:   3\nFlags:            Qdevice\n")
        #expect(!quorum.quorate)
        #expect(quorum.totalVotes == 1)
    }
}
