import CleverCluster
import CleverExecutor
import CleverModel
import Foundation
import Testing

@testable import CleverQEMU

#if canImport(Glibc)
import Glibc
#endif

/// Medians for scripts/bench-vm.sh; runs only when CLEVERVM_BENCH_RUNS is set (a number of runs, at least 1).
@Suite(.serialized)
struct VMBenchmark {
    static let runs = Int(ProcessInfo.processInfo.environment["CLEVERVM_BENCH_RUNS"] ?? "") ?? 0

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static func summary(_ name: String, _ values: [Double]) -> String {
        "BENCH \(name): median \(String(format: "%.1f", median(values))) ms, min \(String(format: "%.1f", values.min() ?? .nan)), "
            + "max \(String(format: "%.1f", values.max() ?? .nan)), runs \(values.count)"
    }

    @Test(.enabled(if: runs > 0), .timeLimit(.minutes(30)))
    func liveMigrationDowntime() async throws {
        let lab = try GuestLab(memoryMiB: 256)
        defer { lab.tearDown() }
        #expect(await lab.agent().perform(.start, lab.context("a")).exitCode == OCFExit.success)
        try await lab.waitForAck("a", above: 3)
        var downtimes: [Double] = []
        var totals: [Double] = []
        var gaps: [Double] = []
        var host = "a"
        for _ in 0..<Self.runs {
            let peer = host == "a" ? "b" : "a"
            let watcher = AckWatcher()
            let hosts = [host, peer]
            let watching = Task { [hosts] in await watcher.watch(lab, hosts: hosts) }
            try await Task.sleep(for: .milliseconds(200))
            let moved = await lab.agent(on: host, prepareTarget: peer).perform(.migrateTo, lab.context(host, migrationTarget: peer))
            let report = try #require(moved.report, "\(moved)")
            try #require(moved.exitCode == OCFExit.success, "\(moved)")
            downtimes.append(Double(report.downtimeMs ?? -1))
            totals.append(Double(report.totalMs ?? -1))
            let lastBefore = lab.acks(host).max() ?? 0
            host = peer
            try await lab.waitForAck(host, above: lastBefore + 2)
            try await Task.sleep(for: .milliseconds(50))
            watching.cancel()
            if let gap = await watcher.gap(after: lastBefore) { gaps.append(gap) }
        }
        print(Self.summary("live-migration downtime (QEMU query-migrate, 256 MiB, TCG)", downtimes))
        print(Self.summary("live-migration guest-visible gap between ACKs (writer pauses 20 ms between records)", gaps))
        print(Self.summary("live-migration total time", totals))
    }

    static func percentile(_ values: [Double], _ fraction: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
    }

    /// Cold boots to the guest kernel's first console line ("Linux version") and to the test guest's "GUEST UP":
    /// through SeaBIOS and OVMF from the disk, beside QEMU's own kernel loader (the kernel directory) as the
    /// reference, in the same run.
    @Test(.enabled(if: runs > 0), .timeLimit(.minutes(60)))
    func firmwareBootTime() async throws {
        for firmware in [nil, VMSpec.Firmware.bios, .uefi] {
            let lab = try GuestLab(firmware: firmware, quiet: false)
            defer { lab.tearDown() }
            let agent = lab.agent()
            var firstLine: [Double] = []
            var guestUp: [Double] = []
            for _ in 0..<Self.runs {
                unlink(lab.paths("a").consoleLog)
                let clock = ContinuousClock()
                let began = clock.now
                let started = await agent.perform(.start, lab.context("a"))
                try #require(started.exitCode == OCFExit.success, "\(started)")
                var sawKernel: Duration?
                while clock.now - began < .seconds(300) {
                    let console = lab.console("a")
                    if sawKernel == nil, console.contains(where: { $0.contains("Linux version") }) { sawKernel = clock.now - began }
                    if console.contains("GUEST UP") { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                guestUp.append(Double(milliseconds(clock.now - began)))
                firstLine.append(Double(milliseconds(try #require(sawKernel, "no kernel line: \(lab.console("a").suffix(5))"))))
                let pid = try #require(agent.runningQEMU(lab.paths("a")))
                kill(pid, SIGKILL)
                await agent.waitForExit(pid, until: ContinuousClock.now + .seconds(5))
            }
            let name = firmware.map { "\($0.rawValue) from its disk" } ?? "kernel directory (QEMU -kernel, reference)"
            print(Self.summary("boot to the kernel's first console line, \(name), TCG", firstLine))
            print(Self.summary("boot to GUEST UP, \(name), TCG", guestUp))
        }
    }

    /// Live-migration downtime of a 1 GiB guest dirtying 50 MiB/s (median and p95), beside the 256 MiB idle
    /// guest in the same run.
    @Test(.enabled(if: runs > 0), .timeLimit(.minutes(60)))
    func liveMigrationDowntimeUnderLoad() async throws {
        for (memory, dirty) in [(256, nil), (1024, 50)] as [(Int, Int?)] {
            let lab = try GuestLab(memoryMiB: memory, dirtyMiBPerSecond: dirty)
            defer { lab.tearDown() }
            #expect(await lab.agent().perform(.start, lab.context("a")).exitCode == OCFExit.success)
            try await lab.waitForAck("a", above: 3, timeout: .seconds(120))
            if dirty != nil {
                try await Task.sleep(for: .seconds(3))  // the dirtier has filled its buffer
                try #require(lab.console("a").contains { $0.hasPrefix("DIRTIER") }, "the guest runs no dirtier: \(lab.console("a").suffix(5))")
            }
            var downtimes: [Double] = []
            var totals: [Double] = []
            var host = "a"
            for _ in 0..<Self.runs {
                let peer = host == "a" ? "b" : "a"
                let moved = await lab.agent(on: host, prepareTarget: peer).perform(.migrateTo, lab.context(host, migrationTarget: peer, timeout: 300))
                let report = try #require(moved.report, "\(moved)")
                try #require(moved.exitCode == OCFExit.success, "\(moved)")
                downtimes.append(Double(report.downtimeMs ?? -1))
                totals.append(Double(report.totalMs ?? -1))
                let lastBefore = lab.acks(host).max() ?? 0
                host = peer
                try await lab.waitForAck(host, above: lastBefore + 2, timeout: .seconds(60))
            }
            let name = dirty.map { "\(memory) MiB dirtying \($0) MiB/s" } ?? "\(memory) MiB idle (reference)"
            print(Self.summary("live-migration downtime, \(name), TCG", downtimes)
                + ", p95 \(String(format: "%.1f", Self.percentile(downtimes, 0.95))) ms (target < 300)")
            print(Self.summary("live-migration total time, \(name)", totals))
        }
    }

    @Test(.enabled(if: runs > 0), .timeLimit(.minutes(30)))
    func hibernateMove() async throws {
        let lab = try GuestLab(memoryMiB: 256, withStateVolume: true)
        defer { lab.tearDown() }
        let agent = lab.agent()
        #expect(await agent.perform(.start, lab.context("a")).exitCode == OCFExit.success)
        try await lab.waitForAck("a", above: 3)
        var moves: [Double] = []
        var stops: [Double] = []
        var starts: [Double] = []
        var host = "a"
        let clock = ContinuousClock()
        for _ in 0..<Self.runs {
            let peer = host == "a" ? "b" : "a"
            let began = clock.now
            let stopped = await agent.perform(.stop, lab.context(host))
            let between = clock.now
            let started = await agent.perform(.start, lab.context(peer))
            let ended = clock.now
            try #require(stopped.exitCode == OCFExit.success && started.report?.mode == .resume, "\(stopped) \(started)")
            stops.append(Double(milliseconds(between - began)))
            starts.append(Double(milliseconds(ended - between)))
            moves.append(Double(milliseconds(ended - began)))
            host = peer
            try await lab.waitForAck(host, above: lab.acks(host).max() ?? 0)
        }
        #expect(lab.resumes("a") == [0] && lab.resumes("b").isEmpty)
        print(Self.summary("hibernate move via state volume (stop on a + start on b, 256 MiB, TCG)", moves))
        print(Self.summary("hibernate stop (save)", stops))
        print(Self.summary("hibernate start (resume)", starts))
    }
}

/// Notes when each ACK first shows up on the hosts' consoles (polled every 2 ms), for the guest-visible pause.
actor AckWatcher {
    var seen: [Int: ContinuousClock.Instant] = [:]

    func watch(_ lab: GuestLab, hosts: [String]) async {
        while !Task.isCancelled {
            let now = ContinuousClock.now
            for host in hosts {
                for ack in lab.acks(host) where self.seen[ack] == nil { self.seen[ack] = now }
            }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Milliseconds between ACK `last` and ACK `last + 1` (the record written across the move).
    func gap(after last: Int) -> Double? {
        guard let before = self.seen[last], let after = self.seen[last + 1] else { return nil }
        return Double(milliseconds(after - before))
    }
}
