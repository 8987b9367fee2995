import CleverCluster
import CleverModel
import CleverSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A long-running command. It runs in its own session, detached from the agent, so an agent restart
/// does not stop it; a pid file lets the agent find it again.
public struct ProcessAgent: ResourceAgent {
    public let command: [String]

    public init(command: [String]) { self.command = command }

    func pidFile(_ context: ActionContext) -> String { "\(context.runDirectory)/\(context.resource.id).pid" }

    func runningPID(_ context: ActionContext) -> pid_t? {
        guard let text = try? String(contentsOfFile: self.pidFile(context), encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), Subprocess.isAlive(pid)
        else { return nil }
        return pid
    }

    public func perform(_ action: ResourceAction, _ context: ActionContext) async -> AgentOutcome {
        switch action {
        case .start, .migrateFrom:
            if self.runningPID(context) != nil { return .success }
            guard let executable = self.command.first, FileManager.default.isExecutableFile(atPath: executable)
                || executable.firstIndex(of: "/") == nil
            else {
                return AgentOutcome(OCFExit.notInstalled, "\(self.command.first ?? "(empty)") is not an executable file")
            }
            do {
                let log = "\(context.runDirectory)/\(context.resource.id).log"
                let pid = try Subprocess.spawnDaemon(self.command, log: log)
                try? "\(pid)\n".write(toFile: self.pidFile(context), atomically: true, encoding: .utf8)
                try? await Task.sleep(for: .milliseconds(100))
                guard Subprocess.isAlive(pid) else {
                    return AgentOutcome(OCFExit.generic, "exited at once: \(Subprocess.tail(log, lines: 5))")
                }
                return .success
            } catch {
                return AgentOutcome(OCFExit.generic, error.description)
            }
        case .stop, .migrateTo:
            guard let pid = self.runningPID(context) else { return .success }
            kill(pid, SIGTERM)
            let deadline = ContinuousClock.now + Duration(context.timeout) - .milliseconds(500)
            while Subprocess.isAlive(pid), ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
            if Subprocess.isAlive(pid) {
                kill(pid, SIGKILL)
                try? await Task.sleep(for: .milliseconds(50))
            }
            unlink(self.pidFile(context))
            return Subprocess.isAlive(pid) ? AgentOutcome(OCFExit.generic, "pid \(pid) survived SIGKILL") : .success
        case .monitor:
            return self.runningPID(context) == nil ? .notRunning : .success
        case .promote, .demote:
            return AgentOutcome(OCFExit.unimplemented, "a process resource has no promoted role")
        }
    }
}
