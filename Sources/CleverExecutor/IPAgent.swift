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
            if await self.isAssigned(on: interface) { return .success }
            let result = await Subprocess.run(["ip", "addr", "add", cidr, "dev", interface], timeout: .seconds(5))
            guard result.succeeded else { return AgentOutcome(OCFExit.generic, "ip addr add \(cidr) dev \(interface): \(result.output)") }
            // Best effort: a neighbour that misses it learns the address on its next ARP request.
            _ = await Subprocess.run(["arping", "-U", "-c", "2", "-w", "2", "-I", interface, self.spec.address], timeout: .seconds(3))
            return .success
        case .stop, .migrateTo:
            guard await self.isAssigned(on: interface) else { return .success }
            let result = await Subprocess.run(["ip", "addr", "del", cidr, "dev", interface], timeout: .seconds(5))
            return result.succeeded ? .success : AgentOutcome(OCFExit.generic, "ip addr del \(cidr): \(result.output)")
        case .monitor:
            return await self.isAssigned(on: interface) ? .success : .notRunning
        case .promote, .demote:
            return AgentOutcome(OCFExit.unimplemented, "an address has no promoted role")
        }
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
