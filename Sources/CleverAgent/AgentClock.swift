import CleverModel
import Foundation

/// The agent's clock: monotonic (never stepped), in seconds since the epoch as the wall clock read once when the
/// daemon started. Deadlines and the survivors' self-fence wait are on it, so a clock step cannot shorten them;
/// times in the replicated state (results, marks) stay comparable with the other hosts' as long as NTP slews.
struct AgentClock: Sendable {
    private let wallAtStart: Double
    private let start: ContinuousClock.Instant

    /// `wall`: the wall clock, read here once and never again (a test passes one that steps).
    init(wall: () -> Double = { Date().timeIntervalSince1970 }) {
        self.wallAtStart = wall()
        self.start = .now
    }

    func now() -> Timestamp {
        let elapsed = self.start.duration(to: .now).components
        return Timestamp(seconds: self.wallAtStart + Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18)
    }

    /// Sleeps until `deadline` on this clock (rounded up to the next millisecond).
    func sleep(until deadline: Timestamp) async throws {
        let delay = deadline.seconds - self.now().seconds
        guard delay > 0 else { return }
        try await Task.sleep(for: .milliseconds(Int64(delay * 1000) + 1))
    }
}
