import CleverControl
import CleverTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 5's safety acceptance: under repeated partitions, ping cuts and power-offs, the VM never runs on two
/// hosts at once — checked from outside by `SingleRunWatch` — and after every fault it runs on exactly one
/// host again, its writer going on, with both replicas back in sync once the fault is undone.
@Suite(.serialized, .enabled(if: AgentLab.requirementsMet, "needs root, corosync, corosync-qnetd, corosync-qdevice, nft and qemu"))
struct FaultCampaignTests {
    enum Fault: String, CaseIterable {
        case cutActivePing, cutPassivePing, powerOffActive, powerOffPassive, partition, crashActiveAgent, crashActiveVolume
        case crashCoordinatorMidMove
    }

    /// Every kind twice (16 faults), in an order drawn from the seed (printed, so a failing order can be replayed with
    /// CLEVERVM_CAMPAIGN_SEED).
    static func schedule(seed: UInt64) -> [Fault] {
        var generator = SeededRandom(seed: seed)
        return (Fault.allCases + Fault.allCases).shuffled(using: &generator)
    }

    @Test func theVMNeverRunsTwiceUnderRepeatedFaults() throws {
        let seed = ProcessInfo.processInfo.environment["CLEVERVM_CAMPAIGN_SEED"].flatMap(UInt64.init) ?? UInt64(Date().timeIntervalSince1970)
        // CLEVERVM_CAMPAIGN_FAULTS=a,b,... runs those faults in that order instead (to chase one kind).
        let chosen = ProcessInfo.processInfo.environment["CLEVERVM_CAMPAIGN_FAULTS"].map {
            $0.split(separator: ",").compactMap { Fault(rawValue: String($0)) }
        }
        let faults = chosen ?? Self.schedule(seed: seed)
        print("fault campaign: seed \(seed): \(faults.map(\.rawValue).joined(separator: ", "))")
        let lab = try AgentLab(name: "cvf", config: "examples/lab-vm.yaml")
        defer { lab.down() }
        var moments = SeededRandom(seed: seed ^ 0x5EED)
        let watch = SingleRunWatch(lab: lab, vm: "mba7", hosts: ["alpha", "beta"])
        watch.start()
        let started = Date()
        do {
            var active = try self.settle(lab, after: "start")
            // The first full sync of every volume ends before the first fault (until then only the source has data).
            try self.waitInSync(lab, after: "start")
            for (round, fault) in faults.enumerated() {
                let passive = active == "alpha" ? "beta" : "alpha"
                let t0 = Date()
                switch fault {
                case .cutActivePing:
                    let unfit = active
                    try lab.lab(["cut-ping", unfit])
                    active = try self.settle(lab, after: "\(fault)", on: passive)
                    try lab.lab(["restore-ping", unfit])
                case .cutPassivePing:
                    try lab.lab(["cut-ping", passive])
                    Thread.sleep(forTimeInterval: 4)
                    active = try self.settle(lab, after: "\(fault)", on: active)
                    try lab.lab(["restore-ping", passive])
                case .powerOffActive:
                    let dead = active
                    try lab.lab(["power", "off", dead])
                    active = try self.settle(lab, after: "\(fault)", on: passive, from: passive)
                    try lab.lab(["power", "on", dead])
                case .powerOffPassive:
                    try lab.lab(["power", "off", passive])
                    Thread.sleep(forTimeInterval: 4)
                    active = try self.settle(lab, after: "\(fault)", on: active, from: active)
                    try lab.lab(["power", "on", passive])
                case .crashActiveAgent:
                    // The agent dies, QEMU and Corosync stay: the other host must not take this for a dead host (this
                    // lab runs without a watchdog; examples/lab-vm-watchdog.yaml and WatchdogLabTests cover the reset).
                    let host = active
                    try lab.lab(["crash", host, "clevervm"])
                    Thread.sleep(forTimeInterval: 6)
                    let seen = lab.status(passive)
                    #expect(seen?.nodes.first { $0.name == host }?.agentDown == true, "round \(round + 1): \(host)'s agent should be seen down")
                    #expect(seen?.resources.first { $0.id == "mba7" }?.roles.keys.sorted() == [host], "round \(round + 1): the VM must stay on \(host)")
                    try lab.lab(["restart", host, "clevervm"])
                    active = try self.settle(lab, after: "\(fault)", on: host)
                case .crashCoordinatorMidMove:
                    // The operator moves the VM live; the coordinator's agent dies while the move runs (whichever
                    // host that is: the source, or the destination). The survivor takes over coordination; the
                    // move ends on one host or the other, never both.
                    let origin = active
                    let coordinator = lab.status(active)?.coordinator ?? active
                    let delay = Double.random(in: 0.0...0.6, using: &moments)  // the move itself takes about 0.5 s
                    let migrate = lab.clevervm(origin, ["migrate"])
                    #expect(migrate.status == 0, "round \(round + 1): migrate: \(migrate.error)")
                    Thread.sleep(forTimeInterval: delay)
                    try lab.lab(["crash", coordinator, "clevervm"])
                    print(String(format: "round %d: %@'s agent (the coordinator) crashed %.2f s into the move from %@", round + 1,
                                 coordinator, delay, origin))
                    Thread.sleep(forTimeInterval: 6)
                    try lab.lab(["restart", coordinator, "clevervm"])
                    active = try self.settle(lab, after: "\(fault)")
                    #expect(lab.clevervm(origin, ["unmigrate"]).status == 0)
                case .crashActiveVolume:
                    // The VM's disk process dies under it: the cluster recovers the volume (and the VM, where it must).
                    let pidFile = "\(lab.hostsDirectory)/\(active)/run/clevervm/disk0.volume.pid"
                    let pid = try #require(Int32((try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
                    kill(pid, SIGKILL)
                    Thread.sleep(forTimeInterval: 3)
                    active = try self.settle(lab, after: "\(fault)")
                    // The operator clears the failure record, as after any repaired fault.
                    _ = lab.clevervm(active, ["cleanup"])
                case .partition:
                    // Both still reach the gateway and qnetd: qdevice lets one side keep quorum, the other
                    // stops everything (self-fence) before the winner starts anything.
                    try lab.lab(["partition", "alpha", "--from", "beta"])
                    Thread.sleep(forTimeInterval: 3)
                    let winner = self.quorateHost(lab)
                    #expect(winner != nil, "round \(round): no side kept quorum")
                    active = try self.settle(lab, after: "\(fault)", on: nil, from: winner ?? "alpha")
                    try lab.lab(["heal"])
                }
                let moved = Date().timeIntervalSince(t0)
                try self.waitInSync(lab, after: "\(fault)")
                print(String(format: "round %d: %@ -> VM on %@ (%.1f s), back in sync after %.1f s", round + 1, fault.rawValue, active,
                             moved, Date().timeIntervalSince(t0)))
                #expect(watch.allViolations.isEmpty, "round \(round + 1) (\(fault)): \(watch.allViolations)")
            }
        } catch {
            let overlaps = SingleRunWatch.overlaps(watch.stop())
            print("fault campaign stopped early: violations \(watch.allViolations), overlapping console spans \(overlaps)")
            lab.dumpLogs()
            throw error
        }
        let spans = watch.stop()
        let overlaps = SingleRunWatch.overlaps(spans)
        print(String(format: "fault campaign: %d faults in %.0f s, %d samples, %d console activity spans, longest QEMU pair (live migration or resume) %.1f s, %d violations",
                     faults.count, Date().timeIntervalSince(started), watch.samples, spans.count, watch.longestPair,
                     watch.allViolations.count + overlaps.count))
        #expect(watch.allViolations.isEmpty, "\(watch.allViolations)")
        #expect(overlaps.isEmpty, "two guests wrote at the same time: \(overlaps)")
        #expect(spans.count >= faults.count / 2, "the guest's writer must have run through the campaign: \(spans)")
    }

    func quorateHost(_ lab: AgentLab) -> String? {
        ["alpha", "beta"].first { lab.status($0)?.quorate == true }
    }

    /// Waits until the VM runs on exactly one host (`on`, when given), seen from `from` (any quorate host when
    /// nil), and its writer acknowledges new records there. Returns that host.
    @discardableResult
    func settle(_ lab: AgentLab, after what: String, on expected: String? = nil, from: String? = nil) throws -> String {
        var host: String?
        let placed = lab.waitUntil(90) {
            guard let viewer = from ?? self.quorateHost(lab) else { return false }
            let placement = lab.placement("mba7", from: viewer)
            guard placement.count == 1, expected == nil || placement == [expected!], lab.settled(viewer) else { return false }
            host = placement[0]
            return true
        }
        guard placed, let host else { throw AgentLab.LabFailure("after \(what): the VM did not settle on \(expected ?? "one host")") }
        let before = SingleRunWatch.ackCount(self.console(lab, host))
        guard lab.waitUntil(60, { SingleRunWatch.ackCount(self.console(lab, host)) > before + 3 }) else {
            throw AgentLab.LabFailure("after \(what): the guest on \(host) does not write")
        }
        return host
    }

    func waitInSync(_ lab: AgentLab, after what: String) throws {
        let ok = lab.waitUntil(120) {
            ["alpha", "beta"].allSatisfy { host in
                guard let report = lab.status(host), report.quorate, report.nodes.allSatisfy(\.online) else { return false }
                return lab.settled(host) && report.resources.allSatisfy { $0.replication.map { $0.contains("UpToDate/UpToDate") } ?? true }
            }
        }
        if !ok { throw AgentLab.LabFailure("after \(what): the cluster did not come back whole and in sync") }
    }

    func console(_ lab: AgentLab, _ host: String) -> String {
        "\(lab.hostsDirectory)/\(host)/run/clevervm/mba7.console.log"
    }
}

/// The watch's verdict on console activity, without a lab.
struct SingleRunWatchVerdictTests {
    typealias Span = SingleRunWatch.Span

    @Test func aLiveMoveHandsOverWithoutOverlap() {
        let spans = [Span(host: "alpha", first: 0, last: 10.0), Span(host: "beta", first: 10.1, last: 20)]
        #expect(SingleRunWatch.overlaps(spans).isEmpty)
    }

    @Test func oneSamplingStepOfOverlapIsTolerated() {
        let spans = [Span(host: "alpha", first: 0, last: 10.05), Span(host: "beta", first: 10.0, last: 20)]
        #expect(SingleRunWatch.overlaps(spans).isEmpty)
    }

    @Test func twoGuestsWritingAtOnceAreFound() {
        let spans = [Span(host: "alpha", first: 0, last: 12), Span(host: "beta", first: 10, last: 20), Span(host: "alpha", first: 30, last: 31)]
        let found = SingleRunWatch.overlaps(spans)
        #expect(found.count == 1 && found.first?.0.host == "alpha" && found.first?.1.host == "beta")
    }

    @Test func theScheduleHasEveryFaultTwiceAndReplaysFromItsSeed() {
        let schedule = FaultCampaignTests.schedule(seed: 42)
        #expect(schedule == FaultCampaignTests.schedule(seed: 42))
        #expect(schedule.count == 16)
        #expect(FaultCampaignTests.Fault.allCases.allSatisfy { fault in schedule.filter { $0 == fault }.count == 2 })
    }
}
