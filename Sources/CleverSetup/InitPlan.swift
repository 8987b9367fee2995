import CleverConfig
import CleverModel
import CorosyncConfig

/// `clevervm init`: what to write on the first host of a new cluster, decided from what is there already.
/// Pure; the shell reads the host's files, generates the random material, and performs the directives.
/// Idempotent: run again on an initialised host it keeps every file and reprints the join token.
public enum InitPlan {
    public struct Request: Hashable, Sendable {
        public var clusterName: String
        public var nodeName: String
        public var address: String
        public var joinPort: Int
        /// This host's watchdog in the new cluster's config (nil: none configured, and the agent runs no resources
        /// here until it is).
        public var watchdog: WatchdogSetting?

        public init(clusterName: String, nodeName: String, address: String, joinPort: Int = JoinToken.defaultPort,
                    watchdog: WatchdogSetting? = nil) {
            self.watchdog = watchdog
            self.clusterName = clusterName
            self.nodeName = nodeName
            self.address = address
            self.joinPort = joinPort
        }
    }

    /// What the host has now.
    public struct Existing: Hashable, Sendable {
        /// /etc/clevervm/cluster.yaml, parsed (the shell refuses a file it cannot parse).
        public var cluster: ClusterConfig?
        public var corosyncConf: String?
        public var hasAuthKey: Bool
        public var hasVolumeSecret: Bool
        public var hasCertificate: Bool
        public var joinSecret: String?

        public init(cluster: ClusterConfig? = nil, corosyncConf: String? = nil, hasAuthKey: Bool = false, hasVolumeSecret: Bool = false,
                    hasCertificate: Bool = false, joinSecret: String? = nil) {
            self.cluster = cluster
            self.corosyncConf = corosyncConf
            self.hasAuthKey = hasAuthKey
            self.hasVolumeSecret = hasVolumeSecret
            self.hasCertificate = hasCertificate
            self.joinSecret = joinSecret
        }
    }

    /// Fresh random material, used only for what does not exist yet.
    public struct Material: Hashable, Sendable {
        public var authKey: [UInt8]
        public var volumeSecret: String
        public var joinSecret: String

        public init(authKey: [UInt8], volumeSecret: String, joinSecret: String) {
            self.authKey = authKey
            self.volumeSecret = volumeSecret
            self.joinSecret = joinSecret
        }
    }

    public enum Directive: Hashable, Sendable {
        case write(path: String, contents: [UInt8], mode: UInt16)
        /// A self-signed ECDSA certificate for `commonName` with `address` as subject alternative name.
        case makeCertificate(certificate: String, key: String, commonName: String, address: String)
        /// corosync.conf or the authkey changed: corosync must restart to use them.
        case restartCorosync
        /// The cluster has a quorum device: enable and (re)start corosync-qdevice (after corosync).
        case startQdevice
        /// Enable the agent and the join service at boot and (re)start them.
        case startAgent
    }

    public struct Plan: Hashable, Sendable {
        public var directives: [Directive]
        /// The files this run creates or replaces (for the report).
        public var changed: [String]
        /// The files already right and kept.
        public var kept: [String]
        /// The token the operator gives `clevervm join` on the next host.
        public var joinSecret: String
    }

    public static func plan(_ request: Request, existing: Existing, material: Material, paths: SetupPaths) -> Result<Plan, SetupError> {
        if let problem = Self.validate(request) { return .failure(SetupError(.badInput, problem)) }
        let cluster: ClusterConfig
        if let current = existing.cluster {
            guard current.name == request.clusterName else {
                return .failure(SetupError(.conflict,
                    "this host already belongs to cluster '\(current.name)' (\(paths.clusterConfig)); nothing changed. "
                        + "Run `clevervm remove \(request.nodeName)` on a member first, or delete the file to start over"))
            }
            guard let node = current.node(named: request.nodeName) else {
                return .failure(SetupError(.conflict,
                    "cluster '\(current.name)' in \(paths.clusterConfig) has no node '\(request.nodeName)' (nodes: "
                        + "\(current.nodes.map(\.name).joined(separator: ", "))); nothing changed"))
            }
            guard node.addresses.first == request.address else {
                return .failure(SetupError(.conflict,
                    "node '\(node.name)' of cluster '\(current.name)' has address \(node.addresses.first ?? "none"), not "
                        + "\(request.address) (\(paths.clusterConfig)); nothing changed"))
            }
            cluster = current
        } else {
            cluster = ClusterConfig(name: request.clusterName, nodes: [
                NodeConfig(name: request.nodeName, id: 1, addresses: [request.address], watchdog: request.watchdog),
            ])
        }
        let corosyncText: String
        do {
            corosyncText = try CorosyncConfigFile.render(cluster)
        } catch {
            return .failure(SetupError(.badInput, "no corosync.conf for this cluster: \(error.problems.joined(separator: "; "))"))
        }

        var directives: [Directive] = []
        var changed: [String] = []
        var kept: [String] = []
        func write(_ path: String, _ contents: [UInt8], mode: UInt16, keep: Bool) {
            if keep { kept.append(path) } else {
                directives.append(.write(path: path, contents: contents, mode: mode))
                changed.append(path)
            }
        }
        let fresh = existing.cluster == nil
        write(paths.clusterConfig, Array(ConfigFile.render(cluster).utf8), mode: 0o644, keep: !fresh)
        // A host where corosync was only installed has Debian's sample corosync.conf and perhaps a stray authkey:
        // both are replaced when the cluster is new here.
        let corosyncChanged = existing.corosyncConf != corosyncText
        write(paths.corosyncConf, Array(corosyncText.utf8), mode: 0o644, keep: !corosyncChanged)
        let authKeyChanged = fresh || !existing.hasAuthKey
        write(paths.authKey, material.authKey, mode: 0o400, keep: !authKeyChanged)
        write(paths.volumeSecret, Array(material.volumeSecret.utf8), mode: 0o600, keep: existing.hasVolumeSecret)
        if existing.hasCertificate {
            kept.append(paths.certificate)
        } else {
            directives.append(.makeCertificate(certificate: paths.certificate, key: paths.certificateKey, commonName: request.nodeName, address: request.address))
            changed.append(paths.certificate)
        }
        let joinSecret = existing.joinSecret ?? material.joinSecret
        write(paths.joinSecret, Array(joinSecret.utf8), mode: 0o600, keep: existing.joinSecret != nil)
        if corosyncChanged || authKeyChanged { directives.append(.restartCorosync) }
        directives.append(.startAgent)
        return .success(Plan(directives: directives, changed: changed, kept: kept, joinSecret: joinSecret))
    }

    static func validate(_ request: Request) -> String? {
        let cluster = ClusterConfig(name: request.clusterName, nodes: [NodeConfig(name: request.nodeName, id: 1, addresses: [request.address])])
        let problems = CorosyncConfigFile.validate(cluster)
        if !problems.isEmpty { return problems.joined(separator: "; ") }
        if !IPAddressText.isAddress(request.address) { return "--address '\(request.address)' is not an IPv4 or IPv6 address" }
        if !(1...65535).contains(request.joinPort) { return "join port \(request.joinPort) is not between 1 and 65535" }
        return nil
    }
}
