import ArgumentParser
import CleverModel
import CleverScheduler

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the cluster would do: from a config or a Pacemaker CIB, after events.",
        discussion: """
            Runs the scheduler as if every action succeeded (like crm_simulate -S). If the given state \
            is not settled, the first round settles it; then one round per --event, in order.

            Events: node-down NODE, node-up NODE, attr NODE NAME=VALUE (empty VALUE removes it), \
            fail RESOURCE NODE [ACTION], migrate NODE [--to NODE] [--lifetime DURATION], unmigrate [NODE], \
            cleanup [RESOURCE] [--node NODE], standby NODE, unstandby NODE, forcestop RESOURCE, \
            forcestart RESOURCE, quorum lost|gained, wait DURATION.
            """
    )

    @OptionGroup var input: ClusterInputOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .long, help: "An event to apply (repeatable, in order), e.g. --event 'attr alpha pingd=0'.")
    var event: [String] = []

    @Option(name: .long, help: "Write the resulting state (JSON) here, for a later --state.")
    var saveState: String?

    @Flag(name: .long, help: "Also report the time of one schedule of the given state (median of 5; for scripts/bench-scheduler.sh).")
    var timing = false

    struct Report: Encodable {
        var placement: [Placement]
        var actions: [Action]
        var blocked: [String: String]
        var rounds: [RoundReport]
        var notImported: [String]?
        var timing: Timing?
    }

    struct Timing: Encodable {
        var scheduleSeconds: Double
        var rounds: Int
    }

    /// One schedule of the loaded state, timed on the monotonic clock; the median of five.
    static func timeSchedule(_ loaded: ClusterInputOptions.Loaded) -> Timing {
        let scheduler = Scheduler(config: loaded.config)
        let clock = ContinuousClock()
        var samples: [Double] = []
        for _ in 0..<5 {
            let elapsed = clock.measure { _ = scheduler.schedule(state: loaded.state, now: loaded.now) }
            samples.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        return Timing(scheduleSeconds: samples.sorted()[samples.count / 2], rounds: samples.count)
    }

    struct RoundReport: Encodable {
        var event: String?
        var actions: [Action]
        var placement: [Placement]
        var blocked: [String: String]
    }

    func run() throws {
        try Output.run(json: self.output.json) {
            let loaded = try self.input.load()
            let events = try self.event.map { line throws -> SimulationEvent in
                do { return try SimulationEvent(parsing: line, config: loaded.config) } catch { throw CLIError(String(describing: error)) }
            }
            var simulator = Simulator(config: loaded.config, state: loaded.state, now: loaded.now,
                                      synthesizesPingAttributes: self.input.cib == nil,
                                      reschedulesUntilSettled: self.input.cib != nil)
            var rounds: [Simulator.Round] = []
            let settle = simulator.run(nil)
            if settle.actions.contains(where: { $0.action != .monitor }) || events.isEmpty { rounds.append(settle) }
            for event in events { rounds.append(simulator.run(event)) }
            if let path = self.saveState { try StateFile.save(simulator.state, to: path) }

            let last = rounds.last!.transition
            if self.output.json {
                try Output.printJSON(Report(
                    placement: last.placement, actions: rounds.last!.actions, blocked: last.blocked,
                    rounds: rounds.map { RoundReport(event: $0.event?.description, actions: $0.actions,
                                                     placement: $0.transition.placement, blocked: $0.transition.blocked) },
                    notImported: loaded.warnings.isEmpty ? nil : loaded.warnings,
                    timing: self.timing ? Self.timeSchedule(loaded) : nil))
                return
            }
            if self.timing {
                let timing = Self.timeSchedule(loaded)
                print("one schedule: \(timing.scheduleSeconds * 1000) ms (median of \(timing.rounds))")
            }
            for warning in loaded.warnings { Output.warn(warning) }
            for (index, round) in rounds.enumerated() {
                if index > 0 { print("") }
                print("== \(round.event.map { "after \($0)" } ?? "settling the given state") ==")
                print(round.render())
            }
        }
    }
}

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Say why a resource is where it is, and why not elsewhere.",
        discussion: "Shows each node's score and every constraint, mark, failure and stickiness that produced it."
    )

    @Argument(help: "The resource to explain.")
    var resource: String

    @OptionGroup var input: ClusterInputOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try Output.run(json: self.output.json) {
            let loaded = try self.input.load()
            guard loaded.config.resource(named: self.resource) != nil else {
                let known = loaded.config.resources.map(\.id).joined(separator: ", ")
                throw CLIError("no resource named '\(self.resource)' (resources: \(known))")
            }
            let transition = Scheduler(config: loaded.config).schedule(state: loaded.state, now: loaded.now)
            guard let explanation = Explanation(resource: self.resource, config: loaded.config, transition: transition) else {
                throw CLIError("the scheduler has no scores for '\(self.resource)'")
            }
            if self.output.json {
                try Output.printJSON(explanation)
            } else {
                for warning in loaded.warnings { Output.warn(warning) }
                print(explanation.render())
            }
        }
    }
}
