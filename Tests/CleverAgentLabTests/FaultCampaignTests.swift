import CleverCampaign
import Foundation
import Testing

/// Issues 5 and 11's safety acceptance in CI: the fault campaign (`clevervm lab campaign`, CleverCampaign) with 30
/// faults on the watchdog lab — partitions, isolations, ping cuts, power-offs and power cycles, crashes, frozen
/// agents, Corosyncs and hosts, qnetd's death, Corosync loss and delay — watched from outside: never two running
/// QEMUs, never two primaries outside a live migration, no acknowledged record lost, replicas byte-identical after
/// each heal. CLEVERVM_CAMPAIGN_SEED replays a seed; CLEVERVM_CAMPAIGN_FAULTS=a,b,… runs those faults in that order.
@Suite(.serialized, .enabled(if: AgentLab.requirementsMet, "needs root, corosync, corosync-qnetd, corosync-qdevice, nft and qemu"))
struct FaultCampaignTests {
    @Test func theVMNeverRunsTwiceAndNoAcknowledgedWriteIsLostUnderRepeatedFaults() throws {
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["CLEVERVM_CAMPAIGN_SEED"].flatMap(UInt64.init) ?? UInt64(Date().timeIntervalSince1970)
        let replay = environment["CLEVERVM_CAMPAIGN_FAULTS"].map { $0.split(separator: ",").compactMap { Fault(rawValue: String($0)) } }
        let options = Campaign.Options(config: "examples/lab-vm-watchdog.yaml", seeds: [seed], faultsPerSeed: 30, replay: replay)
        let summary = Campaign(options: options).run { print($0) }
        print("fault campaign: seed \(seed): \(summary.faults) faults in \(Int(summary.seconds)) s, \(summary.samples) samples, "
              + "\(summary.recordsChecked) acknowledged records checked, \(summary.violations.count) violations")
        #expect(summary.stoppedEarly == nil, "\(summary.stoppedEarly ?? "")")
        #expect(summary.violations.isEmpty, "\(summary.violations)")
        #expect(summary.faults == (replay?.count ?? 30))
    }
}

/// The watch's verdicts and the campaign's schedule, without a lab.
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

    @Test func theScheduleHasEveryFaultPerRoundAndReplaysFromItsSeed() {
        let schedule = Fault.schedule(seed: 42, count: 2 * Fault.allCases.count, watchdog: true)
        #expect(schedule == Fault.schedule(seed: 42, count: 2 * Fault.allCases.count, watchdog: true))
        #expect(Fault.allCases.allSatisfy { fault in schedule.filter { $0 == fault }.count == 2 })
        let withoutWatchdog = Fault.schedule(seed: 42, count: 30, watchdog: false)
        #expect(withoutWatchdog.count == 30 && !withoutWatchdog.contains { $0.needsWatchdog })
    }

    @Test func aBootThatResumesBelowAnAcknowledgedRecordIsALoss() {
        var ledger = AcknowledgementLedger()
        #expect(ledger.read(host: "alpha", log: Data("RESUME 0\nACK 1\nACK 2\nACK 3\nAC".utf8), identity: 1).isEmpty)
        #expect(ledger.highest == 3)
        // The half line is read once whole; a boot on beta that found all three records is fine.
        #expect(ledger.read(host: "beta", log: Data("RESUME 3\nACK 4\n".utf8), identity: 7).isEmpty)
        // alpha boots again (a new console log) and finds only two records: two acknowledged records were lost.
        let losses = ledger.read(host: "alpha", log: Data("RESUME 2\n".utf8), identity: 2)
        #expect(losses.count == 1 && losses[0].contains("2 acknowledged records lost"))
    }
}
