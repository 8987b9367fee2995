import ArgumentParser
import CleverCIB
import CleverConfig
import CleverControl
import CleverModel
import CleverSystem
import Foundation

/// Where an offline verb gets its cluster from: a config (+ optional state file) or a Pacemaker CIB.
struct ClusterInputOptions: ParsableArguments {
    @Option(name: .long, help: "The CleverVM config file (YAML). Without --config or --cib: the live cluster.")
    var config: String?

    @Option(name: .long, help: "A state file (JSON, as written by --save-state). Default: all nodes online, nothing running.")
    var state: String?

    @Option(name: .long, help: "A Pacemaker CIB (XML): its configuration and status sections.")
    var cib: String?

    @Option(name: .long, help: "Without --config or --cib: the local agent's control socket (the live cluster).")
    var socket = ControlSocket.defaultPath

    @Option(name: .long, help: "Simulated time, in seconds since the epoch (default: the CIB's time, or now).")
    var now: Double?

    func validate() throws {
        if self.config != nil, self.cib != nil { throw ValidationError("give either --config or --cib, not both") }
        if self.config == nil, self.cib == nil, self.state != nil {
            throw ValidationError("--state goes with --config; without --config the live cluster's state is used")
        }
        if self.cib != nil, self.state != nil {
            throw ValidationError("--state goes with --config; a CIB carries its own status section")
        }
    }

    struct Loaded {
        var config: ClusterConfig
        var state: ClusterState
        var now: Timestamp
        var warnings: [String]
    }

    func load() throws -> Loaded {
        let wallClock = Timestamp(seconds: Date().timeIntervalSince1970)
        if let cib = self.cib {
            let result = try CIBImport.load(path: cib)
            let warnings = result.unsupported.map { "\(cib): not imported: \($0)" }
            return Loaded(config: result.config, state: result.state,
                          now: self.now.map(Timestamp.init(seconds:)) ?? result.now ?? wallClock, warnings: warnings)
        }
        guard let configPath = self.config else {
            // The live cluster, through the local agent.
            let response = try ControlSocket.call(.snapshot, path: self.socket)
            switch response {
            case .snapshot(let config, let state, let now):
                return Loaded(config: config, state: state, now: self.now.map(Timestamp.init(seconds:)) ?? now, warnings: [])
            case .failure(let message): throw CLIError(message)
            default: throw CLIError("unexpected answer from the agent")
            }
        }
        let config = try ConfigFile.load(path: configPath)
        var state = ClusterState.fresh(for: config)
        if let path = self.state {
            state = try StateFile.load(path: path, config: config)
        }
        return Loaded(config: config, state: state, now: self.now.map(Timestamp.init(seconds:)) ?? wallClock, warnings: [])
    }
}

/// The JSON state file used by `simulate --state` / `--save-state`.
enum StateFile {
    static func load(path: String, config: ClusterConfig) throws -> ClusterState {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("\(path): cannot read the state file (missing or unreadable)")
        }
        let state: ClusterState
        do {
            state = try JSONDecoder().decode(ClusterState.self, from: data)
        } catch let DecodingError.dataCorrupted(context) {
            throw CLIError("\(path): not a valid state file: \(context.debugDescription) at \(Self.path(context.codingPath))")
        } catch let DecodingError.keyNotFound(key, context) {
            throw CLIError("\(path): missing key '\(key.stringValue)' at \(Self.path(context.codingPath))")
        } catch let DecodingError.typeMismatch(_, context) {
            throw CLIError("\(path): wrong type at \(Self.path(context.codingPath)): \(context.debugDescription)")
        } catch {
            throw CLIError("\(path): not a valid state file: \(error)")
        }
        for node in state.nodes.keys where config.node(named: node) == nil {
            throw CLIError("\(path): node '\(node)' is not in the config")
        }
        for resource in state.resources.keys where config.resource(named: resource) == nil {
            throw CLIError("\(path): resource '\(resource)' is not in the config")
        }
        return state
    }

    static func save(_ state: ClusterState, to path: String) throws {
        do {
            try AtomicFile.write(Data(try Output.json(state).utf8), to: path, mode: 0o644)
        } catch let error as AtomicFile.WriteError {
            throw CLIError("the state file: \(error)")
        }
    }

    private static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.isEmpty ? "the top level" : codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    }
}
