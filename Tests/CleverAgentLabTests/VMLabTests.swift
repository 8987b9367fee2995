import CleverControl
import Foundation
import Testing

/// Issue 5's acceptance on a real lab: the whole two-host installation with a real VM (QEMU, TCG) on
/// replicated volumes. The guest's writer appends numbered records with O_DIRECT and prints `ACK n` on its
/// console after each is durable; after a power-off it prints `RESUME n`, the last record it finds on disk.
@Suite(.serialized, .enabled(if: AgentLab.requirementsMet, "needs root, corosync, corosync-qnetd, corosync-qdevice, nft and qemu"))
struct VMLabTests {
    func console(_ lab: AgentLab, _ host: String) -> [String] {
        let text = (try? String(contentsOfFile: "\(lab.hostsDirectory)/\(host)/run/clevervm/mba7.console.log", encoding: .utf8)) ?? ""
        // The serial console ends lines with CR LF.
        return text.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: .whitespaces) }
    }

    func lastNumber(_ lines: [String], _ prefix: String) -> Int? {
        lines.last { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) }
    }

    @Test func theVMMovesLiveAndSurvivesThePowerOffOfItsHost() throws {
        let lab = try AgentLab(name: "cvm", config: "examples/lab-vm.yaml")
        defer { lab.down() }
        do {
            #expect(lab.waitUntil(60) { self.lastNumber(self.console(lab, "alpha"), "ACK ") ?? 0 > 5 })
            // alpha loses its gateway: the VM moves live to beta; the writer goes on where it was.
            try lab.lab(["cut-ping", "alpha"])
            #expect(lab.waitUntil(40) { lab.placement("mba7", from: "beta") == ["beta"] && lab.settled("beta") })
            let move = lab.status("beta")?.resources.first { $0.id == "mba7" }?.lastMove
            #expect(move?.mode == .live && move?.from == "alpha" && move?.to == "beta")
            print("live move: guest downtime \(move?.downtimeMilliseconds.map(String.init) ?? "?") ms")
            #expect((move?.downtimeMilliseconds ?? 10_000) < 2000)
            #expect(self.console(lab, "beta").filter { $0.hasPrefix("RESUME") }.isEmpty, "the guest must not reboot")
            #expect(lab.placement("vip", from: "beta") == ["beta"])
            try lab.lab(["restore-ping", "alpha"])
            #expect(lab.waitUntil(60) { lab.settled("alpha") && lab.status("alpha")?.resources.allSatisfy {
                $0.replication == nil || $0.replication!.contains("UpToDate/UpToDate") } == true })
            // beta loses power: the VM boots on alpha and finds every record it had acknowledged.
            #expect(lab.waitUntil(10) { self.lastNumber(self.console(lab, "beta"), "ACK ") ?? 0 > 20 })
            let acknowledged = try #require(self.lastNumber(self.console(lab, "beta"), "ACK "))
            try lab.lab(["power", "off", "beta"])
            #expect(lab.waitUntil(60) { self.console(lab, "alpha").contains { $0.hasPrefix("RESUME") && Int($0.dropFirst(7)) ?? 0 > 0 } })
            let resumed = try #require(self.lastNumber(self.console(lab, "alpha"), "RESUME "))
            print("power off: last acknowledged record \(acknowledged) on beta; the guest on alpha resumed after \(resumed)")
            #expect(resumed >= acknowledged, "acknowledged record \(acknowledged) is lost: the disk ends at \(resumed)")
        } catch {
            lab.dumpLogs()
            throw error
        }
    }
}
