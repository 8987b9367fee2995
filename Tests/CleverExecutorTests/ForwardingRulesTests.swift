import CleverExecutor
import CleverSystem
import Foundation
import Testing

/// The nftables input of a forwarded floating address (`ip` with `forward-to`), checked by `nft -c` when present.
struct ForwardingRulesTests {
    @Test func replacesTheTableWithADNATForRoutedAndLocalTraffic() {
        let rules = IPAgent.forwardingRules(("198.51.100.50", "198.51.100.242"), table: IPAgent.table("vip-1"))
        #expect(rules.hasPrefix("add table ip clevervm_forward_vip_1\ndelete table ip clevervm_forward_vip_1\n"))
        #expect(rules.contains("type nat hook prerouting priority dstnat"))
        #expect(rules.contains("type nat hook output priority -100"))
        #expect(rules.components(separatedBy: "ip daddr 198.51.100.50 dnat to 198.51.100.242").count == 3)
    }

    @Test func stopOnlyRemovesTheTable() {
        #expect(IPAgent.forwardingRules(nil, table: "t") == "add table ip t\ndelete table ip t\n")
    }

    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft")))
    func nftAcceptsTheRules() {
        let rules = IPAgent.forwardingRules(("198.51.100.50", "198.51.100.242"), table: IPAgent.table("vip"))
        let result = Subprocess.run(["/usr/sbin/nft", "-c", "-f", "-"], input: rules)
        #expect(result.succeeded, "\(result.output)")
    }
}
