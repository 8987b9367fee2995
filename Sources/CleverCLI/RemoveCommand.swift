import ArgumentParser
import CleverConfig
import CleverControl
import CleverModel
import CleverSetup
import CleverSystem
import Foundation

/// `clevervm remove NODE`, on a member: NODE leaves the cluster config and this host's corosync.conf; corosync
/// reloads and the agent applies the config cluster-wide. Power NODE off (or stop its services) first.
struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove NODE from the cluster (run on another member, with NODE shut down).")
    @OptionGroup var setup: SetupOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The node to remove.") var node: String
    @Option(name: .long, help: "The agent's control socket.") var socket = ControlSocket.defaultPath

    struct Report: Encodable {
        var cluster: String
        var removed: String
        var nodes: [String]
        var changed: [String]
    }

    func run() throws {
        try Output.run(json: self.output.json) {
            let paths = self.setup.paths
            let cluster: ClusterConfig
            do { cluster = try ConfigFile.load(path: paths.clusterConfig) } catch {
                throw SetupError(.badInput, "this host is not a cluster member: \(error)")
            }
            let outcome: RemovePlan.Outcome
            switch RemovePlan.plan(node: self.node, cluster: cluster, localNode: try? HostIdentity.shortHostName()) {
            case .success(let value): outcome = value
            case .failure(let error): throw error
            }
            guard case .remove(let config, let corosync) = outcome else {
                let report = Report(cluster: cluster.name, removed: self.node, nodes: cluster.nodes.map(\.name), changed: [])
                if self.output.json { try Output.printJSON(report) } else { print("\(self.node) is not in cluster '\(cluster.name)'; nothing changed.") }
                return
            }
            let transaction = FileTransaction()
            do {
                try transaction.write(Data(ConfigFile.render(config).utf8), to: paths.clusterConfig, mode: 0o644)
                try transaction.write(Data(corosync.utf8), to: paths.corosyncConf, mode: 0o644)
                if self.setup.startsServices {
                    try Services.run(["corosync-cfgtool", "-R"], what: "corosync did not reload the nodelist without \(self.node)")
                    if FileManager.default.fileExists(atPath: self.socket) {
                        let response = try ControlSocket.call(.applyConfig(config), path: self.socket)
                        if case .failure(let message) = response { throw SetupError(.service, "the agent refused the config without \(self.node): \(message)") }
                    }
                }
            } catch {
                let problems = transaction.rollBack()
                if self.setup.startsServices { _ = Subprocess.run(["corosync-cfgtool", "-R"]) }
                let base = (error as? SetupError) ?? SetupError(.io, String(describing: error))
                throw SetupError(base.code, "\(base.message)\n(\(problems.isEmpty ? "every file was put back as it was" : "rolling back also failed: \(problems.joined(separator: "; "))"))")
            }
            let report = Report(cluster: cluster.name, removed: self.node, nodes: config.nodes.map(\.name),
                                changed: [paths.clusterConfig, paths.corosyncConf])
            if self.output.json { try Output.printJSON(report) } else {
                print("\(self.node) removed from cluster '\(cluster.name)' (nodes now: \(config.nodes.map(\.name).joined(separator: ", "))).")
            }
        }
    }
}
