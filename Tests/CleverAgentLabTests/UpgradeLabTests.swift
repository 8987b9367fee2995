import CleverControl
import Foundation
import Testing

/// A rolling upgrade with one build: beta's agent, restarted with `--wire-version 1`, speaks only the first
/// release's group messages, as an agent of that release would (scripts/test-upgrade.sh runs a real older build).
/// The cluster works on version 1 — the resource moves both ways, a config change applied on either host reaches
/// both — and switches to version 2 once beta runs at full version again.
@Suite(.serialized, .enabled(if: AgentLab.requirementsMet, "needs root, corosync, corosync-qnetd, corosync-qdevice and nft"))
struct UpgradeLabTests {
    func restartAgent(_ lab: AgentLab, _ host: String, _ arguments: [String]) throws {
        let result = AgentLab.run(["lab", "restart", "--name", lab.name, host, "clevervm", "--", AgentLab.binary, "agent"] + arguments)
        guard result.status == 0 else { throw AgentLab.LabFailure("lab restart \(host) clevervm: \(result.output)") }
    }

    func onWireVersion(_ lab: AgentLab, _ version: Int) -> Bool {
        ["alpha", "beta"].allSatisfy { host in
            guard let report = lab.status(host) else { return false }
            return report.wireVersion == version && report.nodes.allSatisfy(\.online) && lab.settled(host)
        }
    }

    /// `migrate` on the host vm runs on (from that host), until it runs on the other; then `unmigrate`.
    func move(_ lab: AgentLab) throws {
        let from = try #require(lab.placement("vm", from: "alpha").first)
        let to = from == "alpha" ? "beta" : "alpha"
        #expect(lab.clevervm(from, ["migrate"]).status == 0)
        #expect(lab.waitUntil(30) { lab.placement("vm", from: to) == [to] && lab.settled(to) }, "vm did not move from \(from) to \(to)")
        #expect(lab.clevervm(from, ["unmigrate"]).status == 0)
    }

    /// `config show` on HOST, with a process resource ID added, applied on HOST.
    func addResource(_ lab: AgentLab, _ id: String, on host: String) throws {
        try self.apply(lab, on: host) {
            $0.replacingOccurrences(of: "\nresources:\n", with: "\nresources:\n  - id: \(id)\n    type: process\n    command: [/bin/sleep, infinity]\n    monitor: 2s\n")
        }
    }

    func apply(_ lab: AgentLab, on host: String, _ change: (String) -> String) throws {
        let shown = lab.clevervm(host, ["config", "show"])
        #expect(shown.status == 0)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("clevervm-upgrade-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try change(shown.output).write(toFile: file, atomically: true, encoding: .utf8)
        let applied = lab.clevervm(host, ["config", "apply", file])
        #expect(applied.status == 0, "\(applied.output)")
    }

    @Test func aClusterWithAnAgentOnTheOlderWireVersionMovesAndAppliesConfigThenSwitches() throws {
        try AgentLab.with { lab in
            #expect(lab.waitUntil(30) { self.onWireVersion(lab, 2) }, "the cluster of current agents is not on wire version 2")
            try self.restartAgent(lab, "beta", ["--wire-version", "1"])
            #expect(lab.waitUntil(45) { self.onWireVersion(lab, 1) }, "alpha did not fall back to wire version 1 for beta")

            try self.move(lab)
            try self.move(lab)
            #expect(lab.status("alpha")?.wireVersion == 1)

            let epoch = try #require(lab.status("alpha")?.configEpoch)
            try self.addResource(lab, "extra", on: "beta")
            #expect(lab.waitUntil(20) { lab.placement("extra", from: "alpha").count == 1 && lab.status("beta")?.configEpoch == epoch + 1 },
                    "beta's config change (wire version 1) did not reach alpha")
            try self.addResource(lab, "more", on: "alpha")
            #expect(lab.waitUntil(20) { lab.placement("more", from: "beta").count == 1 && lab.status("beta")?.configEpoch == epoch + 2 },
                    "alpha's config change did not reach beta")

            try self.restartAgent(lab, "beta", [])
            #expect(lab.waitUntil(45) { self.onWireVersion(lab, 2) }, "the upgraded cluster did not switch to wire version 2")
            #expect(lab.placement("extra", from: "beta").count == 1 && lab.placement("more", from: "beta").count == 1)
        }
    }
}
