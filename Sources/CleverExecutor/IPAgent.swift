import CleverCluster
import CleverModel
import CleverSystem
import Foundation

/// A floating address: `ip addr add` on the interface that holds the subnet, then gratuitous ARP so
/// neighbours learn the new owner at once.
public struct IPAgent: ResourceAgent {
    public let spec: IPSpec

    public init(spec: IPSpec) { self.spec = spec }

    public func perform(_ action: ResourceAction, _ context: ActionContext) async -> AgentOutcome {
        let interface: String
        if let configured = self.spec.interface {
            interface = configured
        } else if let found = await Self.interface(holdingSubnetOf: self.spec.address, prefixLength: self.spec.prefixLength) {
            interface = found
        } else {
            if action == .stop || action == .monitor { return action == .stop ? .success : .notRunning }
            return AgentOutcome(OCFExit.notConfigured,
                                "no interface has an address in \(self.spec.address)/\(self.spec.prefixLength); set `interface:`")
        }
        let cidr = "\(self.spec.address)/\(self.spec.prefixLength)"
        switch action {
        case .start, .migrateFrom:
            // Forwarding first: the first packet after the neighbours learn the new owner must already reach the VM.
            if let target = self.spec.forwardTo, let failure = await self.forward(to: target, context.resource.id) {
                return AgentOutcome(OCFExit.generic, failure)
            }
            if await self.isAssigned(on: interface) { return .success }
            let result = await Subprocess.run(["ip", "addr", "add", cidr, "dev", interface], timeout: .seconds(5))
            guard result.succeeded else { return AgentOutcome(OCFExit.generic, "ip addr add \(cidr) dev \(interface): \(result.output)") }
            // Best effort: a neighbour that misses it learns the address on its next ARP request.
            _ = await Subprocess.run(["arping", "-U", "-c", "2", "-w", "2", "-I", interface, self.spec.address], timeout: .seconds(3))
            return .success
        case .stop, .migrateTo:
            if self.spec.forwardTo != nil {
                _ = await Subprocess.run(["nft", "-f", "-"], input: Self.forwardingRules(nil, table: Self.table(context.resource.id)),
                                         timeout: .seconds(5))
            }
            guard await self.isAssigned(on: interface) else { return .success }
            let result = await Subprocess.run(["ip", "addr", "del", cidr, "dev", interface], timeout: .seconds(5))
            return result.succeeded ? .success : AgentOutcome(OCFExit.generic, "ip addr del \(cidr): \(result.output)")
        case .monitor:
            guard await self.isAssigned(on: interface) else { return .notRunning }
            if self.spec.forwardTo != nil {
                let listed = await Subprocess.run(["nft", "list", "table", "ip", Self.table(context.resource.id)], timeout: .seconds(5))
                if !listed.succeeded { return AgentOutcome(OCFExit.generic, "the forwarding of \(self.spec.address) is gone (nft table \(Self.table(context.resource.id)))") }
            }
            return .success
        case .promote, .demote:
            return AgentOutcome(OCFExit.unimplemented, "an address has no promoted role")
        }
    }

    /// The nftables table of one floating address's forwarding.
    public static func table(_ resource: String) -> String { "clevervm_forward_\(resource.replacingOccurrences(of: "-", with: "_"))" }

    /// nft input that replaces the table with a DNAT of the floating address to `target` (nil: only removes it).
    /// Only destination NAT: the VM answers through this host (its gateway), where conntrack turns the source
    /// back into the floating address. A session picked up mid-stream after a move gets the same translation.
    public static func forwardingRules(_ forwarding: (address: String, target: String)?, table: String) -> String {
        var script = "add table ip \(table)\ndelete table ip \(table)\n"
        guard let forwarding else { return script }
        script += """
            table ip \(table) {
                chain prerouting {
                    type nat hook prerouting priority dstnat; policy accept;
                    ip daddr \(forwarding.address) dnat to \(forwarding.target)
                }
                chain output {
                    type nat hook output priority -100; policy accept;
                    ip daddr \(forwarding.address) dnat to \(forwarding.target)
                }
            }

            """
        return script
    }

    /// Turns on IPv4 forwarding and the DNAT; nil on success, else what failed. Conntrack's window tracking is
    /// made liberal: a session that moved here mid-stream is picked up without its window scale, and packets it
    /// would call out of window would skip the translation.
    func forward(to target: String, _ resource: String) async -> String? {
        for setting in ["net.ipv4.ip_forward=1", "net.netfilter.nf_conntrack_tcp_be_liberal=1"] {
            let result = await Subprocess.run(["sysctl", "-q", "-w", setting], timeout: .seconds(5))
            if !result.succeeded, setting.hasPrefix("net.ipv4") { return "sysctl \(setting): \(result.output)" }
        }
        let rules = Self.forwardingRules((self.spec.address, target), table: Self.table(resource))
        let result = await Subprocess.run(["nft", "-f", "-"], input: rules, timeout: .seconds(5))
        return result.succeeded ? nil : "nft (forwarding \(self.spec.address) to \(target)): \(result.output)"
    }

    func isAssigned(on interface: String) async -> Bool {
        let result = await Subprocess.run(["ip", "-o", "addr", "show", "dev", interface], timeout: .seconds(5))
        return result.output.contains(" \(self.spec.address)/")
    }

    static func interface(holdingSubnetOf address: String, prefixLength: Int) async -> String? {
        guard let target = IPv4(address) else { return nil }
        let result = await Subprocess.run(["ip", "-o", "-4", "addr", "show"], timeout: .seconds(5))
        for line in result.output.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count > 3, let inet = words.firstIndex(of: "inet"), inet + 1 < words.count else { continue }
            let parts = words[inet + 1].split(separator: "/")
            guard parts.count == 2, let own = IPv4(String(parts[0])) else { continue }
            if own.sameSubnet(as: target, prefixLength: prefixLength) { return String(words[1]) }
        }
        return nil
    }
}

struct IPv4: Hashable {
    var value: UInt32

    init?(_ text: String) {
        let parts = text.split(separator: ".")
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard let byte = UInt8(part) else { return nil }
            value = value << 8 | UInt32(byte)
        }
        self.value = value
    }

    func sameSubnet(as other: IPv4, prefixLength: Int) -> Bool {
        guard prefixLength > 0 else { return true }
        let mask = prefixLength >= 32 ? UInt32.max : ~(UInt32.max >> UInt32(prefixLength))
        return self.value & mask == other.value & mask
    }
}
