import CleverReplication
import Testing

/// DRBD's dynamic resync controller, driven by fake time and a simulated link: each step the "peer"
/// acknowledges what it can take of the bytes in flight.
@Suite struct ResyncControllerTests {
    typealias Controller = Replication.ResyncController
    static let mebibyte: UInt64 = 1 << 20

    static func settings(
        planAhead: Double = 2, fillTarget: UInt64 = 4 << 20, maxRate: UInt64 = 100 << 20, minRate: UInt64 = 4 << 20,
        fixedRate: UInt64 = 30 << 20
    ) -> Controller.Settings {
        Controller.Settings(
            planAhead: planAhead, fillTarget: fillTarget, maxRate: maxRate, minRate: minRate, fixedRate: fixedRate)
    }

    /// A link that moves at most `capacity` bytes per second from "in flight" to "acknowledged".
    struct SimulatedLink {
        var capacity: UInt64
        var inFlight: UInt64 = 0
        var acknowledgedLastStep: UInt64 = 0

        mutating func send(_ bytes: UInt64) { self.inFlight += bytes }

        mutating func advance(seconds: Double) {
            let moved = min(self.inFlight, UInt64(Double(self.capacity) * seconds))
            self.inFlight -= moved
            self.acknowledgedLastStep = moved
        }
    }

    /// Runs `steps` steps of 100 ms; `applicationIO(step)` is the application's bytes in that step. Returns the
    /// decisions.
    static func run(
        _ controller: inout Controller, link: inout SimulatedLink, from firstStep: Int = 0, steps: Int,
        applicationIO: (Int) -> UInt64 = { _ in 0 }
    ) -> [Controller.Decision] {
        var decisions: [Controller.Decision] = []
        for step in firstStep..<(firstStep + steps) {
            let now = Double(step) * controller.stepSeconds
            let decision = controller.onStep(
                now: now,
                Controller.Observation(
                    acknowledged: link.acknowledgedLastStep, inFlight: link.inFlight,
                    applicationIO: step == firstStep && step == 0 ? 0 : applicationIO(step - 1)))
            decisions.append(decision)
            link.send(decision.bytes)
            link.advance(seconds: controller.stepSeconds)
        }
        return decisions
    }

    static func average(_ decisions: ArraySlice<Controller.Decision>) -> Double {
        Double(decisions.map(\.bytes).reduce(0, +)) / Double(decisions.count) / 0.1
    }

    @Test func anIdleFastLinkRunsAtMaxRateAndNeverAbove() {
        var controller = Controller(settings: Self.settings())
        var link = SimulatedLink(capacity: 1 << 30)
        let decisions = Self.run(&controller, link: &link, steps: 100)
        let perStepMax = UInt64(Double(100 << 20) * 0.1)
        #expect(decisions.allSatisfy { $0.bytes <= perStepMax })
        #expect(decisions.first == Controller.Decision(bytes: perStepMax, reason: .maxRate))
        // A link ten times faster than c-max-rate: the controller settles at c-max-rate.
        let settled = Self.average(decisions[50...])
        #expect(abs(settled - Double(100 << 20)) < Double(Self.mebibyte))
    }

    @Test func aSlowLinkIsFilledToItsCapacityWithTheFillTargetInFlight() {
        var controller = Controller(settings: Self.settings())
        var link = SimulatedLink(capacity: 20 << 20)  // below c-max-rate
        let decisions = Self.run(&controller, link: &link, steps: 300)
        let settled = Self.average(decisions[200...])
        #expect(abs(settled - Double(20 << 20)) < Double(Self.mebibyte), "settled at \(settled / 1048576) MiB/s")
        // In flight converges to the fill target, not to everything the first steps sent.
        #expect(abs(Double(link.inFlight) - Double(4 << 20)) < Double(Self.mebibyte), "in flight \(link.inFlight)")
        #expect(decisions[200...].allSatisfy { $0.reason == .plan })
    }

    @Test func applicationIOHoldsTheResyncAtMinRateAndItRecoversAfterwards() {
        var controller = Controller(settings: Self.settings(minRate: 4 << 20))
        var link = SimulatedLink(capacity: 1 << 30)
        let busy = 100..<200
        let decisions = Self.run(&controller, link: &link, steps: 300) { step in busy.contains(step) ? 8 << 20 : 0 }
        let minPerStep = UInt64(Double(4 << 20) * 0.1)
        // Before: full speed. While the application writes: held at c-min-rate, never stopped. After: back up.
        #expect(Self.average(decisions[50..<100]) > Double(90 << 20))
        let during = decisions[101...200]
        #expect(during.allSatisfy { $0.bytes <= minPerStep && $0.bytes > 0 })
        #expect(during.allSatisfy { $0.reason == .applicationIO })
        #expect(Self.average(during) < Double(5 << 20))
        #expect(Self.average(decisions[250...]) > Double(90 << 20))
    }

    @Test func aFewStrayApplicationBytesDoNotThrottle() {
        var controller = Controller(settings: Self.settings())
        var link = SimulatedLink(capacity: 1 << 30)
        let decisions = Self.run(&controller, link: &link, steps: 100) { _ in 4096 }
        #expect(!decisions.contains { $0.reason == .applicationIO })
    }

    @Test func minRateZeroNeverThrottles() {
        var controller = Controller(settings: Self.settings(minRate: 0))
        var link = SimulatedLink(capacity: 1 << 30)
        let decisions = Self.run(&controller, link: &link, steps: 100) { _ in 64 << 20 }
        #expect(!decisions.contains { $0.reason == .applicationIO })
        #expect(Self.average(decisions[50...]) > Double(90 << 20))
    }

    @Test func planAheadZeroIsTheFixedResyncRate() {
        var controller = Controller(settings: Self.settings(planAhead: 0, fixedRate: 30 << 20))
        var link = SimulatedLink(capacity: 1 << 30)
        let decisions = Self.run(&controller, link: &link, steps: 20)
        let perStep = Int64(Double(30 << 20) * 0.1)
        #expect(decisions.allSatisfy { $0.reason == .fixedRate && abs(Int64($0.bytes) - perStep) <= 1 })
    }

    @Test func aLateStepMayCatchUpButNotWithoutBound() {
        var controller = Controller(settings: Self.settings(planAhead: 0, fixedRate: 10 << 20))
        _ = controller.onStep(now: 0, .init(acknowledged: 0, inFlight: 0, applicationIO: 0))
        let late = controller.onStep(now: 0.3, .init(acknowledged: 0, inFlight: 0, applicationIO: 0))
        #expect(late.bytes == UInt64(Double(10 << 20) * 0.3))
        let veryLate = controller.onStep(now: 60, .init(acknowledged: 0, inFlight: 0, applicationIO: 0))
        #expect(veryLate.bytes == UInt64(Double(10 << 20) * 0.5))
        // A clock that went backwards allows nothing extra.
        let backwards = controller.onStep(now: 59, .init(acknowledged: 0, inFlight: 0, applicationIO: 0))
        #expect(backwards.bytes == 0)
    }

    @Test func theControllerIsDeterministic() {
        var first = Controller(settings: Self.settings())
        var second = Controller(settings: Self.settings())
        var linkA = SimulatedLink(capacity: 33 << 20)
        var linkB = SimulatedLink(capacity: 33 << 20)
        let a = Self.run(&first, link: &linkA, steps: 200) { $0 % 7 == 0 ? 1 << 20 : 0 }
        let b = Self.run(&second, link: &linkB, steps: 200) { $0 % 7 == 0 ? 1 << 20 : 0 }
        #expect(a == b)
        #expect(first == second)
    }
}
