import CleverCampaign
import CleverControl
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 11's measured failure, on a real lab with the lab's watchdog (examples/lab-vm.yaml: a FIFO in each host's
/// /run, watched from outside, that powers the host off when not petted within W): a host whose agent, Corosync
/// and qdevice are stopped (SIGSTOP) with QEMU left running kept its VM running while the other host started it
/// too — both QEMUs ran for the 56 s observed. Now the stuck host's watchdog powers it off, the other host starts
/// the VM only after that, and an outside watcher never sees two running QEMUs. Then the same for the agent
/// alone and for Corosync alone.
@Suite(.serialized, .enabled(if: AgentLab.requirementsMet, "needs root, corosync, corosync-qnetd, corosync-qdevice, nft and qemu"))
struct WatchdogLabTests {
    @Test func aStuckHostIsPoweredOffByItsWatchdogBeforeTheVMRunsElsewhere() throws {
        let lab = try AgentLab(name: "cvw", config: "examples/lab-vm-watchdog.yaml")
        defer { lab.down() }
        let watch = SingleRunWatch(lab: lab, vm: "mba7", hosts: ["alpha", "beta"])
        watch.start()
        do {
            var active = try lab.settle(after: "start")
            try lab.waitInSync(after: "start")
            for frozen in [["clevervm", "corosync", "qdevice"], ["clevervm"], ["corosync"]] {
                let stuck = active
                let passive = stuck == "alpha" ? "beta" : "alpha"
                let pids = frozen.compactMap { lab.pid(stuck, $0) }
                try #require(pids.count == frozen.count, "no pids for \(frozen) on \(stuck)")
                let t0 = Date()
                for pid in pids { kill(pid, SIGSTOP) }
                // W 2 s after the last pet (plus the liveness bound of one token, and the watcher's 50 ms poll).
                #expect(lab.waitUntil(15) { lab.poweredOff(stuck) }, "\(frozen) stopped on \(stuck): its watchdog did not power it off")
                let off = Date().timeIntervalSince(t0)
                active = try lab.settle(after: "SIGSTOP \(frozen)", on: passive, from: passive)
                let moved = Date().timeIntervalSince(t0)
                print(String(format: "SIGSTOP %@ on %@: powered off by its watchdog after %.1f s; the VM runs on %@ %.1f s after the stop",
                             frozen.joined(separator: "+"), stuck, off, active, moved))
                #expect(watch.allViolations.isEmpty, "SIGSTOP \(frozen): \(watch.allViolations)")
                try lab.lab(["power", "on", stuck])
                do {
                    try lab.waitInSync(after: "power on")
                } catch {
                    // Seen under load: the host the watchdog powered off rejoins but the cluster does not get back in
                    // sync (issue 11, open). The safety checks above hold; the rest of the cases need a whole cluster.
                    withKnownIssue("after a watchdog power-off the rejoined host does not always get back in sync") { throw error }
                    break
                }
            }
            watch.stop()
            print("single-run watch: \(watch.samples) samples, \(watch.allViolations.count) violations")
            #expect(watch.allViolations.isEmpty, "\(watch.allViolations)")
        } catch {
            watch.stop()
            lab.dumpLogs()
            throw error
        }
    }
}
