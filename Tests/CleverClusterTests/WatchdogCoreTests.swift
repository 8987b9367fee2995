import CleverCluster
import CleverModel
import Testing

/// The petting decision on a fake monotonic clock: every condition of issue 11's watchdog model.
@Suite struct WatchdogCoreTests {
    func healthy(at start: Double = 100) -> WatchdogCore {
        var core = WatchdogCore(livenessBound: Seconds(1))
        core.agentBeat(at: Timestamp(seconds: start))
        core.corosyncAnswered(at: Timestamp(seconds: start))
        core.quorumChanged(true)
        core.localResourcesChanged(runsSomething: true)
        return core
    }

    func isPet(_ directive: WatchdogCore.Directive) -> Bool { directive == .pet }

    @Test func petsWhileQuorateLiveAndAnswered() {
        let core = self.healthy()
        #expect(core.decide(now: Timestamp(seconds: 100.5)) == .pet)
        #expect(core.decide(now: Timestamp(seconds: 101)) == .pet)
    }

    @Test func aHungAgentStopsThePetting() {
        var core = self.healthy()
        core.corosyncAnswered(at: Timestamp(seconds: 101.5))
        guard case .withhold(let reason) = core.decide(now: Timestamp(seconds: 101.2)) else {
            Issue.record("petted with an agent silent for 1.2 s")
            return
        }
        #expect(reason.contains("agent loop"))
        // Even with nothing running: a hung agent may be in the middle of starting something.
        core.localResourcesChanged(runsSomething: false)
        #expect(!self.isPet(core.decide(now: Timestamp(seconds: 101.2))))
        core.agentBeat(at: Timestamp(seconds: 101.3))
        #expect(core.decide(now: Timestamp(seconds: 101.4)) == .pet)
    }

    @Test func aFrozenCorosyncStopsThePettingWhileResourcesRun() {
        var core = self.healthy()
        core.agentBeat(at: Timestamp(seconds: 102))
        guard case .withhold(let reason) = core.decide(now: Timestamp(seconds: 102)) else {
            Issue.record("petted with corosync silent for 2 s")
            return
        }
        #expect(reason.contains("corosync"))
        core.localResourcesChanged(runsSomething: false)
        #expect(core.decide(now: Timestamp(seconds: 102)) == .pet)
    }

    @Test func losingQuorumStopsThePettingUnlessNothingRuns() {
        var core = self.healthy()
        core.quorumChanged(false)
        #expect(core.decide(now: Timestamp(seconds: 100.1)) == .withhold(reason: "no quorum while resources run here"))
        // Its VMs killed, the minority host runs nothing and lives on.
        core.localResourcesChanged(runsSomething: false)
        #expect(core.decide(now: Timestamp(seconds: 100.1)) == .pet)
        #expect(core.mayDisarm)
    }

    /// A restarted agent knows nothing yet: no verdict, no probe: it assumes something runs and has no quorum.
    @Test func aFreshCoreWithholdsUntilItKnows() {
        var core = WatchdogCore(livenessBound: Seconds(1))
        core.agentBeat(at: Timestamp(seconds: 5))
        core.corosyncAnswered(at: Timestamp(seconds: 5))
        #expect(!self.isPet(core.decide(now: Timestamp(seconds: 5))))
        #expect(!core.mayDisarm)
        core.quorumChanged(true)
        #expect(core.decide(now: Timestamp(seconds: 5)) == .pet)
    }

    @Test func neverBeatenMeansWithhold() {
        let core = WatchdogCore(livenessBound: Seconds(1))
        #expect(core.decide(now: Timestamp(seconds: 0)) == .withhold(reason: "the agent loop has not run for ever (bound 1s)"))
    }
}
