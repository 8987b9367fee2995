import CleverCluster
import CleverModel
import CleverExecutor
import CleverSystem
import Foundation
import Testing

@testable import CleverQEMU

#if canImport(Glibc)
import Glibc
#endif

/// Real QEMU under TCG, the test guest's disk from nbdkit. One at a time: two cores are shared.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct VMAgentLabTests {
    @Test func bootMonitorKillReattach() async throws {
        let lab = try GuestLab()
        defer { lab.tearDown() }
        let agent = lab.agent()
        #expect(await agent.perform(.monitor, lab.context("a")) == .notRunning)
        #expect(await agent.perform(.stop, lab.context("a")).exitCode == OCFExit.success)

        let started = await agent.perform(.start, lab.context("a"))
        #expect(started.exitCode == OCFExit.success, "\(started)")
        #expect(started.report?.mode == .cold)
        try await lab.waitForAck("a", above: 3)
        #expect(lab.resumes("a") == [0])
        #expect(await agent.perform(.monitor, lab.context("a")) == .success)

        // A new agent (an agent restart) finds the same QEMU; start does nothing.
        let pid = try #require(agent.runningQEMU(lab.paths("a")))
        let restarted = lab.agent()
        #expect(await restarted.perform(.monitor, lab.context("a")) == .success)
        let again = await restarted.perform(.start, lab.context("a"))
        #expect(again.exitCode == OCFExit.success)
        #expect(again.report?.mode == .attached)
        #expect(again.report?.pid == Int(pid))
        // Even without the pid file the QEMU is found by its command line.
        unlink(lab.paths("a").pidFile)
        #expect(restarted.runningQEMU(lab.paths("a")) == pid)

        kill(pid, SIGKILL)
        try await Task.sleep(for: .milliseconds(200))
        #expect(await restarted.perform(.monitor, lab.context("a")) == .notRunning)
        #expect(await restarted.perform(.stop, lab.context("a")).exitCode == OCFExit.success)
    }

    @Test func hibernateAndResumeContinuesTheWriter() async throws {
        let lab = try GuestLab()
        defer { lab.tearDown() }
        let agent = lab.agent()
        #expect(await agent.perform(.start, lab.context("a")).exitCode == OCFExit.success)
        let before = try await lab.waitForAck("a", above: 5)

        let clock = ContinuousClock()
        let began = clock.now
        let stopped = await agent.perform(.stop, lab.context("a"))
        let stopTime = clock.now - began
        #expect(stopped.exitCode == OCFExit.success, "\(stopped)")
        #expect(await agent.perform(.monitor, lab.context("a")) == .notRunning)
        #expect(FileManager.default.fileExists(atPath: lab.paths("a").stateFile))
        let lastBeforeResume = lab.acks("a").max() ?? 0
        #expect(lastBeforeResume >= before)

        let resumeBegan = clock.now
        let resumed = await agent.perform(.start, lab.context("a"))
        let resumeTime = clock.now - resumeBegan
        #expect(resumed.exitCode == OCFExit.success, "\(resumed)")
        #expect(resumed.report?.mode == .resume)
        try await lab.waitForAck("a", above: lastBeforeResume + 3)
        // Resumed, not rebooted: one RESUME line in the whole console, and the sequence has no gap.
        #expect(lab.resumes("a") == [0])
        let acks = lab.acks("a")
        #expect(acks == Array(1...(acks.max() ?? 0)))
        #expect(!FileManager.default.fileExists(atPath: lab.paths("a").stateFile), "a used image must be gone")
        print("hibernate: stop \(stopTime) (\(stopped.output ?? "")), start \(resumeTime) (\(resumed.output ?? ""))")
    }

    @Test func liveMigrationKeepsTheWriterGoing() async throws {
        let lab = try GuestLab(memoryMiB: 256)
        defer { lab.tearDown() }
        let source = lab.agent(prepareTarget: "b")
        let target = lab.agent()
        #expect(await source.perform(.start, lab.context("a")).exitCode == OCFExit.success)
        let before = try await lab.waitForAck("a", above: 5)

        let moved = await source.perform(.migrateTo, lab.context("a", migrationTarget: "b"))
        #expect(moved.exitCode == OCFExit.success, "\(moved)")
        let report = try #require(moved.report)
        #expect(report.migration == .completed)
        let downtime = try #require(report.downtimeMs)
        #expect(downtime < 300, "downtime \(downtime) ms")
        #expect(await source.perform(.monitor, lab.context("a")) == .notRunning)
        #expect(await target.perform(.monitor, lab.context("b")) == .success)

        let lastOnSource = lab.acks("a").max() ?? 0
        #expect(lastOnSource >= before)
        let onTarget = try await lab.waitForAck("b", above: lastOnSource + 3)
        // The target continues the same sequence with no reboot and no gap.
        let targetAcks = lab.acks("b")
        #expect(lab.resumes("b").isEmpty)
        #expect(targetAcks.first == lastOnSource + 1)
        #expect(targetAcks == Array((lastOnSource + 1)...onTarget).filter { targetAcks.contains($0) } && targetAcks.count == onTarget - lastOnSource)
        print("live migration 256 MiB: \(moved.output ?? "")")
    }

    @Test func shutdownStopKillsAGuestThatIgnoresPowerdown() async throws {
        let lab = try GuestLab()
        defer { lab.tearDown() }
        let agent = lab.agent()
        let resource = lab.resource(stopMode: .shutdown)
        #expect(await agent.perform(.start, lab.context("a", resource: resource)).exitCode == OCFExit.success)
        try await lab.waitForAck("a", above: 1)
        let stopped = await agent.perform(.stop, lab.context("a", resource: resource, timeout: 3))
        #expect(stopped.exitCode == OCFExit.success, "\(stopped)")
        #expect(stopped.report?.mode == .killed)
        #expect(await agent.perform(.monitor, lab.context("a", resource: resource)) == .notRunning)
        #expect(!FileManager.default.fileExists(atPath: lab.paths("a").stateFile))
    }

    @Test func missingBootIsNotConfigured() async throws {
        let lab = try GuestLab()
        defer { lab.tearDown() }
        var resource = lab.resource
        resource.kind = .vm(.init(volumes: ["disk0"], boot: "/nonexistent/cvq"))
        let outcome = await lab.agent().perform(.start, lab.context("a", resource: resource))
        #expect(outcome.exitCode == OCFExit.notConfigured)
        #expect(outcome.output?.contains("/nonexistent/cvq") == true)
    }
}

/// Hibernate into a state volume: the image moves with the volume, so another host resumes it.
extension VMAgentLabTests {
    @Test func hibernateOnOneHostResumeOnAnother() async throws {
        let lab = try GuestLab(withStateVolume: true)
        defer { lab.tearDown() }
        let agent = lab.agent()
        let image = HibernateImage.volume(socket: lab.settings.volumeSocket("state0"), export: "state0", vm: "vm1")
        #expect(try await image.present() == nil)
        #expect(await agent.perform(.start, lab.context("a")).exitCode == OCFExit.success)
        try await lab.waitForAck("a", above: 5)

        let stopped = await agent.perform(.stop, lab.context("a"))
        #expect(stopped.exitCode == OCFExit.success, "\(stopped)")
        #expect(try await image.present() != nil)
        #expect(!FileManager.default.fileExists(atPath: lab.paths("a").stateFile), "no local file in volume mode")
        let last = lab.acks("a").max() ?? 0

        let resumed = await agent.perform(.start, lab.context("b"))
        #expect(resumed.exitCode == OCFExit.success, "\(resumed)")
        #expect(resumed.report?.mode == .resume)
        try await lab.waitForAck("b", above: last + 3)
        #expect(lab.resumes("b").isEmpty, "resumed, not rebooted")
        #expect(lab.acks("b").first == last + 1)
        #expect(try await image.present() == nil, "the trailer is wiped once the VM runs")
        print("hibernate via state volume: stop \(stopped.output ?? ""), start \(resumed.output ?? "")")
    }

    @Test func stateVolumeThatIsAlsoADiskIsRefused() async throws {
        let lab = try GuestLab()
        defer { lab.tearDown() }
        var resource = lab.resource
        resource.kind = .vm(.init(volumes: ["disk0"], stateVolume: "disk0", boot: "\(lab.directory)/boot"))
        let outcome = await lab.agent().perform(.start, lab.context("a", resource: resource))
        #expect(outcome.exitCode == OCFExit.notConfigured)
        #expect(outcome.output?.contains("also a guest disk") == true)
    }
}

extension VMAgentLabTests {
    /// The answer depends on the host (here /dev/kvm exists but never runs a kernel); it must come back in time with
    /// a reason, and a missing kernel means TCG.
    @Test func acceleratorProbeAnswersInTime() async throws {
        _ = try GuestLab.buildGuest()
        let clock = ContinuousClock()
        let began = clock.now
        let result = await AcceleratorProbe.run(kernel: "\(GuestLab.guestDirectory)/vmlinuz", timeout: .seconds(5))
        #expect(clock.now - began < .seconds(8))
        #expect(!result.reason.isEmpty)
        print("accelerator probe: \(result.accelerator) (\(result.reason))")
        #expect(await AcceleratorProbe.run(kernel: "/nonexistent/cvq-vmlinuz").accelerator == .tcg)
    }
}

extension VMAgentLabTests {
    /// The way the agent daemon registers VMAgent: `Executor.extraAgents` answers it for `kind: vm`.
    @Test func executorRunsVMsThroughExtraAgents() async throws {
        let lab = try GuestLab()
        defer { lab.tearDown() }
        let vmAgent = lab.agent()
        let executor = Executor(
            node: "a", config: ClusterConfig(name: "cvq", resources: [lab.resource]), runDirectory: "\(lab.directory)/a",
            pingLoops: PingLoops(report: { _, _ in }), now: { Timestamp(seconds: 0) },
            extraAgents: { resource in
                if case .vm = resource.kind { return vmAgent }
                return nil
            },
            sink: { _ in })
        let started = await executor.runDirect(.start, resource: "vm1")
        #expect(started.exitCode == OCFExit.success, "\(started)")
        try await lab.waitForAck("a", above: 2)
        #expect(await executor.runDirect(.monitor, resource: "vm1") == .success)
        let stopped = await executor.runDirect(.stop, resource: "vm1")
        #expect(stopped.exitCode == OCFExit.success, "\(stopped)")
        #expect(stopped.report?.mode == .hibernate)
        #expect(await executor.runDirect(.monitor, resource: "vm1") == .notRunning)
    }
}

extension VMAgentLabTests {
    /// A TCP session to the guest's echo service (from namespace cvq-a, over bridge cvq-br0) survives a live
    /// migration: QEMU announces the guest's MAC from the new tap and the bridge follows.
    @Test func tcpSessionSurvivesLiveMigration() async throws {
        let lab = try GuestLab(network: true)
        defer { lab.tearDown() }
        let source = lab.agent(on: "a", prepareTarget: "b")
        let started = await source.perform(.start, lab.context("a"))
        #expect(started.exitCode == OCFExit.success, "\(started)")
        try await lab.waitForAck("a", above: 2)

        let flag = "\(lab.directory)/migrated"
        let script = """
            import os, socket, sys, time
            deadline = time.time() + 30
            while True:
                try:
                    s = socket.create_connection(("198.51.100.231", 7777), timeout=2)
                    break
                except OSError:
                    if time.time() > deadline: raise
                    time.sleep(0.2)
            s.settimeout(10)
            s.sendall(b"before\\n"); print("got", s.recv(100).decode().strip(), flush=True)
            while not os.path.exists(sys.argv[1]): time.sleep(0.05)
            s.sendall(b"after\\n"); print("got", s.recv(100).decode().strip(), flush=True)
            """
        let client = Task.detached {
            Subprocess.run(["ip", "netns", "exec", GuestLab.namespace, "/usr/bin/python3", "-c", script, flag], timeout: .seconds(60))
        }
        // The session is established and echoed once before the move.
        let deadline = ContinuousClock.now + .seconds(30)
        var established = false
        while ContinuousClock.now < deadline, !established {
            let sockets = await Subprocess.run(["ip", "netns", "exec", GuestLab.namespace, "ss", "-tnH", "state", "established"])
            established = sockets.output.contains("198.51.100.231:7777")
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(established)
        try await Task.sleep(for: .milliseconds(300))

        let moved = await source.perform(.migrateTo, lab.context("a", migrationTarget: "b"))
        #expect(moved.exitCode == OCFExit.success, "\(moved)")
        _ = FileManager.default.createFile(atPath: flag, contents: Data())
        let result = await client.value
        #expect(result.succeeded, "\(result.output)")
        #expect(result.output.contains("got before") && result.output.contains("got after"), "\(result.output)")
        print("session across live migration: \(result.output.split(separator: "\n").joined(separator: "; ")); \(moved.output ?? "")")
    }
}

extension VMAgentLabTests {
    /// A target that was prepared but never received the guest (the source gave up) is not running (7); the next
    /// move's migrate_from replaces it (it holds no guest), never adding a second QEMU; stop ends it without
    /// writing a hibernate image.
    @Test func abandonedIncomingTargetIsNotRunningAndStopDiscardsIt() async throws {
        let lab = try GuestLab()
        defer { lab.tearDown() }
        let target = lab.agent(on: "b")
        let prepared = await target.perform(.migrateFrom, lab.context("b"))
        #expect(prepared.exitCode == OCFExit.success, "\(prepared)")
        #expect(prepared.report?.incoming?.hasPrefix("tcp:127.0.0.1:") == true)
        #expect(await target.perform(.monitor, lab.context("b")).exitCode == OCFExit.notRunning)
        let again = await target.perform(.migrateFrom, lab.context("b"))
        #expect(again.exitCode == OCFExit.success, "\(again)")
        let firstPID = try #require(prepared.report?.pid)
        let secondPID = try #require(again.report?.pid)
        #expect(firstPID != secondPID && !Subprocess.isAlive(pid_t(firstPID)), "the abandoned QEMU must be gone")
        let stopped = await target.perform(.stop, lab.context("b"))
        #expect(stopped.exitCode == OCFExit.success, "\(stopped)")
        #expect(stopped.report?.mode == .discarded)
        #expect(!FileManager.default.fileExists(atPath: lab.paths("b").stateFile))
        #expect(await target.perform(.monitor, lab.context("b")) == .notRunning)
    }
}

extension VMAgentLabTests {
    /// Where the guest runs, a move's migrate_from is refused: never a second QEMU holding the guest.
    @Test func migrateFromNextToARunningGuestIsRefused() async throws {
        let lab = try GuestLab()
        defer { lab.tearDown() }
        let agent = lab.agent(on: "a")
        #expect(await agent.perform(.start, lab.context("a")).exitCode == OCFExit.success)
        let refused = await agent.perform(.migrateFrom, lab.context("a"))
        #expect(refused.exitCode == OCFExit.generic && refused.output?.contains("refusing a second one") == true, "\(refused)")
        #expect(await agent.perform(.monitor, lab.context("a")) == .success)
        #expect(await agent.perform(.stop, lab.context("a")).exitCode == OCFExit.success)
    }
}

extension VMAgentLabTests {
    /// A live migration that cannot reach its target fails with a report, and the guest runs on at the source.
    @Test func failedLiveMigrationLeavesTheSourceRunning() async throws {
        let lab = try GuestLab()
        defer { lab.tearDown() }
        let source = VMAgent(settings: lab.settings) { _ in
            var report = VMReport(action: .migrateFrom, mode: .live)
            report.incoming = "tcp:127.0.0.1:1"  // nothing listens there
            return AgentOutcome(OCFExit.success, report: report)
        }
        #expect(await source.perform(.start, lab.context("a")).exitCode == OCFExit.success)
        let before = try await lab.waitForAck("a", above: 2)
        let moved = await source.perform(.migrateTo, lab.context("a", migrationTarget: "b"))
        #expect(moved.exitCode == OCFExit.generic, "\(moved)")
        #expect(await source.perform(.monitor, lab.context("a")) == .success)
        try await lab.waitForAck("a", above: before + 3)
        let noTarget = await lab.agent().perform(.migrateTo, lab.context("a", migrationTarget: "b"))
        #expect(noTarget.exitCode == OCFExit.unimplemented)
        #expect(await lab.agent().perform(.migrateTo, lab.context("a")).exitCode == OCFExit.invalidArgument)
    }
}
