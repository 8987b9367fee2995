import CleverModel
import CleverScheduler

/// `clevervm simulate --json`'s shape: what the cluster would do after the events, changing nothing.
public struct SimulationReport: Codable, Hashable, Sendable {
    public struct Round: Codable, Hashable, Sendable {
        public var event: String?
        public var actions: [Action]
        public var placement: [Placement]
        public var blocked: [String: String]
    }

    public var placement: [Placement]
    public var actions: [Action]
    public var blocked: [String: String]
    public var rounds: [Round]
    /// The CLI command that shows the same.
    public var command: String

    /// Runs the live cluster's config and state through the simulator with `events` (CLI event syntax).
    public init(config: ClusterConfig, state: ClusterState, now: Timestamp, events lines: [String]) throws(WebError) {
        var events: [SimulationEvent] = []
        for line in lines {
            do { events.append(try SimulationEvent(parsing: line, config: config)) } catch {
                throw WebError(.badRequest, error.description)
            }
        }
        var simulator = Simulator(config: config, state: state, now: now)
        var rounds: [Simulator.Round] = []
        let settle = simulator.run(nil)
        if settle.actions.contains(where: { $0.action != .monitor }) || events.isEmpty { rounds.append(settle) }
        for event in events { rounds.append(simulator.run(event)) }
        let last = rounds.last!
        self.placement = last.transition.placement
        self.actions = last.actions.filter { $0.action != .monitor }
        self.blocked = last.transition.blocked
        self.rounds = rounds.map {
            Round(event: $0.event?.description, actions: $0.actions.filter { $0.action != .monitor },
                  placement: $0.transition.placement, blocked: $0.transition.blocked)
        }
        self.command = "clevervm simulate" + lines.map { " --event " + Shell.quote($0) }.joined()
    }
}

/// Quoting for the equivalent commands the console shows.
public enum Shell {
    public static func quote(_ word: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:=@")
        if !word.isEmpty, word.allSatisfy(safe.contains) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
