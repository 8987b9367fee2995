import CleverControl
import Foundation
import Testing

/// Issue 3's acceptance on a real lab: two hosts and a gateway (qnetd + ping target), a process
/// standing in for the VM, a floating address, ping. Needs root and the Debian packages the test
/// script installs.
@Suite(.serialized, .enabled(if: AgentLab.requirementsMet, "needs root, corosync, corosync-qnetd, corosync-qdevice and nft"))
struct AgentLabTests {
    @Test func startUpThenPingLossMovesEverythingInOrder() throws {
        try AgentLab.with { lab in
            #expect(lab.placement("vm", from: "alpha") == ["alpha"])
            #expect(lab.placement("vip", from: "beta") == ["alpha"])
            try lab.lab(["cut-ping", "alpha"])
            let moved = lab.waitUntil(20) {
                lab.placement("vm", from: "beta") == ["beta"] && lab.placement("vip", from: "beta") == ["beta"]
            }
            #expect(moved)
            // The coordinator (alpha, lowest id) logged the transition in the order it ran it.
            let events = lab.events("alpha")
            func index(_ text: String) -> Int? { events.firstIndex { $0.hasPrefix("coordinator: \(text)") } }
            let stopIP = try #require(index("stop vip on alpha"), "\(events)")
            let stopVM = try #require(index("stop vm on alpha"))
            let startVM = try #require(index("start vm on beta"))
            let startIP = try #require(index("start vip on beta"))
            #expect(stopIP < stopVM && stopVM < startVM && startVM < startIP)
        }
    }

    @Test func operatorVerbsFromEitherHost() throws {
        try AgentLab.with { lab in
            // migrate on alpha: everything leaves alpha, which is marked unfit.
            #expect(lab.clevervm("alpha", ["migrate"]).status == 0)
            #expect(lab.waitUntil(20) { lab.placement("vm", from: "beta") == ["beta"] && lab.settled("beta") })
            #expect(lab.status("beta")?.nodes.first { $0.name == "alpha" }?.unfit == true)
            // unmigrate from beta: the mark goes, nothing moves back.
            #expect(lab.clevervm("beta", ["unmigrate", "--node", "alpha"]).status == 0)
            #expect(lab.waitUntil(5) { lab.status("alpha")?.nodes.allSatisfy { !$0.unfit } == true })
            Thread.sleep(forTimeInterval: 2)
            #expect(lab.placement("vm", from: "alpha") == ["beta"])
            // forcestop from alpha: stopped, with its address, and it stays stopped.
            #expect(lab.clevervm("alpha", ["forcestop", "vm"]).status == 0)
            #expect(lab.waitUntil(15) { lab.placement("vm", from: "beta").isEmpty && lab.placement("vip", from: "beta").isEmpty })
            Thread.sleep(forTimeInterval: 2)
            #expect(lab.placement("vm", from: "alpha").isEmpty)
            // forcestart from beta: it runs again.
            #expect(lab.clevervm("beta", ["forcestart", "vm"]).status == 0)
            #expect(lab.waitUntil(15) { lab.placement("vm", from: "alpha").count == 1 })
            // A failure is recorded; cleanup forgets it.
            let host = lab.placement("vm", from: "alpha").first ?? "alpha"
            _ = AgentLab.run(["lab", "exec", "--name", lab.name, host, "--", "pkill", "-f", "standin.log"])
            #expect(lab.waitUntil(15) { lab.status("alpha")?.resources.first { $0.id == "vm" }?.failCounts[host] == 1 })
            #expect(lab.waitUntil(15) { lab.placement("vm", from: "alpha").count == 1 && lab.settled("alpha") })
            #expect(lab.clevervm("beta", ["cleanup", "vm"]).status == 0)
            #expect(lab.waitUntil(5) { lab.status("alpha")?.resources.first { $0.id == "vm" }?.failCounts.isEmpty == true })
        }
    }

    @Test func powerOffOfTheActiveHostRecoversOnTheSurvivor() throws {
        try AgentLab.with { lab in
            #expect(lab.placement("vm", from: "beta") == ["alpha"])
            let off = Date().timeIntervalSince1970
            try lab.lab(["power", "off", "alpha"])
            #expect(lab.waitUntil(30) { lab.placement("vm", from: "beta") == ["beta"] && lab.placement("vip", from: "beta") == ["beta"] })
            let back = try #require(lab.standInTimes("beta").first { $0 > off })
            print("failover: the stand-in ran on beta \(String(format: "%.2f", back - off)) s after alpha lost power")
        }
    }

    @Test func whenTheHostsLoseEachOtherExactlyOneSideRunsTheVM() throws {
        try AgentLab.with { lab in
            // Put the VM on beta, the side that loses the tie-break (qnetd favours the lowest node id).
            #expect(lab.clevervm("alpha", ["migrate"]).status == 0)
            #expect(lab.waitUntil(20) { lab.placement("vm", from: "beta") == ["beta"] && lab.settled("beta") })
            #expect(lab.clevervm("alpha", ["unmigrate"]).status == 0)
            Thread.sleep(forTimeInterval: 1)
            let cut = Date().timeIntervalSince1970
            try lab.lab(["partition", "alpha", "--from", "beta"])
            #expect(lab.waitUntil(30) { lab.placement("vm", from: "alpha") == ["alpha"] })
            let beta = lab.status("beta")
            #expect(beta?.quorate == false)
            Thread.sleep(forTimeInterval: 1)
            // From outside: beta's stand-in stopped before alpha's started; never both at once.
            let lastOnBeta = try #require(lab.standInTimes("beta").last)
            let firstOnAlpha = try #require(lab.standInTimes("alpha").first { $0 > cut })
            #expect(lastOnBeta < firstOnAlpha, "beta ran until \(lastOnBeta), alpha started at \(firstOnAlpha)")
            print("split: beta stopped \(String(format: "%.2f", lastOnBeta - cut)) s after the cut; alpha started after \(String(format: "%.2f", firstOnAlpha - cut)) s")
            try lab.lab(["heal"])
            #expect(lab.waitUntil(30) { lab.status("beta")?.quorate == true && lab.settled("beta") })
            #expect(lab.placement("vm", from: "beta") == ["alpha"])
        }
    }

    @Test func badInputGetsAClearErrorAndChangesNothing() throws {
        try AgentLab.with { lab in
            let epoch = lab.status("alpha")?.configEpoch
            // A config with errors: refused as a whole, the error names the place.
            let broken = "/run/clevervm-lab/\(lab.name)/broken.yaml"
            try "cluster:\n  name: lab\nnodes:\n  - name: alpha\n    id: one\n".write(toFile: broken, atomically: true, encoding: .utf8)
            let apply = lab.clevervm("alpha", ["config", "apply", broken])
            #expect(apply.status != 0)
            #expect(apply.error.contains("broken.yaml:5"))
            #expect(lab.status("beta")?.configEpoch == epoch)
            // An unknown verb.
            let unknown = lab.clevervm("alpha", ["frobnicate"])
            #expect(unknown.status != 0 && unknown.error.contains("frobnicate"))
            // An unknown resource.
            let missing = lab.clevervm("alpha", ["forcestop", "nosuchvm"])
            #expect(missing.status != 0 && missing.error.contains("no resource named 'nosuchvm'"))
            // A malformed message on the group: refused and logged, the agents keep going.
            _ = AgentLab.run(["lab", "exec", "--name", lab.name, "alpha", "--", ProbeBinary.path, "--group", "clevervm", "--send", "1",
                              "--until-messages", "100000", "--no-quorum"], timeout: 5)
            #expect(lab.waitUntil(10) { lab.events("beta").contains { $0.contains("refused a message from node 1") } })
            #expect(lab.settled("alpha") && lab.placement("vm", from: "beta") == ["alpha"])
            // The agent not running (the gateway has none), and corosync not running there either.
            let noAgent = AgentLab.run(["lab", "exec", "--name", lab.name, "gw", "--", AgentLab.binary, "status"])
            #expect(noAgent.status != 0 && noAgent.error.contains("agent is not running"))
            let noCorosync = AgentLab.run(["lab", "exec", "--name", lab.name, "gw", "--", AgentLab.binary, "agent",
                                           "--config", AgentLab.root.appendingPathComponent("examples/lab.yaml").path, "--socket", "/run/test-agent.sock", "--state-directory", "/run/test-state"])
            #expect(noCorosync.status != 0 && noCorosync.error.contains("corosync is not running"))
        }
    }
}

enum ProbeBinary {
    static var path: String {
        URL(fileURLWithPath: AgentLab.binary).deletingLastPathComponent().appendingPathComponent("corosync-probe").path
    }
}
