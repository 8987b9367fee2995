import CleverModel
import Foundation
import Testing

@testable import CleverAgent

/// Issue 11's "clock step of ±1 h during a failover wait", without touching this machine's clock: the agent's clock
/// reads the wall clock once, at start; every later reading, every deadline and the survivors' wait run on the
/// monotonic clock. A wall clock that steps an hour on every reading does not move the agent's time.
struct ClockStepTests {
    @Test(arguments: [3600.0, -3600.0])
    func aSteppedWallClockDoesNotMoveTheAgentsClock(step: Double) async throws {
        var readings = 0
        let clock = AgentClock {
            readings += 1
            return 1_000_000 + Double(readings - 1) * step
        }
        let first = clock.now().seconds
        try await Task.sleep(for: .milliseconds(200))
        let later = clock.now().seconds
        #expect(readings == 1, "the wall clock was read \(readings) times")
        #expect(later - first >= 0.2 && later - first < 5, "the agent's clock moved \(later - first) s in 0.2 s")
        // A wait of 0.3 s ends after 0.3 s of real time, whatever the wall clock did.
        let deadline = Timestamp(seconds: clock.now().seconds + 0.3)
        let start = ContinuousClock.now
        try await clock.sleep(until: deadline)
        #expect(ContinuousClock.now - start >= .milliseconds(300))
    }
}
