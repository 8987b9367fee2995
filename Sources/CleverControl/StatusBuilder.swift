import Foundation
import CleverCluster
import CleverModel
import CleverScheduler

extension StatusReport {
    /// The one-screen view, from the replicated ledger (identical on every host) and the scheduler's
    /// current target.
    public init(ledger: ClusterLedger, pendingActions: [ActionRequest], now: Timestamp) {
        let config = ledger.config
        let state = ledger.clusterState
        let transition = Scheduler(config: config).schedule(state: state, now: now)
        let activeMarks = state.marks.filter { $0.isActive(at: now) }
        let agentless = ledger.agentless
        let frozen = ledger.frozenByAgentless
        let nodes = config.nodes.map { node in
            var entry = Self.node(node, state: state, marks: activeMarks)
            if agentless.contains(node.name) { entry.agentDown = true }
            entry.watchdog = node.watchdog?.description
            return entry
        }
        let resources = config.resources.map { resource in
            var entry = Self.resource(resource, state: state, transition: transition)
            // What runs on a host whose agent is down (online in the scheduler's view, so among the roles) stays
            // there until the agent is back, with its group and dependents: the scheduler's target is not what happens now.
            entry.frozenBy = frozen[resource.id]
            if entry.frozenBy != nil { entry.target = [:] }
            let stopFailed = (state.resources[resource.id] ?? [:]).filter { $0.value.stopFailed }.keys.sorted()
            if !stopFailed.isEmpty { entry.stopFailedOn = stopFailed }
            entry.since = entry.roles.isEmpty ? nil : ledger.activeSince[resource.id]
            entry.lastMove = ledger.lastMoves[resource.id]
            let outdated = state.outdatedDisks.filter { $0.volume == resource.id }.map(\.node)
            if !outdated.isEmpty { entry.outdatedOn = outdated }
            return entry
        }
        self.init(
            cluster: config.name, localNode: ledger.localNode,
            coordinator: ledger.coordinatorNode, quorate: ledger.quorate, configEpoch: config.epoch,
            nodes: nodes, resources: resources, marks: activeMarks,
            pendingActions: pendingActions.map(\.description), now: now)
    }

    static func node(_ node: NodeConfig, state: ClusterState, marks: [PlacementMark]) -> Node {
        let nodeState = state.nodes[node.name]
        let unfit = marks.first { $0.kind == .ban && $0.resource == nil && $0.node == node.name }
        return Node(
            name: node.name, id: node.id, online: nodeState?.status == .online && nodeState?.agentDown != true,
            standby: nodeState?.standby ?? false,
            unfit: unfit != nil, unfitUntil: unfit?.expires, attributes: nodeState?.attributes ?? [:])
    }

    static func resource(_ resource: ResourceConfig, state: ClusterState, transition: Transition) -> Resource {
        let perNode = state.resources[resource.id] ?? [:]
        var roles: [String: String] = [:]
        // What ran on an offline node is gone with it (stopped or self-fenced): not shown as running.
        for (node, entry) in perNode where entry.role != .stopped && entry.role != .unknown && state.nodes[node]?.status == .online {
            roles[node] = entry.role.rawValue
        }
        var target: [String: String] = [:]
        for placed in transition.placement where placed.baseResource == resource.id {
            target[placed.node] = placed.role.rawValue
        }
        let failCounts: [String: Int] = perNode.compactMapValues { $0.failCount > 0 ? $0.failCount : nil }
        let targetRole: String? = state.targetRoles[resource.id]?.rawValue ?? resource.meta.targetRole?.rawValue
        return Resource(
            id: resource.id, type: resource.kind.typeName, roles: roles, target: target == roles ? [:] : target,
            targetRole: targetRole, failCounts: failCounts, blocked: transition.blocked[resource.id])
    }

    /// The text an operator reads at 3 a.m.: what is wrong first, then where everything runs.
    public func render() -> String {
        var lines: [String] = []
        let online = self.nodes.filter(\.online).count
        lines.append("Cluster \(self.cluster): \(self.quorate ? "quorate" : "NO QUORUM — resources here are stopped")"
                     + ", \(online)/\(self.nodes.count) nodes online, coordinator \(self.coordinator ?? "none")"
                     + ", config epoch \(self.configEpoch) (you are on \(self.localNode))")
        var problems: [String] = []
        for node in self.nodes where !node.online {
            problems.append(node.agentDown == true
                ? "node \(node.name): its clevervm agent is not running (Corosync is): what runs there is left alone and "
                    + "nothing of it moves until the agent is back (`systemctl start clevervm` on \(node.name))"
                : "node \(node.name) is OFFLINE")
        }
        problems += self.watchdogProblems
        if self.quorate, let problem = self.tieBreaker?.problem(localNode: self.localNode) { problems.append(problem) }
        for resource in self.resources {
            for (node, count) in resource.failCounts.sorted(by: { $0.key < $1.key }) {
                problems.append("\(resource.id) failed \(count)× on \(node) (`clevervm cleanup \(resource.id)` once fixed)")
            }
            for node in resource.stopFailedOn ?? [] {
                problems.append("\(resource.id) could not be stopped on \(node) and is left alone there: check it, then "
                                + "`clevervm cleanup \(resource.id)` to try again")
            }
            for node in resource.outdatedOn ?? [] {
                let others = self.nodes.map(\.name).filter { $0 != node }
                problems.append("\(resource.id) on \(node) is Outdated (it missed writes while the replication link was down): it is "
                                + "never promoted there; it becomes current by resyncing from \(others.joined(separator: " or ")) "
                                + "(bring it back), or `clevervm volume accept \(resource.id) --node \(node)` to run on its older data")
            }
            if let blocked = resource.blocked, resource.targetRole != "Stopped" {
                problems.append("\(resource.id) cannot run: \(blocked)")
            }
        }
        for mark in self.marks {
            let until = mark.expires.map { " until \(Self.clock($0))" } ?? " until `clevervm unmigrate`"
            problems.append(mark.kind == .ban
                ? "node \(mark.node) is marked unfit by \(mark.createdBy)\(until)"
                : "\(mark.resource ?? "everything") prefers \(mark.node) (\(mark.createdBy))\(until)")
        }
        if !problems.isEmpty {
            lines.append("")
            lines.append("Attention:")
            lines += problems.map { "  ! \($0)" }
        }
        lines.append("")
        lines.append("Nodes:")
        let nodeWidth = self.nodes.map(\.name.count).max() ?? 4
        for node in self.nodes {
            var flags: [String] = [node.online ? "online" : node.agentDown == true ? "AGENT DOWN (Corosync up)" : "OFFLINE"]
            if node.standby { flags.append("standby") }
            if node.unfit { flags.append("unfit") }
            if node.name == self.coordinator { flags.append("coordinator") }
            let attributes = node.attributes.filter { !$0.key.hasPrefix("master-") }.sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            lines.append("  \(node.name.padded(to: nodeWidth))  id \(node.id)  \(flags.joined(separator: ", "))\(attributes.isEmpty ? "" : "  [\(attributes)]")")
        }
        lines.append("")
        lines.append("Resources:")
        let idWidth = self.resources.map(\.id.count).max() ?? 4
        let typeWidth = self.resources.map(\.type.count).max() ?? 4
        for resource in self.resources {
            let placed = resource.roles.sorted { $0.key < $1.key }.map { "\($0.value) on \($0.key)" }
            var text = placed.isEmpty ? "Stopped" : placed.joined(separator: ", ")
            if resource.targetRole == "Stopped" { text += " (forcestop: stays stopped)" }
            if !resource.target.isEmpty {
                text += "  -> moving to " + resource.target.sorted { $0.key < $1.key }.map { "\($0.value) on \($0.key)" }.joined(separator: ", ")
            }
            if let since = resource.since, resource.type == "vm" {
                text += ", up \(Self.duration(self.now.seconds - since.seconds))"
            }
            if let node = resource.frozenBy { text += "  (left alone: \(node)'s agent is down)" }
            lines.append("  \(resource.id.padded(to: idWidth))  \(resource.type.padded(to: typeWidth))  \(text)")
            let indent = String(repeating: " ", count: idWidth + typeWidth + 6)
            if let move = resource.lastMove {
                let how = switch move.mode {
                case .live: "live"
                case .hibernate: "hibernate"
                case .coldBoot: "cold boot (RAM state lost)"
                }
                lines.append("\(indent)last move: \(how)\(move.from.map { " from \($0)" } ?? "") "
                             + "to \(move.to) at \(Self.clock(move.at))" + (move.downtimeMilliseconds.map { ", guest downtime \($0) ms" } ?? ""))
            }
            if let replication = resource.replication { lines.append("\(indent)\(replication)") }
            if let outdated = resource.outdatedOn { lines.append("\(indent)disk Outdated on \(outdated.joined(separator: ", "))") }
        }
        if !self.pendingActions.isEmpty {
            lines.append("")
            lines.append("In progress: " + self.pendingActions.joined(separator: "; "))
        }
        return lines.joined(separator: "\n")
    }

    static func duration(_ seconds: Double) -> String {
        let total = max(0, Int(seconds))
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m \(total % 60)s" }
        if total < 86400 { return "\(total / 3600)h \(total % 3600 / 60)m" }
        return "\(total / 86400)d \(total % 86400 / 3600)h"
    }

    static func clock(_ time: Timestamp) -> String {
        let seconds = Int(time.seconds) % 86400
        return String(format: "%02d:%02d:%02d UTC", seconds / 3600, seconds % 3600 / 60, seconds % 60)
    }
}
