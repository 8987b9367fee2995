import CleverControl
import CleverModel
import CleverVolume
import CleverReplication
import Prometheus

/// `/metrics`: the frame as Prometheus text. `clevervm_*` names, and beside them the names of ClusterLabs'
/// ha_cluster_exporter where one maps (so its Grafana dashboards work). A fresh registry per scrape: label sets
/// (where a VM runs) change, and a stale series must disappear rather than keep its last value.
public enum MetricsReport {
    public static func render(frame: Frame, moves: MoveCounter, qdevice: QuorumConfig?) -> String {
        let registry = PrometheusCollectorRegistry()
        func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = [], _ value: Double) {
            registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels).set(value)
        }
        gauge("clevervm_agent_up", "1 if the local clevervm agent answers the console", [], frame.agentError == nil ? 1 : 0)
        guard let status = frame.status, frame.agentError == nil else { return registry.emitToString() }
        let local = status.localNode
        let quorate: Double = status.quorate ? 1 : 0
        gauge("clevervm_quorate", "1 if this host's partition has quorum", [("node", local)], quorate)
        gauge("ha_cluster_corosync_quorate", "Whether or not the cluster is quorate", [], quorate)
        gauge("clevervm_config_epoch", "The cluster config's epoch", [], Double(status.configEpoch))
        gauge("clevervm_qdevice_configured", "1 if a qdevice (qnetd tie-breaker) is configured",
              qdevice?.qdeviceHost.map { [("qnetd_host", $0)] } ?? [], qdevice?.qdeviceHost == nil ? 0 : 1)
        gauge("clevervm_nodes", "Nodes in the cluster config", [], Double(status.nodes.count))
        gauge("clevervm_nodes_online", "Nodes online (Corosync member and agent running)", [], Double(status.nodes.filter(\.online).count))
        for node in status.nodes {
            let state = node.online ? "online" : node.agentDown == true ? "agent_down" : "offline"
            gauge("clevervm_node_online", "1 if the node is online", [("node", node.name)], node.online ? 1 : 0)
            gauge("clevervm_node_standby", "1 if the node is in standby", [("node", node.name)], node.standby ? 1 : 0)
            gauge("clevervm_node_unfit", "1 if `migrate` marked the node unfit", [("node", node.name)], node.unfit ? 1 : 0)
            gauge("clevervm_node_coordinator", "1 on the coordinator", [("node", node.name)], node.name == status.coordinator ? 1 : 0)
            gauge("clevervm_node_state", "The node's state (1 for its current state)", [("node", node.name), ("state", state)], 1)
            // ha_cluster_exporter: one series per node and status flag.
            gauge("ha_cluster_pacemaker_nodes", "The nodes in the cluster; one line per name, per status",
                  [("node", node.name), ("type", "member"), ("status", node.online ? "online" : "offline")], 1)
            if node.standby {
                gauge("ha_cluster_pacemaker_nodes", "The nodes in the cluster; one line per name, per status",
                      [("node", node.name), ("type", "member"), ("status", "standby")], 1)
            }
        }
        for resource in status.resources {
            let running = resource.roles.sorted { $0.key < $1.key }
            gauge("clevervm_resource_running", "Hosts where the resource is active", [("resource", resource.id), ("type", resource.type)],
                  Double(running.count))
            for (node, role) in running {
                gauge("clevervm_resource_role", "1 where the resource is active, labelled with its role",
                      [("resource", resource.id), ("type", resource.type), ("node", node), ("role", role)], 1)
                gauge("ha_cluster_pacemaker_resources", "The resources in the cluster; one line per id, per status",
                      [("node", node), ("resource", resource.id), ("role", role.lowercased()), ("managed", "true"),
                       ("status", "active"), ("agent", resource.type)], 1)
                if resource.type == "vm" {
                    gauge("clevervm_vm_host", "1 on the host where the VM runs", [("vm", resource.id), ("node", node)], 1)
                }
            }
            if resource.type == "vm" {
                let state = resource.frozenBy != nil ? "frozen" : resource.blocked != nil && running.isEmpty ? "blocked"
                    : !resource.target.isEmpty ? "moving" : running.isEmpty ? "stopped" : "running"
                gauge("clevervm_vm_state", "The VM's state (1 for its current state)", [("vm", resource.id), ("state", state)], 1)
                if let since = resource.since {
                    gauge("clevervm_vm_uptime_seconds", "Seconds since the VM became active where it runs", [("vm", resource.id)],
                          max(0, status.now.seconds - since.seconds))
                }
                if let move = resource.lastMove {
                    let labels = [("vm", resource.id), ("from", move.from ?? ""), ("to", move.to), ("mode", move.mode.rawValue)]
                    gauge("clevervm_vm_last_migration_timestamp_seconds", "When the VM last moved", labels, move.at.seconds)
                    if let downtime = move.downtimeMilliseconds {
                        gauge("clevervm_vm_last_migration_downtime_seconds", "The guest's downtime in its last live move",
                              labels, Double(downtime) / 1000)
                    }
                }
                registry.makeCounter(descriptor: Self.descriptor("clevervm_vm_migrations_total", "VM moves seen since this console started"),
                                     labels: [("vm", resource.id)]).increment(by: Int64(moves.counts[resource.id] ?? 0))
            }
            for (node, count) in resource.failCounts.sorted(by: { $0.key < $1.key }) {
                gauge("clevervm_resource_fail_count", "Failures recorded for the resource on the node",
                      [("resource", resource.id), ("node", node)], Double(count))
                gauge("ha_cluster_pacemaker_fail_count", "The Fail count number per node and resource id",
                      [("node", node), ("resource", resource.id)], Double(count))
            }
            gauge("clevervm_resource_blocked", "1 if the resource cannot run anywhere", [("resource", resource.id)],
                  resource.blocked != nil && resource.targetRole != "Stopped" ? 1 : 0)
        }
        for volume in frame.volumes {
            Self.volume(volume, gauge: gauge, registry: registry)
        }
        gauge("clevervm_marks", "Active placement marks (migrate, prefer)", [], Double(status.marks.count))
        gauge("clevervm_pending_actions", "Actions in progress", [], Double(status.pendingActions.count))
        return registry.emitToString()
    }

    /// The whole name as one part: these names are fixed (ha_cluster_exporter's among them), not assembled.
    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    static func volume(_ volume: VolumeStatus, gauge: (String, String, [(String, String)], Double) -> Void, registry: PrometheusCollectorRegistry) {
        let base = [("volume", volume.volume), ("node", volume.node)]
        gauge("clevervm_volume_role", "The volume's role on this host (1 for the current role)", base + [("role", volume.role)], 1)
        gauge("clevervm_volume_disk_state", "The local disk's state (1 for the current state)", base + [("disk", volume.disk)], 1)
        gauge("clevervm_volume_peer_disk_state", "The peer's disk state as seen here", base + [("disk", volume.peerDisk)], 1)
        gauge("clevervm_volume_connection", "The replication link's state (1 for the current state)",
              base + [("connection", volume.connection)], 1)
        let outOfSyncBytes = Double(volume.outOfSyncBlocks * Replication.DirtyBitmap.blockSize)
        gauge("clevervm_volume_out_of_sync_bytes", "Bytes marked out of sync with the peer", base, outOfSyncBytes)
        let sync = volume.sync.map { $0.percentDone / 100 } ?? (volume.outOfSyncBlocks == 0 ? 1 : 0)
        gauge("clevervm_volume_sync_ratio", "Fraction of the volume in sync (1 when fully in sync)", base, sync)
        let splitBrain: Double = volume.splitBrain != nil ? 1 : 0
        gauge("clevervm_volume_split_brain", "1 if the volume detected a split brain", base, splitBrain)
        gauge("clevervm_volume_bytes_written", "Bytes written by the application since the volume started", base, Double(volume.bytesDirtied))
        gauge("clevervm_volume_resync_bytes", "Bytes moved by resync since the volume started", base, Double(volume.resyncBytesMoved))
        // ha_cluster_exporter's DRBD names.
        gauge("ha_cluster_drbd_resources", "The DRBD resources; 1 line per name, per volume",
              [("resource", volume.volume), ("role", volume.role.lowercased()), ("volume", "0"), ("disk_state", volume.disk.lowercased())], 1)
        gauge("ha_cluster_drbd_connections", "The DRBD resource connections; 1 line per per resource, per peer_node_id",
              [("resource", volume.volume), ("peer_node_id", volume.peer ?? ""), ("peer_role", volume.peerRole.lowercased()),
               ("volume", "0"), ("peer_disk_state", volume.peerDisk.lowercased())], 1)
        gauge("ha_cluster_drbd_connections_sync", "The in sync percentage value for DRBD resource connections",
              [("resource", volume.volume), ("peer_node_id", volume.peer ?? ""), ("volume", "0")], sync * 100)
        gauge("ha_cluster_drbd_written", "KiB written to DRBD; 1 line per res, per volume", [("resource", volume.volume), ("volume", "0")],
              Double(volume.bytesDirtied) / 1024)
        gauge("ha_cluster_drbd_split_brain", "Whether a split brain has been detected; 1 line per resource, per volume",
              [("resource", volume.volume), ("volume", "0")], splitBrain)
        gauge("ha_cluster_drbd_al_writes", "Writes to the activity log; 1 line per res, per volume",
              [("resource", volume.volume), ("volume", "0")], Double(volume.activityLogTransactions))
        _ = registry
    }
}
