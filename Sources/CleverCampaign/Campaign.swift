import CleverConfig
import CleverTesting
import Foundation

/// The fault campaign (`clevervm lab campaign`, and FaultCampaignTests in CI): on a lab running the real VM, one
/// fault after another in an order drawn from the seed, watched from outside every 50 ms (`SingleRunWatch`: never
/// two running QEMUs, never two primaries outside a live migration, no acknowledged record lost across a boot);
/// after each fault, once the cluster is whole and in sync again, both replicas compared byte for byte with the
/// guest paused and every acknowledged record checked on each (`ReplicaCheck`).
public struct Campaign: Sendable {
    public struct Options: Sendable {
        public var config: String
        public var seeds: [UInt64]
        public var faultsPerSeed: Int
        /// Only these kinds (in schedule order drawn from the seed); all when nil.
        public var kinds: [Fault]?
        /// Exactly these faults in this order (to replay one), instead of a schedule.
        public var replay: [Fault]?
        public var labName: String
        /// Seconds: no new fault starts once this has passed since the campaign began (what is done so far counts);
        /// a lab-lock hold is short.
        public var timeBudget: Double?
        public var vm = "mba7"
        public var volume = "disk0"

        public init(config: String, seeds: [UInt64], faultsPerSeed: Int, kinds: [Fault]? = nil, replay: [Fault]? = nil,
                    labName: String = "cvf") {
            self.config = config
            self.seeds = seeds
            self.faultsPerSeed = faultsPerSeed
            self.kinds = kinds
            self.replay = replay
            self.labName = labName
        }
    }

    /// One fault's record.
    public struct Round: Codable, Sendable {
        public var seed: UInt64
        public var round: Int
        public var fault: Fault
        public var from: String
        public var to: String
        public var settledSeconds: Double
        public var inSyncSeconds: Double
        public var notes: [String]
    }

    public struct Summary: Codable, Sendable {
        public var config: String
        public var seeds: [UInt64]
        public var faults: Int
        public var faultsByKind: [String: Int]
        public var samples: Int
        /// Acknowledged records verified on disk, summed over every check (each on both replicas).
        public var recordsChecked: UInt64
        public var replicaComparisons: Int
        public var violations: [String]
        public var seconds: Double
        public var rounds: [Round]
        /// Set when a round could not complete (the cluster did not settle, a lab command failed).
        public var stoppedEarly: String?
        /// Set when the time budget ended the campaign before every fault ran.
        public var endedByTimeBudget = false
    }

    public let options: Options

    public init(options: Options) { self.options = options }

    /// Runs every seed on a fresh lab; `progress` gets a line per round. Never throws: a failure ends the seed's
    /// run and is in the summary (`stoppedEarly`), with the lab's agent logs printed through `progress`.
    public func run(progress: (String) -> Void) -> Summary {
        let started = Date()
        let outOfTime = { self.options.timeBudget.map { Date().timeIntervalSince(started) > $0 } ?? false }
        var summary = Summary(config: self.options.config, seeds: self.options.seeds, faults: 0, faultsByKind: [:], samples: 0,
                              recordsChecked: 0, replicaComparisons: 0, violations: [], seconds: 0, rounds: [])
        let watchdog = Self.configHasWatchdogs(self.options.config)
        if !watchdog { progress("the config has no watchdog on every host: faults that need one are left out (\(Fault.allCases.filter(\.needsWatchdog).map(\.rawValue).joined(separator: ", ")))") }
        for seed in self.options.seeds {
            let faults = self.options.replay
                ?? Fault.schedule(seed: seed, count: self.options.faultsPerSeed, watchdog: watchdog, from: self.options.kinds ?? Fault.allCases)
            progress("seed \(seed): \(faults.count) faults: \(faults.map(\.rawValue).joined(separator: ", "))")
            self.run(seed: seed, faults: faults, into: &summary, outOfTime: outOfTime, progress: progress)
            if summary.stoppedEarly != nil || summary.endedByTimeBudget { break }
        }
        summary.seconds = Date().timeIntervalSince(started)
        return summary
    }

    private func run(seed: UInt64, faults: [Fault], into summary: inout Summary, outOfTime: () -> Bool, progress: (String) -> Void) {
        let lab: CampaignLab
        do {
            lab = try CampaignLab(name: self.options.labName, config: self.options.config, console: false)
        } catch {
            summary.stoppedEarly = "seed \(seed): \(error)"
            return
        }
        defer { lab.down() }
        let watch = SingleRunWatch(lab: lab, vm: self.options.vm, hosts: lab.hosts, volumes: [self.options.volume])
        watch.start()
        var context = FaultContext(lab: lab, active: "alpha", draws: SeededRandom(seed: seed ^ 0x5EED))
        do {
            context.active = try lab.settle(after: "start", vm: self.options.vm)
            // The first full sync of every volume ends before the first fault (until then only the source has data).
            try lab.waitInSync(after: "start")
            var reported = 0
            for (index, fault) in faults.enumerated() {
                if outOfTime() {
                    summary.endedByTimeBudget = true
                    progress("time budget spent: \(faults.count - index) faults of seed \(seed) not run")
                    break
                }
                let from = context.active
                context.notes = []
                let t0 = Date()
                context.active = try fault.inject(&context)
                let settled = Date().timeIntervalSince(t0)
                for host in lab.hosts { try lab.ensurePoweredOn(host) }
                try lab.waitInSync(after: "\(fault)")
                let inSync = Date().timeIntervalSince(t0)
                // The placement may have changed while it got back in sync (a rejoined host may be preferred).
                context.active = lab.quorateHost().flatMap { lab.placement(self.options.vm, from: $0).first } ?? context.active
                let check = ReplicaCheck.run(lab: lab, volume: self.options.volume) { watch.highestAcknowledged }
                summary.recordsChecked += check.recordsChecked
                summary.replicaComparisons += 1
                summary.violations += check.problems.map { "seed \(seed) round \(index + 1) (\(fault)): \($0)" }
                summary.faults += 1
                summary.faultsByKind[fault.rawValue, default: 0] += 1
                summary.rounds.append(Round(seed: seed, round: index + 1, fault: fault, from: from, to: context.active,
                                            settledSeconds: settled, inSyncSeconds: inSync, notes: context.notes))
                let violations = watch.allViolations.count + check.problems.count
                progress(String(format: "seed %llu round %d/%d: %@ (VM on %@) -> VM on %@ after %.1f s, in sync after %.1f s; records 1…%llu whole, replicas %@; %d violations so far%@",
                                seed, index + 1, faults.count, fault.rawValue, from, context.active, settled, inSync,
                                check.recordsChecked, check.problems.isEmpty ? "identical" : "DIFFER", violations,
                                context.notes.isEmpty ? "" : " (" + context.notes.joined(separator: "; ") + ")"))
                let seen = watch.allViolations
                for violation in seen.dropFirst(reported) { progress("VIOLATION: \(violation)") }
                for problem in check.problems { progress("VIOLATION: \(problem)") }
                reported = seen.count
            }
        } catch {
            summary.stoppedEarly = "seed \(seed), after \(summary.rounds.filter { $0.seed == seed }.count) faults: \(error)"
            progress("stopped early: \(error)")
            progress(lab.logTails())
        }
        let spans = watch.stop()
        let overlaps = SingleRunWatch.overlaps(spans)
        summary.samples += watch.samples
        summary.violations += watch.allViolations.map { "seed \(seed): \($0)" }
        summary.violations += overlaps.map { "seed \(seed): two guests wrote at once: \($0.0) and \($0.1)" }
        if !faults.isEmpty && spans.count < faults.count / 2 {
            summary.violations.append("seed \(seed): the guest's writer did not run through the campaign (\(spans.count) activity spans)")
        }
    }

    static func configHasWatchdogs(_ path: String) -> Bool {
        guard let config = try? ConfigFile.load(path: path) else { return false }
        return config.nodes.allSatisfy { $0.watchdog?.devicePath != nil }
    }
}
