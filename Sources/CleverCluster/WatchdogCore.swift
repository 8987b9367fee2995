import CleverModel

/// When a host may pet its watchdog (sbd's model): only while its agent loop is live, and — unless nothing runs
/// here — while Corosync answers and the host counts itself quorate. A host that stops petting is reset W later,
/// so a hung agent, a frozen Corosync or a minority that cannot stop its VMs cannot keep them running; survivors
/// wait for that (`FencingTiming.survivorWait`). Pure: the shell feeds it observations stamped with a monotonic
/// clock and asks `decide(now:)` before every pet.
public struct WatchdogCore: Hashable, Sendable {
    public enum Directive: Hashable, Sendable {
        /// Write the keepalive.
        case pet
        /// Do not pet: the host is reset W after the last pet unless this changes.
        case withhold(reason: String)
    }

    /// The agent loop must have beaten, and Corosync answered, within this.
    public let livenessBound: Seconds
    public private(set) var lastAgentBeat: Timestamp?
    public private(set) var lastCorosyncAnswer: Timestamp?
    /// The cluster's view (the ledger's verdict); false until the first verdict, as a restarted agent must assume.
    public private(set) var quorate = false
    /// Whether anything is active, or being started, here. Until the agent has probed, assume something runs.
    public private(set) var runsSomething = true

    public init(livenessBound: Seconds) {
        self.livenessBound = livenessBound
    }

    public mutating func agentBeat(at time: Timestamp) { self.lastAgentBeat = time }
    public mutating func corosyncAnswered(at time: Timestamp) { self.lastCorosyncAnswer = time }
    public mutating func quorumChanged(_ quorate: Bool) { self.quorate = quorate }
    public mutating func localResourcesChanged(runsSomething: Bool) { self.runsSomething = runsSomething }

    public func decide(now: Timestamp) -> Directive {
        guard let beat = self.lastAgentBeat, now.seconds(since: beat) <= self.livenessBound.value else {
            return .withhold(reason: "the agent loop has not run for \(self.silence(since: self.lastAgentBeat, now)) (bound \(self.livenessBound))")
        }
        // Nothing here can run twice: a host that runs nothing may outlive quorum and Corosync.
        guard self.runsSomething else { return .pet }
        guard let answer = self.lastCorosyncAnswer, now.seconds(since: answer) <= self.livenessBound.value else {
            return .withhold(reason: "corosync has not answered for \(self.silence(since: self.lastCorosyncAnswer, now)) while resources run here")
        }
        guard self.quorate else { return .withhold(reason: "no quorum while resources run here") }
        return .pet
    }

    /// A clean stop may disarm the watchdog (the magic close) only when nothing runs here.
    public var mayDisarm: Bool { !self.runsSomething }

    private func silence(since time: Timestamp?, _ now: Timestamp) -> String {
        guard let time else { return "ever" }
        return Seconds(now.seconds(since: time)).description
    }
}
