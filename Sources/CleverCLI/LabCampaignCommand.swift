import ArgumentParser
import CleverCampaign
import Foundation

extension LabCommand {
    /// `clevervm lab campaign`: the fault campaign on a lab of its own (see CleverCampaign's `Campaign`).
    struct Campaign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the fault campaign: faults drawn from a seed on a lab with the real VM, watched from outside.",
            discussion: """
                Each seed gets a fresh lab (examples/lab-vm-watchdog.yaml by default) and --faults faults in an order drawn \
                from it. Checked from outside: never two running QEMUs (an incoming one only during a live migration), \
                never two primaries outside one, no acknowledged record lost, and after each fault both replicas byte for \
                byte identical with every acknowledged record whole. A progress line per fault, then a summary; exits 1 \
                on any violation or when a fault's round could not complete. Needs root and the lab lock.
                Faults: \(Fault.allCases.map(\.rawValue).joined(separator: ", ")).
                """)
        @OptionGroup var output: OutputOptions
        @Option(name: .long, help: "Lab name.") var name = "cvc"
        @Option(name: .long, help: "The cluster config of the lab.") var config = "examples/lab-vm-watchdog.yaml"
        @Option(name: .long, parsing: .upToNextOption, help: "Seeds, one lab each (default: the current time).") var seed: [UInt64] = []
        @Option(name: .long, help: "Faults per seed.") var faults = 20
        @Option(name: .long, help: "Only these faults (comma-separated), in an order drawn from the seed.") var only: String?
        @Option(name: .long, help: "Exactly these faults (comma-separated) in this order, instead of a drawn schedule.") var replay: String?
        @Option(name: .long, help: "Seconds after which no new fault starts (the lab is still torn down cleanly).") var timeBudget: Double?

        static func kinds(_ text: String?) throws -> [Fault]? {
            guard let text else { return nil }
            return try text.split(separator: ",").map { word in
                guard let fault = Fault(rawValue: String(word)) else {
                    throw ValidationError("unknown fault '\(word)'; faults: \(Fault.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return fault
            }
        }

        func validate() throws {
            guard self.faults > 0 else { throw ValidationError("--faults must be at least 1, not \(self.faults)") }
            _ = try Self.kinds(self.only)
            _ = try Self.kinds(self.replay)
        }

        func run() throws {
            var options = CleverCampaign.Campaign.Options(
                config: self.config, seeds: self.seed.isEmpty ? [UInt64(Date().timeIntervalSince1970)] : self.seed,
                faultsPerSeed: self.faults, kinds: try Self.kinds(self.only), replay: try Self.kinds(self.replay), labName: self.name)
            options.timeBudget = self.timeBudget
            let json = self.output.json
            let summary = CleverCampaign.Campaign(options: options).run { line in
                // Under --json the progress goes to stderr and the summary to stdout.
                (json ? FileHandle.standardError : FileHandle.standardOutput).write(Data((line + "\n").utf8))
            }
            if json {
                try Output.printJSON(summary)
            } else {
                print("campaign: \(summary.faults) faults over \(summary.seeds.count) seeds (\(summary.seeds.map(String.init).joined(separator: ", "))) in "
                      + String(format: "%.0f s", summary.seconds) + "; \(summary.samples) samples; \(summary.recordsChecked) acknowledged records checked "
                      + "in \(summary.replicaComparisons) replica comparisons; \(summary.violations.count) violations")
                print("faults: " + summary.faultsByKind.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                for violation in summary.violations { print("violation: \(violation)") }
                if let stopped = summary.stoppedEarly { print("stopped early: \(stopped)") }
                if summary.endedByTimeBudget { print("ended by the time budget") }
            }
            if !summary.violations.isEmpty || summary.stoppedEarly != nil { throw ExitCode(1) }
        }
    }
}
