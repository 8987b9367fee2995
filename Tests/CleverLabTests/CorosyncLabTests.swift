import CleverLab
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real corosync, corosync-qdevice and corosync-qnetd in a lab of two hosts and a gateway, driven through the
/// Corosync binding (corosync-probe inside each host). Needs root. Every test tears the lab down, also on failure.
enum LabRequirements {
    static var met: Bool {
        getuid() == 0
            && ["/usr/sbin/corosync", "/usr/bin/corosync-qnetd", "/usr/sbin/corosync-qdevice", "/usr/sbin/nft"].allSatisfy {
                FileManager.default.isExecutableFile(atPath: $0)
            }
    }
}

@Suite(.serialized, .enabled(if: LabRequirements.met, "needs root, corosync, corosync-qnetd, corosync-qdevice and nft"))
struct CorosyncLabTests {
    static let labName = "cvl"

    /// Brings up a two-host lab, runs `body`, and always tears down. On failure prints the daemons' logs.
    func withLab(_ body: (Lab) throws -> Void) throws {
        let lab = try Lab(name: Self.labName)
        lab.down()
        defer {
            let problems = lab.down()
            #expect(problems.isEmpty, "lab down: \(problems)")
        }
        let clock = ContinuousClock()
        let start = clock.now
        try lab.up(layout: LabLayout(name: Self.labName, hostCount: 2)) { line in print("[lab \(clock.now - start)] \(line)") }
        do {
            try body(lab)
        } catch {
            for host in ["gw", "alpha", "bravo"] {
                let directory = lab.logDirectory(of: host)
                for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                    let text = (try? String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)) ?? ""
                    print("--- \(host) \(file) ---\n\(text.split(separator: "\n").suffix(30).joined(separator: "\n"))")
                }
            }
            throw error
        }
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    @Test func twoHostsSeeEachOtherAndAgreeOnTheOrder() throws {
        try self.withLab { lab in
            // qdevice talks to qnetd over TLS with the cluster's certificate (qnetd requires it).
            for host in ["alpha", "bravo"] {
                let tool = try lab.run(host: host, ["corosync-qdevice-tool", "-sv"])
                #expect(tool.output.contains("TLS active:\t\tYes (client certificate sent)"), "\(host): \(tool.output)")
            }
            let arguments = ["--group", "cvl-order", "--send", "25", "--when-members", "2", "--until-messages", "50"]
            let alpha = try ProbeProcess(lab: lab, host: "alpha", arguments: arguments)
            let bravo = try ProbeProcess(lab: lab, host: "bravo", arguments: arguments)
            defer {
                alpha.stop()
                bravo.stop()
            }
            for probe in [alpha, bravo] {
                try probe.wait(for: "exit after 50 deliveries", timeout: .seconds(20)) { $0.event == "exit" || $0.event == "error" }
            }
            let alphaJoined = try alpha.wait(for: "joined") { $0.event == "joined" }
            let bravoJoined = try bravo.wait(for: "joined") { $0.event == "joined" }
            #expect(alphaJoined.node == 1)
            #expect(bravoJoined.node == 2)

            // Both saw a view with both members, by node id and pid.
            let expectedMembers = [
                ProbeProcess.Line.Member(nodeID: 1, pid: alphaJoined.pid ?? 0),
                ProbeProcess.Line.Member(nodeID: 2, pid: bravoJoined.pid ?? 0),
            ]
            for probe in [alpha, bravo] {
                let view = try probe.wait(for: "two-member view") { $0.event == "view" && $0.members?.count == 2 }
                #expect(view.members?.sorted { $0.nodeID < $1.nodeID } == expectedMembers)
            }

            // Agreed order: the same 50 messages in the same order on both hosts.
            let order = { (probe: ProbeProcess) in
                probe.snapshot.filter { $0.event == "message" }.map { "\($0.node ?? 0)/\($0.pid ?? 0) \($0.text ?? "")" }
            }
            #expect(order(alpha).count == 50, "\(alpha.transcript)")
            #expect(order(alpha) == order(bravo))

            // Quorum through votequorum: quorate, 3 expected votes (2 nodes + qdevice), both nodes listed.
            for probe in [alpha, bravo] {
                let quorum = try probe.wait(for: "quorate") { $0.event == "quorum" && $0.quorate == true }
                #expect(quorum.expectedVotes == 3)
                #expect(Set(quorum.nodes ?? []) == [1, 2])
            }
            // cmap: the configured nodes and their ring addresses.
            let cmap = try alpha.wait(for: "cmap") { $0.event == "cmap" }
            #expect(cmap.node == 1)
        }
    }

    @Test func aPartitionLeavesExactlyOneSideQuorateAndHealingRestoresBoth() throws {
        try self.withLab { lab in
            let alpha = try ProbeProcess(lab: lab, host: "alpha", arguments: ["--group", "cvl-split", "--no-cmap"])
            let bravo = try ProbeProcess(lab: lab, host: "bravo", arguments: ["--group", "cvl-split", "--no-cmap"])
            defer {
                alpha.stop()
                bravo.stop()
            }
            for probe in [alpha, bravo] {
                try probe.wait(for: "two-member view") { $0.event == "view" && $0.members?.count == 2 }
                try probe.wait(for: "quorate") { $0.event == "quorum" && $0.quorate == true }
            }

            let cut = Self.now()
            try lab.partition(["alpha"], from: ["bravo"])
            // The losing side reports "not quorate"; the winner reports a quorate verdict for the smaller ring.
            let verdicts = try [alpha, bravo].map { probe in
                try probe.wait(for: "quorum verdict after the partition", timeout: .seconds(15), after: cut) {
                    $0.event == "quorum" && $0.nodes?.count == 1 && $0.awaitingVerdict == false
                }
            }
            usleep(3_000_000)  // let a wrong second verdict show up, if any
            let quorate = [alpha, bravo].map { $0.quorate }
            #expect(quorate.filter { $0 == true }.count == 1, "exactly one side quorate: \(quorate)")
            let loser = verdicts.first { $0.quorate == false }
            let decision = (loser?.time ?? cut) - cut
            print("MEASURE partition -> quorum decision (loser not quorate): \(Int(decision * 1000)) ms (token 1000 ms, consensus 1200 ms)")
            #expect(decision < 5)
            // corosync-quorumtool agrees.
            let tool = ["alpha", "bravo"].map { lab.quorum(of: $0)?.quorate }
            #expect(tool == quorate)

            let healed = Self.now()
            try lab.heal()
            for probe in [alpha, bravo] {
                try probe.wait(for: "quorate after heal", timeout: .seconds(15), after: healed) {
                    $0.event == "quorum" && $0.quorate == true && $0.nodes?.count == 2 && $0.awaitingVerdict == false
                }
            }
            let rejoin = ([alpha, bravo].compactMap { $0.snapshot.last { $0.event == "quorum" }?.time }.max() ?? healed) - healed
            print("MEASURE heal -> both quorate: \(Int(rejoin * 1000)) ms")
            try lab.waitUntilQuorate(hosts: ["alpha", "bravo"], timeout: .seconds(15))
        }
    }

    @Test func thePingTargetDecidesWhichSideKeepsQuorum() throws {
        try self.withLab { lab in
            let alpha = try ProbeProcess(lab: lab, host: "alpha", arguments: ["--group", "cvl-ping", "--no-cmap"])
            let bravo = try ProbeProcess(lab: lab, host: "bravo", arguments: ["--group", "cvl-ping", "--no-cmap"])
            defer {
                alpha.stop()
                bravo.stop()
            }
            for probe in [alpha, bravo] { try probe.wait(for: "quorate") { $0.event == "quorum" && $0.quorate == true } }
            // alpha (the lowest node id, ffsplit's default winner) can no longer ping the gateway: bravo must win.
            try lab.cutPing("alpha")
            let ping = try lab.run(host: "alpha", ["ping", "-q", "-c", "1", "-W", "1", "198.51.100.1"])
            #expect(!ping.succeeded)
            let cut = Self.now()
            try lab.partition(["alpha"], from: ["bravo"])
            try alpha.wait(for: "alpha not quorate", timeout: .seconds(15), after: cut) { $0.event == "quorum" && $0.quorate == false }
            try bravo.wait(for: "bravo quorate alone", timeout: .seconds(15), after: cut) {
                $0.event == "quorum" && $0.quorate == true && $0.nodes == [2] && $0.awaitingVerdict == false
            }
            usleep(2_000_000)
            #expect(alpha.quorate == false)
            #expect(bravo.quorate == true)
            try lab.restorePing("alpha")
            try lab.heal()
            try lab.waitUntilQuorate(hosts: ["alpha", "bravo"], timeout: .seconds(20))
        }
    }

    @Test func aHostCutOffFromEverythingLosesQuorumAndTheOtherKeepsIt() throws {
        try self.withLab { lab in
            let alpha = try ProbeProcess(lab: lab, host: "alpha", arguments: ["--group", "cvl-isolate", "--no-cmap"])
            let bravo = try ProbeProcess(lab: lab, host: "bravo", arguments: ["--group", "cvl-isolate", "--no-cmap"])
            defer {
                alpha.stop()
                bravo.stop()
            }
            for probe in [alpha, bravo] { try probe.wait(for: "quorate") { $0.event == "quorum" && $0.quorate == true } }
            let cut = Self.now()
            try lab.partition(["bravo"], from: ["alpha", "gw"])
            let pending = try bravo.wait(for: "bravo's ring change", timeout: .seconds(15), after: cut) {
                $0.event == "quorum" && $0.awaitingVerdict == true
            }
            let lost = try bravo.wait(for: "bravo not quorate", timeout: .seconds(15), after: cut) {
                $0.event == "quorum" && $0.quorate == false
            }
            let kept = try alpha.wait(for: "alpha's verdict alone", timeout: .seconds(15), after: cut) {
                $0.event == "quorum" && $0.nodes == [1] && $0.awaitingVerdict == false
            }
            print("MEASURE isolation -> isolated host's ring change (verdict pending): \(Int((pending.time - cut) * 1000)) ms")
            print("MEASURE isolation -> isolated host not quorate: \(Int((lost.time - cut) * 1000)) ms")
            print("MEASURE isolation -> survivor's verdict: \(Int((kept.time - cut) * 1000)) ms, quorate \(kept.quorate ?? false)")
            #expect(kept.quorate == true)
            #expect(lost.time - cut < 6)
            usleep(1_000_000)
            #expect(alpha.quorate == true)
            #expect(bravo.quorate == false)
            try lab.heal()
            try lab.waitUntilQuorate(hosts: ["alpha", "bravo"], timeout: .seconds(20))
        }
    }

    @Test func powerOffLeavesTheSurvivorQuorateAndPowerOnRejoins() throws {
        try self.withLab { lab in
            let alpha = try ProbeProcess(lab: lab, host: "alpha", arguments: ["--group", "cvl-power", "--no-cmap"])
            let bravo = try ProbeProcess(lab: lab, host: "bravo", arguments: ["--group", "cvl-power", "--no-cmap"])
            defer {
                alpha.stop()
                bravo.stop()
            }
            try alpha.wait(for: "two-member view") { $0.event == "view" && $0.members?.count == 2 }

            let off = Self.now()
            try lab.powerOff("bravo")
            #expect(throws: LabError.self) { try lab.run(host: "bravo", ["true"]) }
            let left = try alpha.wait(for: "bravo leaving the group", timeout: .seconds(15), after: off) {
                $0.event == "view" && $0.left?.contains { $0.member.nodeID == 2 && $0.reason == "nodeDown" } == true
            }
            print("MEASURE power off -> survivor's membership change: \(Int((left.time - off) * 1000)) ms (token 1000 ms, consensus 1200 ms)")
            let verdict = try alpha.wait(for: "quorum verdict alone", timeout: .seconds(15), after: off) {
                $0.event == "quorum" && $0.nodes == [1] && $0.awaitingVerdict == false
            }
            print("MEASURE power off -> survivor's quorum verdict: \(Int((verdict.time - off) * 1000)) ms, quorate \(verdict.quorate ?? false)")
            usleep(2_000_000)
            #expect(alpha.quorate == true, "the qdevice vote keeps the survivor quorate")
            let quorum = lab.quorum(of: "alpha")
            #expect(quorum?.quorate == true)
            #expect(quorum?.totalVotes == 2)

            try lab.powerOn("bravo")
            try lab.waitUntilQuorate(hosts: ["alpha", "bravo"], timeout: .seconds(20))
            let status = try lab.status()
            #expect(status.hosts.allSatisfy { $0.poweredOn })
            #expect(status.hosts.flatMap(\.services).allSatisfy { $0.running })
        }
    }

    @Test func theLabFenceAgentPowersAHostOffFromInsideAnother() throws {
        let labTool = URL(fileURLWithPath: ProbeProcess.binary).deletingLastPathComponent().appendingPathComponent("clevervm").path
        let agent = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/fence_clevervm_lab").standardized.path
        try #require(FileManager.default.isExecutableFile(atPath: labTool), "build clevervm first (swift build)")
        try self.withLab { lab in
            func fence(_ action: String, from host: String) throws -> Int32 {
                let input = "action=\(action)\nplug=bravo\nlab=\(Self.labName)\nlab_command=\(labTool)\n"
                return try lab.run(host: host, [agent], input: input).status
            }
            #expect(try fence("status", from: "alpha") == 0)
            #expect(try fence("off", from: "alpha") == 0)
            #expect(try fence("status", from: "alpha") == 2)
            #expect(try fence("off", from: "alpha") == 0, "off is idempotent")
            #expect(try lab.status().hosts.first { $0.name == "bravo" }?.poweredOn == false)
            #expect(try fence("on", from: "alpha") == 0)
            try lab.waitUntilQuorate(hosts: ["alpha", "bravo"], timeout: .seconds(20))
        }
    }

    @Test func downCleansUpLeftoversOfACrashedLab() throws {
        let lab = try Lab(name: Self.labName)
        lab.down()
        // What a crashed lab leaves: namespaces and links, no state file.
        for command in [
            ["ip", "netns", "add", "cvl-alpha"], ["ip", "link", "add", "cvlbr0", "type", "bridge"],
            ["ip", "link", "add", "cvlv1", "type", "veth", "peer", "name", "eth0", "netns", "cvl-alpha"],
        ] {
            let process = try Process.run(URL(fileURLWithPath: "/usr/bin/env"), arguments: command)
            process.waitUntilExit()
        }
        #expect(FileManager.default.fileExists(atPath: "/run/netns/cvl-alpha"))
        #expect(lab.down().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "/run/netns/cvl-alpha"))
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/cvlbr0"))
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/cvlv1"))
        #expect(lab.down().isEmpty, "down is idempotent")
        #expect(throws: LabError.self) { try lab.status() }
    }

    @Test func theBindingSaysWhenCorosyncIsNotConfiguredOrNotRunning() throws {
        let namespace = "cvl-bare"
        _ = try Process.run(URL(fileURLWithPath: "/usr/bin/env"), arguments: ["ip", "netns", "add", namespace]).waitUntilExit()
        defer { _ = try? Process.run(URL(fileURLWithPath: "/usr/bin/env"), arguments: ["ip", "netns", "delete", namespace]).waitUntilExit() }
        func probe(_ setUp: String) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "ip", "netns", "exec", namespace, "unshare", "--mount", "--propagation", "private", "sh", "-c",
                "mount -t tmpfs cvl /etc/corosync && mount -t tmpfs cvl /dev/shm && \(setUp) exec \(ProbeProcess.binary) --group x",
            ]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            #expect(process.terminationStatus == 1)
            return String(decoding: data, as: UTF8.self)
        }
        let unconfigured = try probe("")
        #expect(unconfigured.contains("\"code\":\"notConfigured\""))
        #expect(unconfigured.contains("corosync is not configured on this host: /etc/corosync/corosync.conf does not exist (cpg_initialize: CS_ERR_LIBRARY)"))
        let stopped = try probe("touch /etc/corosync/corosync.conf &&")
        #expect(stopped.contains("\"code\":\"notRunning\""))
        #expect(stopped.contains("corosync is not running on this host (cpg_initialize: CS_ERR_LIBRARY)"))
    }
}
