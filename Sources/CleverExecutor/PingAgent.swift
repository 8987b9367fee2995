import CleverCluster
import CleverModel
import CleverSystem
import Foundation

/// Connectivity as a node attribute (Pacemaker's ocf:pacemaker:ping): while started, pings its hosts
/// every second and reports `reachable × multiplier`, dampened: a new value is reported only after it
/// has held for `dampen`, so one lost packet does not move a VM.
public struct PingAgent: ResourceAgent {
    public let spec: PingSpec
    let loops: PingLoops

    public init(spec: PingSpec, loops: PingLoops) {
        self.spec = spec
        self.loops = loops
    }

    public func perform(_ action: ResourceAction, _ context: ActionContext) async -> AgentOutcome {
        switch action {
        case .start, .migrateFrom:
            await self.loops.start(context.resource.id, spec: self.spec)
            return .success
        case .stop, .migrateTo:
            await self.loops.stop(context.resource.id, attribute: self.spec.attribute)
            return .success
        case .monitor:
            return await self.loops.isRunning(context.resource.id) ? .success : .notRunning
        case .promote, .demote:
            return AgentOutcome(OCFExit.unimplemented, "ping has no promoted role")
        }
    }
}

/// The running ping loops of this host, reporting through `report(name, value)`.
public actor PingLoops {
    public typealias Report = @Sendable (String, String?) async -> Void
    private var tasks: [String: Task<Void, Never>] = [:]
    private let report: Report
    private let period: Duration

    public init(period: Duration = .seconds(1), report: @escaping Report) {
        self.period = period
        self.report = report
    }

    public func isRunning(_ id: String) -> Bool { self.tasks[id] != nil }

    public func start(_ id: String, spec: PingSpec) {
        guard self.tasks[id] == nil else { return }
        let report = self.report
        let period = self.period
        self.tasks[id] = Task {
            var reported: Int?
            var pending: (value: Int, since: ContinuousClock.Instant)?
            while !Task.isCancelled {
                let started = ContinuousClock.now
                var reachable = 0
                for host in spec.hosts {
                    let result = await Subprocess.run(["ping", "-q", "-n", "-c", "1", "-W", "1", host], timeout: .seconds(3))
                    if result.succeeded { reachable += 1 }
                }
                let value = reachable * spec.multiplier
                if reported == nil {
                    // The first measurement is reported at once: the cluster waits for it to place anything.
                    reported = value
                    await report(spec.attribute, String(value))
                } else if value == reported {
                    pending = nil
                } else if let waiting = pending, waiting.value == value {
                    if ContinuousClock.now - waiting.since >= Duration(spec.dampen) {
                        reported = value
                        pending = nil
                        await report(spec.attribute, String(value))
                    }
                } else {
                    pending = (value, started)
                    if spec.dampen.value == 0 {
                        reported = value
                        pending = nil
                        await report(spec.attribute, String(value))
                    }
                }
                let elapsed = ContinuousClock.now - started
                if elapsed < period { try? await Task.sleep(for: period - elapsed) }
            }
        }
    }

    public func stop(_ id: String, attribute: String) async {
        guard let task = self.tasks.removeValue(forKey: id) else { return }
        task.cancel()
        await self.report(attribute, nil)
    }
}
