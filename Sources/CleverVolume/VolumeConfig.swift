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
    /// DRBD's resync-rate, MiB/s: the fixed rate used when `cPlanAhead` is 0.
    public var resyncRateMiB: Double
    public var activityLogExtents: Int
    /// DRBD's c-plan-ahead, seconds (nil: 2; 0: fixed `resyncRateMiB`). See `Replication.ResyncController`.
    public var cPlanAhead: Double?
    /// DRBD's c-fill-target, bytes in flight (nil: 4 MiB).
    public var cFillTarget: UInt64?
    /// DRBD's c-max-rate, MiB/s (nil: 100).
    public var cMaxRateMiB: Double?
    /// DRBD's c-min-rate, MiB/s: the resync is held to this while the application does I/O (nil: 4; 0: never).
    public var cMinRateMiB: Double?
    /// DRBD's `fencing` (nil: dont-care). `resource-only` needs a cluster that answers with `markPeerOutdated`.
    public var fencing: Replication.FencingPolicy?

    public init(
        name: String, node: String, size: UInt64, backing: String, metaDir: String, nbdSocket: String,
        controlSocket: String, protocolMode: Replication.ProtocolMode = .C, listen: String? = nil, peer: Peer? = nil,
        policies: Replication.SplitBrainPolicies = .init(), secretFile: String? = nil, allowTwoPrimaries: Bool = false,
        resyncRateMiB: Double = 100, activityLogExtents: Int = 1237, cPlanAhead: Double? = nil,
        cFillTarget: UInt64? = nil, cMaxRateMiB: Double? = nil, cMinRateMiB: Double? = nil
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
        self.cPlanAhead = cPlanAhead
        self.cFillTarget = cFillTarget
        self.cMaxRateMiB = cMaxRateMiB
        self.cMinRateMiB = cMinRateMiB
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
        let resync = spec.resync
        self.resyncRateMiB = Double(resync.resyncRate) / 1_048_576
        self.cPlanAhead = resync.planAhead.value
        self.cFillTarget = resync.fillTarget
        self.cMaxRateMiB = Double(resync.maxRate) / 1_048_576
        self.cMinRateMiB = Double(resync.minRate) / 1_048_576
    }

    /// The resync controller's settings, defaults filled in.
    public var resyncControllerSettings: Replication.ResyncController.Settings {
        let defaults = VolumeSpec.ResyncControl()
        let planAhead: Double = self.cPlanAhead ?? defaults.planAhead.value
        let fillTarget: UInt64 = self.cFillTarget ?? defaults.fillTarget
        let maxRate: UInt64 = self.cMaxRateMiB.map(Self.bytesPerSecond) ?? defaults.maxRate
        let minRate: UInt64 = self.cMinRateMiB.map(Self.bytesPerSecond) ?? defaults.minRate
        return Replication.ResyncController.Settings(
            planAhead: planAhead, fillTarget: fillTarget, maxRate: maxRate, minRate: minRate,
            fixedRate: Self.bytesPerSecond(self.resyncRateMiB))
    }

    static func bytesPerSecond(_ mebibytes: Double) -> UInt64 { UInt64(mebibytes * 1_048_576) }

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
        if let planAhead = self.cPlanAhead, !(0...30 ~= planAhead) { throw fail("cPlanAhead must be 0-30 seconds") }
        if let fill = self.cFillTarget, !((64 << 10)...(1 << 30) ~= fill) {
            throw fail("cFillTarget must be 64 KiB-1 GiB (bytes)")
        }
        if let maxRate = self.cMaxRateMiB, !(maxRate > 0 && maxRate.isFinite) { throw fail("cMaxRateMiB must be positive") }
        if let minRate = self.cMinRateMiB, !(minRate >= 0 && minRate.isFinite) {
            throw fail("cMinRateMiB must be 0 or more")
        }
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
