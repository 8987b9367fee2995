import CleverCluster
import CleverControl
import CleverModel
import CleverVolume
import Foundation

/// What the templates show, built from a frame: plain values, so a template only lays out and escapes.
enum Views {
    struct Banner {
        var agentDown: String?
        var notQuorate: String?
        var staleSince: String?
    }

    static func banner(_ frame: Frame) -> Banner {
        var banner = Banner()
        if let error = frame.agentError {
            banner.agentDown = "The clevervm agent on this host is not answering: \(error)"
            banner.staleSince = frame.fetchedAt.map { "What is shown below is as of \(Self.clock($0)), when it last answered." }
                ?? "Nothing is known yet."
        }
        if let status = frame.status, !status.quorate, frame.agentError == nil {
            banner.notQuorate = "This host (\(status.localNode)) is NOT QUORATE: its partition cannot act, and resources here are "
                + "stopped. What other hosts do is not visible from here; open the console of a host in the quorate partition."
        }
        return banner
    }

    struct Cell { var text: String; var style: String }
    struct Row { var id: String; var type: String; var link: String?; var cells: [Cell]; var notes: [String] }
    struct NodeView { var name: String; var state: String; var style: String; var flags: String }

    struct Overview {
        var banner: Banner
        var hasStatus: Bool
        var cluster: String
        var localNode: String
        var coordinator: String
        var quorum: String
        var quorumStyle: String
        var qdevice: String
        var configEpoch: Int
        var attention: [String]
        var hasAttention: Bool
        var nodes: [NodeView]
        var rows: [Row]
        var pending: [String]
        var hasPending: Bool
        var version: Int
    }

    static func overview(_ frame: Frame, qdevice: QuorumConfig?) -> Overview {
        let status = frame.status
        let nodes = status?.nodes ?? []
        var volumesByName: [String: VolumeStatus] = [:]
        for volume in frame.volumes { volumesByName[volume.volume] = volume }
        let rows = (status?.resources ?? []).map { resource in
            Row(id: resource.id, type: resource.type, link: resource.type == "vm" ? "/vm/\(resource.id)" : resource.type == "volume" ? "/volumes#\(resource.id)" : nil,
                cells: nodes.map { Self.cell(resource, node: $0.name) },
                notes: Self.notes(resource, volume: volumesByName[resource.id], now: status?.now))
        }
        return Overview(
            banner: self.banner(frame), hasStatus: status != nil, cluster: status?.cluster ?? "?", localNode: status?.localNode ?? "?",
            coordinator: status?.coordinator ?? "none", quorum: status.map { $0.quorate ? "quorate" : "NOT QUORATE" } ?? "unknown",
            quorumStyle: status?.quorate == true ? "success" : "danger",
            qdevice: qdevice?.qdeviceHost.map { "qdevice via qnetd on \($0) (\(qdevice?.algorithm ?? ""))" } ?? "no qdevice",
            configEpoch: status?.configEpoch ?? 0,
            attention: status.map(Self.attention) ?? [], hasAttention: status.map { !Self.attention($0).isEmpty } ?? false,
            nodes: nodes.map(Self.node(status: status)), rows: rows,
            pending: status?.pendingActions ?? [], hasPending: !(status?.pendingActions.isEmpty ?? true), version: frame.version)
    }

    /// The attention items exactly as `clevervm status` prints them (its renderer is the one source).
    static func attention(_ status: StatusReport) -> [String] {
        let lines = status.render().components(separatedBy: "\n")
        guard let start = lines.firstIndex(of: "Attention:") else { return [] }
        return lines[(start + 1)...].prefix { $0.hasPrefix("  ! ") }.map { String($0.dropFirst(4)) }
    }

    static func node(status: StatusReport?) -> (StatusReport.Node) -> NodeView {
        { node in
            var flags: [String] = []
            if node.standby { flags.append("standby") }
            if node.unfit { flags.append("unfit") }
            if node.name == status?.coordinator { flags.append("coordinator") }
            if node.name == status?.localNode { flags.append("this host") }
            let state = node.online ? "online" : node.agentDown == true ? "agent down" : "OFFLINE"
            return NodeView(name: node.name, state: state, style: node.online ? "success" : node.agentDown == true ? "warning" : "danger",
                            flags: flags.joined(separator: ", "))
        }
    }

    static func cell(_ resource: StatusReport.Resource, node: String) -> Cell {
        var parts: [String] = []
        var style = "light"
        if let role = resource.roles[node] {
            parts.append(role)
            style = role == "Promoted" ? "primary" : "success"
        }
        if let target = resource.target[node], resource.roles[node] != target {
            parts.append("→ \(target)")
            style = "info"
        } else if resource.roles[node] != nil, !resource.target.isEmpty, resource.target[node] == nil {
            parts.append("→ leaving")
            style = "info"
        }
        if let count = resource.failCounts[node] {
            parts.append("failed \(count)×")
            style = "danger"
        }
        if resource.stopFailedOn?.contains(node) == true {
            parts.append("stop failed")
            style = "danger"
        }
        return Cell(text: parts.isEmpty ? "·" : parts.joined(separator: " "), style: style)
    }

    static func notes(_ resource: StatusReport.Resource, volume: VolumeStatus?, now: Timestamp?) -> [String] {
        var notes: [String] = []
        if let since = resource.since, let now, resource.type == "vm" { notes.append("up \(Self.duration(now.seconds - since.seconds))") }
        if let move = resource.lastMove { notes.append(Self.move(move)) }
        if let replication = resource.replication { notes.append(replication) }
        if let volume { notes.append(Self.sync(volume)) }
        if let blocked = resource.blocked, resource.targetRole != "Stopped" { notes.append("cannot run: \(blocked)") }
        if resource.targetRole == "Stopped" { notes.append("forcestop: stays stopped") }
        if let node = resource.frozenBy { notes.append("left alone: \(node)'s agent is down") }
        return notes
    }

    static func move(_ move: MoveRecord) -> String {
        let how = switch move.mode {
        case .live: "live"
        case .hibernate: "hibernate"
        case .coldBoot: "cold boot (RAM state lost)"
        }
        return "last move: \(how)\(move.from.map { " from \($0)" } ?? "") to \(move.to) at \(Self.clock(move.at.seconds))"
            + (move.downtimeMilliseconds.map { ", guest downtime \($0) ms" } ?? "")
    }

    static func sync(_ volume: VolumeStatus) -> String {
        guard let sync = volume.sync else {
            return volume.outOfSyncBlocks == 0 ? "in sync" : "\(volume.outOfSyncBlocks) blocks out of sync"
        }
        return String(format: "%@ %.1f%%", sync.localIsSource ? "sync to peer" : "sync from peer", sync.percentDone)
            + (sync.etaSeconds.map { ", ETA \(Self.duration($0))" } ?? "")
            + String(format: " at %.1f MiB/s", sync.rateMiBPerSecond)
    }

    static func duration(_ seconds: Double) -> String {
        let total = max(0, Int(seconds))
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m \(total % 60)s" }
        if total < 86400 { return "\(total / 3600)h \(total % 3600 / 60)m" }
        return "\(total / 86400)d \(total % 86400 / 3600)h"
    }

    static func clock(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}
