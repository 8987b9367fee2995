import CleverCluster
import CleverModel
import CleverSystem
import Foundation

/// Any OCF resource agent under /usr/lib/ocf/resource.d, called as Pacemaker calls it: the action as
/// argument, parameters as OCF_RESKEY_*, meta values as OCF_RESKEY_CRM_meta_*.
public struct OCFAgent: ResourceAgent {
    public static let root = "/usr/lib/ocf"
    public let spec: OCFSpec

    public init(spec: OCFSpec) { self.spec = spec }

    public var path: String { "\(Self.root)/resource.d/\(self.spec.provider)/\(self.spec.type)" }

    func environment(_ action: ResourceAction, _ context: ActionContext) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["OCF_ROOT"] = Self.root
        environment["OCF_FUNCTIONS_DIR"] = "\(Self.root)/lib/heartbeat"
        environment["OCF_RESOURCE_INSTANCE"] = context.resource.id
        environment["OCF_RESOURCE_TYPE"] = self.spec.type
        environment["OCF_RESOURCE_PROVIDER"] = self.spec.provider
        environment["OCF_RESKEY_CRM_meta_timeout"] = String(Int(context.timeout.value * 1000))
        environment["OCF_RESKEY_CRM_meta_interval"] = action == .monitor
            ? String(Int((context.resource.monitorInterval?.value ?? 0) * 1000)) : "0"
        environment["HA_RSCTMP"] = context.runDirectory
        if let target = context.migrationTarget {
            environment["OCF_RESKEY_CRM_meta_migrate_target"] = target
            environment["OCF_RESKEY_CRM_meta_migrate_source"] = context.node
        }
        for (key, value) in self.spec.parameters { environment["OCF_RESKEY_\(key)"] = value }
        return environment
    }

    public func perform(_ action: ResourceAction, _ context: ActionContext) async -> AgentOutcome {
        guard FileManager.default.isExecutableFile(atPath: self.path) else {
            return AgentOutcome(OCFExit.notInstalled, "OCF agent \(self.path) not found (Debian: resource-agents)")
        }
        let result = await Subprocess.run([self.path, action.rawValue], timeout: Duration(context.timeout),
                                          environment: self.environment(action, context))
        let output = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        if result.status == 124, output.hasSuffix("(timed out after \(Duration(context.timeout)))") {
            return AgentOutcome(OCFExit.timedOut, "\(action.rawValue) timed out after \(context.timeout)")
        }
        return AgentOutcome(Int(result.status), output.isEmpty ? nil : String(output.suffix(500)))
    }

    /// The agent's meta-data XML, to validate parameters and read default timeouts.
    public func metadata() async -> String? {
        guard FileManager.default.isExecutableFile(atPath: self.path) else { return nil }
        let result = await Subprocess.run([self.path, "meta-data"], timeout: .seconds(10),
                                          environment: ["OCF_ROOT": Self.root, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        return result.succeeded ? result.output : nil
    }
}

/// An LSB init script: start/stop/status, with LSB's status codes mapped to OCF's.
public struct LSBAgent: ResourceAgent {
    public let script: String

    public init(script: String) { self.script = script }

    public func perform(_ action: ResourceAction, _ context: ActionContext) async -> AgentOutcome {
        guard FileManager.default.isExecutableFile(atPath: self.script) else {
            return AgentOutcome(OCFExit.notInstalled, "init script \(self.script) not found or not executable")
        }
        let verb: String
        switch action {
        case .start, .migrateFrom: verb = "start"
        case .stop, .migrateTo: verb = "stop"
        case .monitor: verb = "status"
        case .promote, .demote: return AgentOutcome(OCFExit.unimplemented, "an LSB script has no promoted role")
        }
        let result = await Subprocess.run([self.script, verb], timeout: Duration(context.timeout))
        let output = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        switch (verb, result.status) {
        case (_, 0): return .success
        case ("status", 1...4): return .notRunning
        default: return AgentOutcome(OCFExit.generic, "\(self.script) \(verb) exited \(result.status): \(output.suffix(300))")
        }
    }
}
