import CleverModel
import CleverReplication
import Foundation

/// One volume process's configuration (a JSON file). `init(name:node:spec:...)` maps it from the cluster
/// model's VolumeSpec.
public struct VolumeConfig: Codable, Hashable, Sendable {
    public struct Peer: Codable, Hashable, Sendable {
        /// The peer's node name (it must say this name in its hello).
        public var name: String
        /// The peer's replication address, IPv4 "HOST:PORT".
        public var address: String

        public init(name: String, address: String) {
            self.name = name
            self.address = address
        }
    }

    public var name: String
    public var node: String
    public var size: UInt64
    public var backing: String
    public var metaDir: String
    public var nbdSocket: String
    public var controlSocket: String
    public var protocolMode: Replication.ProtocolMode
    /// Local replication address "HOST:PORT" (nil: no peer).
    public var listen: String?
    public var peer: Peer?
    public var afterSplitBrain0: Replication.SplitBrainPolicies.ZeroPrimaries
    public var afterSplitBrain1: Replication.SplitBrainPolicies.OnePrimary
    public var afterSplitBrain2: Replication.SplitBrainPolicies.TwoPrimaries
    public var secretFile: String?
    public var allowTwoPrimaries: Bool
    /// Resync rate limit in MiB/s.
    public var resyncRateMiB: Double
    public var activityLogExtents: Int

    public init(
        name: String, node: String, size: UInt64, backing: String, metaDir: String, nbdSocket: String,
        controlSocket: String, protocolMode: Replication.ProtocolMode = .C, listen: String? = nil, peer: Peer? = nil,
        policies: Replication.SplitBrainPolicies = .init(), secretFile: String? = nil, allowTwoPrimaries: Bool = false,
        resyncRateMiB: Double = 100, activityLogExtents: Int = 1237
    ) {
        self.name = name
        self.node = node
        self.size = size
        self.backing = backing
        self.metaDir = metaDir
        self.nbdSocket = nbdSocket
        self.controlSocket = controlSocket
        self.protocolMode = protocolMode
        self.listen = listen
        self.peer = peer
        self.afterSplitBrain0 = policies.zeroPrimaries
        self.afterSplitBrain1 = policies.onePrimary
        self.afterSplitBrain2 = policies.twoPrimaries
        self.secretFile = secretFile
        self.allowTwoPrimaries = allowTwoPrimaries
        self.resyncRateMiB = resyncRateMiB
        self.activityLogExtents = activityLogExtents
    }

    /// From the cluster model: the volume resource `name` as run on `node`, replicating to `peer` (whose
    /// address uses the same port). Paths follow /var/lib/clevervm and /run/clevervm unless given.
    public init(
        name: String, node: String, spec: VolumeSpec, listenHost: String?, peer: (name: String, host: String)?,
        stateDirectory: String = "/var/lib/clevervm/volumes", runDirectory: String = "/run/clevervm"
    ) {
        self.init(
            name: name, node: node, size: spec.size, backing: spec.backing,
            metaDir: "\(stateDirectory)/\(name).meta", nbdSocket: "\(runDirectory)/\(name).nbd",
            controlSocket: "\(runDirectory)/\(name).ctl",
            protocolMode: spec.protocolMode == .C ? .C : .A,
            listen: listenHost.map { "\($0):\(spec.port)" },
            peer: peer.map { Peer(name: $0.name, address: "\($0.host):\(spec.port)") },
            policies: Replication.SplitBrainPolicies(
                zeroPrimaries: .init(rawValue: spec.afterSplitBrain0.rawValue) ?? .disconnect,
                onePrimary: .init(rawValue: spec.afterSplitBrain1.rawValue) ?? .disconnect,
                twoPrimaries: .disconnect),
            secretFile: spec.secretFile)
    }

    public var policies: Replication.SplitBrainPolicies {
        Replication.SplitBrainPolicies(
            zeroPrimaries: self.afterSplitBrain0, onePrimary: self.afterSplitBrain1, twoPrimaries: self.afterSplitBrain2)
    }

    public static func load(path: String) throws -> VolumeConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VolumeError("config \(path): cannot be read")
        }
        let config: VolumeConfig
        do {
            config = try JSONDecoder().decode(VolumeConfig.self, from: data)
        } catch {
            throw VolumeError("config \(path): \(error)")
        }
        try config.validate(path: path)
        return config
    }

    public func validate(path: String) throws {
        func fail(_ message: String) -> VolumeError { VolumeError("config \(path): \(message)") }
        guard !self.name.isEmpty, self.name.utf8.count <= 64 else { throw fail("name must be 1-64 bytes") }
        guard !self.node.isEmpty, self.node.utf8.count <= 64 else { throw fail("node must be 1-64 bytes") }
        guard self.size > 0, self.size % 4096 == 0 else { throw fail("size \(self.size) must be a positive multiple of 4096") }
        guard self.resyncRateMiB > 0 else { throw fail("resyncRateMiB must be positive") }
        guard self.activityLogExtents > 0 && self.activityLogExtents <= ActivityLog.maxCapacity else {
            throw fail("activityLogExtents must be 1-\(ActivityLog.maxCapacity)")
        }
        if self.peer != nil {
            guard self.listen != nil else { throw fail("a peer needs a listen address") }
            guard self.secretFile != nil else { throw fail("a peer needs secretFile (the link is authenticated)") }
            if self.peer!.name == self.node { throw fail("peer name equals the node name \(self.node)") }
        }
        if let listen = self.listen { _ = try Sockets.parseIPv4(listen) }
        if let peer = self.peer { _ = try Sockets.parseIPv4(peer.address) }
    }
}
