import CleverControl
import CleverModel
import CleverVolume

extension Views {
    struct Disk { var name: String; var replication: String; var sync: String; var link: String }
    struct Mark { var text: String }
    struct Target { var name: String }

    struct VM {
        var banner: Banner
        var id: String
        var found: Bool
        var hosts: String
        var host: String
        var state: String
        var uptime: String
        var lastMove: String
        var disks: [Disk]
        var marks: [Mark]
        var hasMarks: Bool
        var targets: [Target]
        var failures: [String]
        var stoppedByOperator: Bool
        var moving: String?
        /// `display: vnc`: the screen can be shown (noVNC).
        var hasScreen: Bool
        var version: Int
    }

    static func vm(_ id: String, frame: Frame, config: ClusterConfig?) -> VM {
        let status = frame.status
        let resource = status?.resources.first { $0.id == id }
        let hosts = resource?.roles.keys.sorted() ?? []
        var disks: [Disk] = []
        if case .vm(let spec)? = config?.resource(named: id)?.kind {
            for volume in spec.volumes {
                let entry = status?.resources.first { $0.id == volume }
                let local = frame.volumes.first { $0.volume == volume }
                disks.append(Disk(name: volume, replication: entry?.replication ?? local.map { "\($0.connection) \($0.role)/\($0.peerRole) \($0.disk)/\($0.peerDisk)" } ?? "—",
                                  sync: local.map(Self.sync) ?? "(not on this host)", link: "/volumes#\(volume)"))
            }
        }
        let marks = (status?.marks ?? []).map { mark in
            Mark(text: mark.kind == .ban ? "\(mark.node) is marked unfit by \(mark.createdBy)" + (mark.expires.map { " until \(Self.clock($0.seconds))" } ?? " until unmigrate")
                 : "\(mark.resource ?? "everything") prefers \(mark.node) (\(mark.createdBy))")
        }
        let moving = resource.flatMap { $0.target.isEmpty ? nil : "moving to " + $0.target.sorted { $0.key < $1.key }.map { "\($0.value) on \($0.key)" }.joined(separator: ", ") }
        let state: String = {
            guard let resource else { return "unknown" }
            if resource.frozenBy != nil { return "left alone (agent down on \(resource.frozenBy!))" }
            if moving != nil { return "moving" }
            if hosts.isEmpty { return resource.targetRole == "Stopped" ? "stopped (forcestop)" : "stopped" }
            return "running"
        }()
        return VM(
            banner: self.banner(frame), id: id, found: resource != nil, hosts: hosts.isEmpty ? "—" : hosts.joined(separator: ", "),
            host: hosts.first ?? "", state: state,
            uptime: resource?.since.flatMap { since in status.map { Self.duration($0.now.seconds - since.seconds) } } ?? "—",
            lastMove: resource?.lastMove.map(Self.move) ?? "no move recorded", disks: disks, marks: marks, hasMarks: !marks.isEmpty,
            targets: (status?.nodes ?? []).filter { !hosts.contains($0.name) && $0.online }.map { Target(name: $0.name) },
            failures: (resource?.failCounts ?? [:]).sorted { $0.key < $1.key }.map { "failed \($0.value)× on \($0.key)" },
            stoppedByOperator: resource?.targetRole == "Stopped", moving: moving, hasScreen: Self.hasScreen(id, config: config),
            version: frame.version)
    }

    static func hasScreen(_ id: String, config: ClusterConfig?) -> Bool {
        guard case .vm(let spec)? = config?.resource(named: id)?.kind else { return false }
        return spec.display == .vnc
    }

    struct VolumeView {
        var name: String
        var roles: String
        var replication: String
        var local: Bool
        var connection: String
        var role: String
        var disk: String
        var peer: String
        var outOfSync: String
        var sync: String
        var splitBrain: String?
        var verify: String?
        var protocolMode: String
    }

    struct Volumes { var banner: Banner; var volumes: [VolumeView]; var localNode: String; var version: Int }

    static func volumes(_ frame: Frame) -> Volumes {
        let status = frame.status
        let views = (status?.resources ?? []).filter { $0.type == "volume" }.map { resource -> VolumeView in
            let local = frame.volumes.first { $0.volume == resource.id }
            let verify = local?.verify.map { v in
                v.finished ? "verify finished: \(v.differingCount) differing blocks (marked for resync)"
                    : "verify running: \(v.checkedBlocks)/\(v.totalBlocks) blocks, \(v.differingCount) differing so far"
            }
            return VolumeView(
                name: resource.id, roles: resource.roles.sorted { $0.key < $1.key }.map { "\($0.value) on \($0.key)" }.joined(separator: ", "),
                replication: resource.replication ?? "—", local: local != nil, connection: local?.connection ?? "",
                role: local.map { "\($0.role)/\($0.peerRole)" } ?? "", disk: local.map { "\($0.disk)/\($0.peerDisk)" } ?? "",
                peer: local?.peer ?? "", outOfSync: local.map { "\($0.outOfSyncBlocks) blocks" } ?? "",
                sync: local.map(Self.sync) ?? "", splitBrain: local?.splitBrain, verify: verify, protocolMode: local?.protocolMode ?? "")
        }
        return Volumes(banner: self.banner(frame), volumes: views, localNode: status?.localNode ?? "", version: frame.version)
    }

    struct EventView { var time: String; var node: String; var text: String; var explain: [Target] }
    struct Events {
        var banner: Banner
        var events: [EventView]
        var vms: [Target]
        var hosts: [Target]
        var vm: String
        var host: String
        var command: String
        var version: Int
    }

    static func events(_ frame: Frame, filter: EventFilter) -> Events {
        let resources = frame.status?.resources.map(\.id) ?? []
        let events = filter.apply(frame.events).reversed().map { event in
            EventView(time: Self.clock(event.at.seconds), node: event.node, text: event.text,
                      explain: resources.filter { EventFilter.mentions(event.text, $0) }.map { Target(name: $0) })
        }
        return Events(
            banner: self.banner(frame), events: Array(events),
            vms: (frame.status?.resources ?? []).filter { $0.type == "vm" }.map { Target(name: $0.id) },
            hosts: (frame.status?.nodes ?? []).map { Target(name: $0.name) }, vm: filter.vm ?? "", host: filter.host ?? "",
            command: "clevervm events --last 500", version: frame.version)
    }
}
