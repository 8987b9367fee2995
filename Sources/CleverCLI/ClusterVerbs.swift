import ArgumentParser
import CleverAgent
import CleverCluster
import CleverConfig
import CleverControl
import CleverModel
import CleverSystem
import Foundation
import Logging

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Shared by the verbs that talk to the local agent.
struct AgentOptions: ParsableArguments {
    @Option(name: .long, help: "The agent's control socket.")
    var socket = ControlSocket.defaultPath

    /// One control call. Refused only because a host just joined (its document is being merged, nothing changed),
    /// it is asked again for up to 30 s, as an operator would: `config apply` right after `join` otherwise fails.
    func call(_ request: ControlRequest) throws -> ControlResponse {
        let deadline = Date().addingTimeInterval(30)
        var told = false
        while true {
            let response = try ControlSocket.call(request, path: self.socket)
            if case .failure(let message) = response {
                if message == "refused: \(ClusterLedger.membershipChanging)", Date() < deadline {
                    if !told { Output.warn("the cluster's membership is changing (a host joined or left); waiting for it to settle") }
                    told = true
                    Thread.sleep(forTimeInterval: 0.5)
                    continue
                }
                throw CLIError(message)
            }
            return response
        }
    }
}

struct Agent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Run the cluster agent on this host (the daemon; normally started by its service).")

    @Option(name: .long, help: "The cluster config, used when this host has no saved cluster document yet.")
    var config = "/etc/clevervm/cluster.yaml"
    @Option(name: .long, help: "Where the agent keeps the cluster document.")
    var stateDirectory = "/var/lib/clevervm"
    @Option(name: .long, help: "Runtime files (pid files, resource logs).")
    var runDirectory = "/run/clevervm"
    @Option(name: .long, help: "The control socket.")
    var socket = ControlSocket.defaultPath
    @Option(name: .long, help: "Least severe log level written to stderr: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info
    @Option(name: .long, help: ArgumentHelp(
        "Keep this corosync.conf in step with the applied config (hosts set up by init/join; clevervm.service gives it).",
        valueName: "path"))
    var corosyncConf: String?
    @Option(name: .long, help: ArgumentHelp(
        "The highest group wire version to speak (\(WireVersion.supported.lowerBound)-\(WireVersion.current)): lower only to stand in for an older release in an upgrade test.",
        visibility: .hidden))
    var wireVersion = WireVersion.current

    func validate() throws {
        guard WireVersion.supported.contains(self.wireVersion) else {
            throw ValidationError("--wire-version \(self.wireVersion) is not one this agent speaks (\(WireVersion.supported.lowerBound)-\(WireVersion.current))")
        }
    }

    func run() async throws {
        guard getuid() == 0 else {
            Output.printError("the agent must run as root (it manages addresses, processes and VMs)", json: false)
            throw ExitCode(1)
        }
        let level = self.logLevel
        LoggingSystem.bootstrap { label in
            var handler = JournalLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        do {
            try await AgentService.runUntilSignalled(
                options: .init(configPath: self.config, stateDirectory: self.stateDirectory, runDirectory: self.runDirectory,
                               socketPath: self.socket, corosyncConfPath: self.corosyncConf, highestWireVersion: self.wireVersion),
                logger: Logger(label: "clevervm.agent"))
        } catch {
            Output.printError(String(describing: error), json: false)
            throw ExitCode(1)
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One screen: nodes, quorum, coordinator, every resource and where it runs, failures, marks.")
    @OptionGroup var agent: AgentOptions
    @OptionGroup var output: OutputOptions
    @Flag(name: .long, help: "Refresh every 2 seconds until interrupted.")
    var watch = false

    func run() throws {
        try Output.run(json: self.output.json) {
            repeat {
                guard case .status(let report) = try self.agent.call(.status) else { throw CLIError("unexpected answer") }
                if self.output.json {
                    try Output.printJSON(report)
                } else {
                    if self.watch { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                    print(report.render())
                }
                if self.watch { Thread.sleep(forTimeInterval: 2) }
            } while self.watch
        }
    }
}

/// A verb that asks the cluster to record an operator intent.
protocol IntentVerb: ParsableCommand {
    var agent: AgentOptions { get }
    var output: OutputOptions { get }
    func intent() throws -> OperatorIntent
}

extension IntentVerb {
    func run() throws {
        try Output.run(json: self.output.json) {
            let intent = try self.intent()
            guard case .done(let message) = try self.agent.call(.intent(intent)) else { throw CLIError("unexpected answer") }
            if self.output.json {
                try Output.printJSON(["result": message])
            } else {
                print(message)
            }
        }
    }
}

struct ForceStart: IntentVerb {
    static let configuration = CommandConfiguration(
        commandName: "forcestart", abstract: "Ask the cluster to run a resource, and record that intent.")
    @Argument(help: "The resource (e.g. the VM).") var resource: String
    @OptionGroup var agent: AgentOptions
    @OptionGroup var output: OutputOptions
    func intent() -> OperatorIntent { .forceStart(resource: self.resource) }
}

struct ForceStop: IntentVerb {
    static let configuration = CommandConfiguration(
        commandName: "forcestop", abstract: "Ask the cluster to stop a resource (a VM hibernates), and record that intent.")
    @Argument(help: "The resource (e.g. the VM).") var resource: String
    @OptionGroup var agent: AgentOptions
    @OptionGroup var output: OutputOptions
    func intent() -> OperatorIntent { .forceStop(resource: self.resource) }
}

struct Cleanup: IntentVerb {
    static let configuration = CommandConfiguration(
        abstract: "Forget failure records so a resource may run again where it failed too often.")
    @Argument(help: "The resource (default: every resource).") var resource: String?
    @Option(name: .long, help: "Only on this node.") var node: String?
    @OptionGroup var agent: AgentOptions
    @OptionGroup var output: OutputOptions
    func intent() -> OperatorIntent { .cleanup(resource: self.resource, node: self.node) }
}

struct Migrate: IntentVerb {
    static let configuration = CommandConfiguration(
        abstract: "Move everything away from this host and mark it unfit until `unmigrate`.")
    @Option(name: .long, help: "Prefer this node as the destination.") var to: String?
    @Option(name: .long, help: "The mark expires after this long (e.g. 2h); default: until unmigrate.") var lifetime: String?
    @Option(name: .long, help: "The host to empty (default: this host).") var node: String?
    @OptionGroup var agent: AgentOptions
    @OptionGroup var output: OutputOptions
    func intent() throws -> OperatorIntent {
        var expires: Timestamp?
        if let lifetime = self.lifetime {
            guard let duration = Seconds(parsing: lifetime), duration.value > 0 else {
                throw CLIError("--lifetime: '\(lifetime)' is not a duration (e.g. 30m, 2h)")
            }
            expires = Timestamp(seconds: Date().timeIntervalSince1970) + duration
        }
        return .migrate(node: self.node.map(NodeSelector.named) ?? .thisHost, to: self.to, expires: expires)
    }
}

struct Unmigrate: IntentVerb {
    static let configuration = CommandConfiguration(
        abstract: "Remove the unfit mark `migrate` set; nothing moves back by itself (stickiness).")
    @Option(name: .long, help: "The host (default: this host).") var node: String?
    @OptionGroup var agent: AgentOptions
    @OptionGroup var output: OutputOptions
    func intent() -> OperatorIntent { .unmigrate(node: self.node.map(NodeSelector.named) ?? .thisHost) }
}

struct Standby: IntentVerb {
    static let configuration = CommandConfiguration(abstract: "Put a node in standby: it runs nothing, clones included.")
    @Argument(help: "The node.") var node: String
    @OptionGroup var agent: AgentOptions
    @OptionGroup var output: OutputOptions
    func intent() -> OperatorIntent { .standby(node: self.node) }
}

struct Unstandby: IntentVerb {
    static let configuration = CommandConfiguration(abstract: "Take a node out of standby.")
    @Argument(help: "The node.") var node: String
    @OptionGroup var agent: AgentOptions
    @OptionGroup var output: OutputOptions
    func intent() -> OperatorIntent { .unstandby(node: self.node) }
}

/// `start` / `stop`: directly on this host, behind the cluster's back, as the old tool allowed.
enum DirectAction {
    static func run(_ action: ResourceAction, resource: String, agent: AgentOptions, json: Bool) throws {
        try Output.run(json: json) {
            Output.warn("\(action.rawValue) acts on this host only, behind the cluster's back: the result may contradict "
                        + "what the cluster wants, and the cluster may undo it. Prefer `clevervm force\(action.rawValue)`.")
            guard case .done(let message) = try agent.call(.direct(action: action, resource: resource)) else {
                throw CLIError("unexpected answer")
            }
            if json { try Output.printJSON(["result": message]) } else { print(message) }
        }
    }
}

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a resource on this host directly, behind the cluster's back (warned; prefer forcestart).")
    @Argument(help: "The resource.") var resource: String
    @OptionGroup var agent: AgentOptions
    @OptionGroup var output: OutputOptions
    func run() throws { try DirectAction.run(.start, resource: self.resource, agent: self.agent, json: self.output.json) }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop a resource on this host directly, behind the cluster's back (warned; prefer forcestop).")
    @Argument(help: "The resource.") var resource: String
    @OptionGroup var agent: AgentOptions
    @OptionGroup var output: OutputOptions
    func run() throws { try DirectAction.run(.stop, resource: self.resource, agent: self.agent, json: self.output.json) }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "History: transitions, failures, operator commands.")
    @Option(name: .long, help: "How many of the latest events.") var last = 50
    @OptionGroup var agent: AgentOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try Output.run(json: self.output.json) {
            guard case .events(let events) = try self.agent.call(.events(limit: self.last)) else { throw CLIError("unexpected answer") }
            if self.output.json { try Output.printJSON(events); return }
            for event in events {
                let date = Date(timeIntervalSince1970: event.at.seconds)
                print("\(ISO8601DateFormatter().string(from: date)) \(event.node): \(event.text)")
            }
        }
    }
}
