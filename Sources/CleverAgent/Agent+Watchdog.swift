import CleverAgentCore
import CleverCluster
import CleverModel
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The agent's side of watchdog fencing (issue 11): opening the host's watchdog, the heartbeat of the agent loop,
/// and what runs here (the core refuses resources on a host whose watchdog is not configured). Agent.swift calls
/// these from lines marked `watchdog (issue 11)`.
extension Agent {
    /// Arms the host's watchdog as its node config says: a device is opened (a clear error when it cannot be),
    /// `none` runs without (a warning), nothing configured runs no resources (`AgentCore.refusalWithoutWatchdog`).
    static func openWatchdog(node: NodeConfig, config: ClusterConfig, logger: Logger) throws(AgentStop) -> WatchdogPetter? {
        let say: @Sendable (String) -> Void = { text in logger.notice("\(text)") }
        switch node.watchdog {
        case .device(let path):
            do {
                let petter = try WatchdogPetter(path: path, timing: FencingTiming(config: config), node: node, log: say)
                return petter
            } catch {
                throw AgentStop.watchdogUnavailable(error.description)
            }
        case .disabled:
            say("warning: node \(node.name) runs without a watchdog (watchdog: none): a hung host is not reset")
            return nil
        case nil:
            say("node \(node.name) has no watchdog configured: this host runs no resources (set `watchdog: /dev/watchdog` "
                + "or `watchdog: none` in its node config)")
            return nil
        }
    }

    /// The agent loop's heartbeat: a beat every tenth of a second from the actor itself, so a stuck actor stops it.
    func startWatchdogHeartbeat() -> Task<Void, Never>? {
        guard self.watchdog != nil else { return nil }
        return Task {
            while !Task.isCancelled {
                self.watchdogBeat()
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    func watchdogBeat() { self.watchdog?.agentBeat() }

    /// The restart loop's pause between agent instances beats too: the loop is alive, only reconnecting.
    static func sleepBeating(_ watchdog: WatchdogPetter?, seconds: Double) async throws {
        let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < end {
            watchdog?.agentBeat()
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// What runs here changed (a probe, a result, a self-fence).
    func watchdogNote(_ roles: [String: ResourceRole]) {
        self.watchdog?.localResourcesChanged(runsSomething: roles.values.contains { $0.isActive })
    }

    /// Before an action that may start something here: from now on something may run.
    func watchdogNoteStarting(_ request: ActionRequest) {
        if [.start, .promote, .migrateFrom].contains(request.action) { self.watchdog?.localResourcesChanged(runsSomething: true) }
    }
}
