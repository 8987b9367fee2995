import CleverModel
import CorosyncConfig

/// The member's side of `clevervm join`: a host asks to join with the token's secret, its node name and address;
/// the member adds it to the cluster config (next free node id) and answers with what the new host needs.
/// Pure: the shell checks the secret, writes the files, reloads corosync and applies the config.
public enum JoinPlan {
    /// The joiner's request, one JSON line over the pinned TLS channel.
    public struct Request: Hashable, Sendable, Codable {
        public var secret: String
        public var node: String
        public var address: String
        /// The joining host's watchdog as the config writes it (a device path or "none"); nil: none configured.
        public var watchdog: String?

        public init(secret: String, node: String, address: String, watchdog: String? = nil) {
            self.watchdog = watchdog
            self.secret = secret
            self.node = node
            self.address = address
        }
    }

    /// The member's answer: everything the joiner writes (secrets in base64), or an error.
    public struct Response: Hashable, Sendable, Codable {
        public var error: String?
        public var nodeID: Int?
        public var clusterConfig: String?
        public var corosyncConf: String?
        public var authKey: String?
        public var volumeSecret: String?
        /// qnetd's CA certificate and the cluster's qdevice certificate (PKCS#12), once `qdevice setup` ran.
        public var qnetdCACertificate: String?
        public var qdeviceCertificate: String?

        public init(error: String? = nil, nodeID: Int? = nil, clusterConfig: String? = nil, corosyncConf: String? = nil,
                    authKey: String? = nil, volumeSecret: String? = nil, qnetdCACertificate: String? = nil,
                    qdeviceCertificate: String? = nil) {
            self.error = error
            self.nodeID = nodeID
            self.clusterConfig = clusterConfig
            self.corosyncConf = corosyncConf
            self.authKey = authKey
            self.volumeSecret = volumeSecret
            self.qnetdCACertificate = qnetdCACertificate
            self.qdeviceCertificate = qdeviceCertificate
        }
    }

    public enum Outcome: Hashable, Sendable {
        /// The host is new: the config with it added (epoch raised), and its corosync.conf.
        case add(ClusterConfig, corosyncConf: String, nodeID: Int)
        /// The host is already a member with this name and address (a join run again): nothing to change.
        case alreadyMember(ClusterConfig, corosyncConf: String, nodeID: Int)
    }

    /// Constant-time comparison of the secret (no early exit on the first differing byte).
    public static func secretMatches(_ given: String, expected: String) -> Bool {
        let a = Array(given.utf8)
        let b = Array(expected.utf8)
        guard !b.isEmpty, a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    public static func plan(_ request: Request, cluster: ClusterConfig) -> Result<Outcome, SetupError> {
        guard IPAddressText.isAddress(request.address) else {
            return .failure(SetupError(.badInput, "the joining host's address '\(request.address)' is not an IPv4 or IPv6 address"))
        }
        if let existing = cluster.node(named: request.node) {
            guard existing.addresses.first == request.address else {
                return .failure(SetupError(.conflict,
                    "cluster '\(cluster.name)' already has a node '\(request.node)' with address \(existing.addresses.first ?? "none"); "
                        + "give the joining host another --node-name, or `clevervm remove \(request.node)` first"))
            }
            return Self.render(cluster).map { .alreadyMember(cluster, corosyncConf: $0, nodeID: existing.id) }
        }
        if let other = cluster.nodes.first(where: { $0.addresses.contains(request.address) }) {
            return .failure(SetupError(.conflict, "address \(request.address) is node '\(other.name)''s in cluster '\(cluster.name)'"))
        }
        var joined = cluster
        let id = (cluster.nodes.map(\.id).max() ?? 0) + 1
        let watchdog = request.watchdog.map { $0 == WatchdogSetting.noneKeyword ? WatchdogSetting.disabled : .device($0) }
        if let path = watchdog?.devicePath, !path.hasPrefix("/") {
            return .failure(SetupError(.badInput, "the joining host's watchdog '\(path)' is neither an absolute device path nor 'none'"))
        }
        joined.nodes.append(NodeConfig(name: request.node, id: id, addresses: [request.address], watchdog: watchdog))
        joined.epoch += 1
        if joined.nodes.count == 2, joined.quorum?.qdeviceHost == nil {
            return .failure(SetupError(.conflict,
                "a two-host cluster needs its tie-breaker first: run `clevervm qdevice setup QNETD-HOST` on "
                    + "\(cluster.nodes.first?.name ?? "the member"), then join again"))
        }
        return Self.render(joined).map { .add(joined, corosyncConf: $0, nodeID: id) }
    }

    static func render(_ config: ClusterConfig) -> Result<String, SetupError> {
        do { return .success(try CorosyncConfigFile.render(config)) } catch {
            return .failure(SetupError(.badInput, "no corosync.conf with the joining host: \(error.problems.joined(separator: "; "))"))
        }
    }
}
