import CleverModel
import CorosyncConfig

/// `clevervm remove NODE`, on a member: the config without NODE (epoch raised) and its corosync.conf. Pure.
public enum RemovePlan {
    public enum Outcome: Hashable, Sendable {
        case remove(ClusterConfig, corosyncConf: String)
        /// NODE is not in the config (removed before): nothing to do.
        case notMember
    }

    public static func plan(node: String, cluster: ClusterConfig, localNode: String?) -> Result<Outcome, SetupError> {
        guard cluster.node(named: node) != nil else { return .success(.notMember) }
        if node == localNode {
            return .failure(SetupError(.badInput, "\(node) is this host: run `clevervm remove \(node)` on another member"))
        }
        guard cluster.nodes.count > 1 else {
            return .failure(SetupError(.badInput, "\(node) is the cluster's only node"))
        }
        var config = cluster
        config.nodes.removeAll { $0.name == node }
        config.epoch += 1
        // Constraints and attributes naming the node stay valid: a rule on a missing node never matches.
        do {
            return .success(.remove(config, corosyncConf: try CorosyncConfigFile.render(config)))
        } catch {
            return .failure(SetupError(.badInput, "no corosync.conf without \(node): \(error.problems.joined(separator: "; "))"))
        }
    }
}
