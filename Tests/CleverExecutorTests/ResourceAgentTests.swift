import CleverCluster
import CleverExecutor
import CleverModel
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The executor with real resource agents: an OCF agent from Debian's resource-agents, a process, an
/// LSB script. Each test uses its own run directory and removes what it started.
@Suite(.serialized) struct ResourceAgentTests {
    func executor(_ resources: [ResourceConfig], runDirectory: String) -> Executor {
        let config = ClusterConfig(name: "t", nodes: [NodeConfig(name: "alpha", id: 1, addresses: ["198.51.100.11"])], resources: resources)
        return Executor(node: "alpha", config: config, runDirectory: runDirectory, pingLoops: PingLoops { _, _ in },
                        now: { Timestamp(seconds: Date().timeIntervalSince1970) }, sink: { _ in })
    }

    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "clevervm-agents-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/lib/ocf/resource.d/heartbeat/Dummy") && getuid() == 0,
                   "needs root and Debian's resource-agents"))
    func ocfDummyStartsMonitorsAndStops() async throws {
        let directory = try self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let dummy = ResourceConfig(id: "dummy", kind: .ocf(OCFSpec(provider: "heartbeat", type: "Dummy",
                                                                   parameters: ["state": "\(directory)/dummy.state"])))
        let executor = self.executor([dummy], runDirectory: directory)
        #expect(await executor.runDirect(.monitor, resource: "dummy").exitCode == OCFExit.notRunning)
        #expect(await executor.runDirect(.start, resource: "dummy").exitCode == OCFExit.success)
        #expect(await executor.runDirect(.monitor, resource: "dummy").exitCode == OCFExit.success)
        #expect(await executor.runDirect(.stop, resource: "dummy").exitCode == OCFExit.success)
        #expect(await executor.runDirect(.monitor, resource: "dummy").exitCode == OCFExit.notRunning)
        // A missing agent is "not installed", with its path named.
        let missing = ResourceConfig(id: "nope", kind: .ocf(OCFSpec(provider: "heartbeat", type: "NoSuchAgent")))
        let outcome = await self.executor([missing], runDirectory: directory).runDirect(.start, resource: "nope")
        #expect(outcome.exitCode == OCFExit.notInstalled)
        #expect(outcome.output?.contains("/usr/lib/ocf/resource.d/heartbeat/NoSuchAgent") == true)
    }

    @Test func aProcessSurvivesItsExecutorAndIsFoundAgain() async throws {
        let directory = try self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let worker = ResourceConfig(id: "worker", kind: .process(ProcessSpec(command: ["/bin/sleep", "300"])))
        let first = self.executor([worker], runDirectory: directory)
        #expect(await first.runDirect(.start, resource: "worker").exitCode == OCFExit.success)
        // A new executor (an agent restart) probes and finds it running; it does not start a second one.
        let second = self.executor([worker], runDirectory: directory)
        let found = await second.probe()
        #expect(found["worker"]?.role == .started)
        #expect(await second.runDirect(.start, resource: "worker").exitCode == OCFExit.success)
        let pid = try String(contentsOfFile: "\(directory)/worker.pid", encoding: .utf8)
        #expect(await second.runDirect(.stop, resource: "worker").exitCode == OCFExit.success)
        #expect(await second.runDirect(.monitor, resource: "worker").exitCode == OCFExit.notRunning)
        #expect(kill(pid_t(pid.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, 0) != 0)
    }

    @Test func lsbStatusCodesMapToOCF() async throws {
        let directory = try self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let script = "\(directory)/service"
        try """
            #!/bin/sh
            case "$1" in
                start) touch \(directory)/running ;;
                stop) rm -f \(directory)/running ;;
                status) [ -f \(directory)/running ] && exit 0 || exit 3 ;;
            esac
            """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let service = ResourceConfig(id: "service", kind: .lsb(LSBSpec(script: script)))
        let executor = self.executor([service], runDirectory: directory)
        #expect(await executor.runDirect(.monitor, resource: "service").exitCode == OCFExit.notRunning)
        #expect(await executor.runDirect(.start, resource: "service").exitCode == OCFExit.success)
        #expect(await executor.runDirect(.monitor, resource: "service").exitCode == OCFExit.success)
        #expect(await executor.runDirect(.stop, resource: "service").exitCode == OCFExit.success)
    }

    @Test func aHungActionLosesAtItsTimeout() async throws {
        let directory = try self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let script = "\(directory)/hang"
        try "#!/bin/sh\nsleep 30\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let service = ResourceConfig(id: "hang", kind: .lsb(LSBSpec(script: script)))
        let executor = self.executor([service], runDirectory: directory)
        let started = Date()
        let outcome = await executor.runDirect(.start, resource: "hang", timeout: Seconds(1))
        #expect(outcome.exitCode != OCFExit.success)
        #expect(Date().timeIntervalSince(started) < 5)
    }
}
