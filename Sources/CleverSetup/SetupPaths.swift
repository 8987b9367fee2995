/// Where set-up writes, under `root` ("" on a real host; a directory in tests).
public struct SetupPaths: Hashable, Sendable {
    public var root: String

    public init(root: String = "") { self.root = root }

    public var clevervmDirectory: String { "\(self.root)/etc/clevervm" }
    public var clusterConfig: String { "\(self.root)/etc/clevervm/cluster.yaml" }
    /// The shared secret of the replicated volumes (`secret-file:` of a volume), the same on every host.
    public var volumeSecret: String { "\(self.root)/etc/clevervm/volumes.secret" }
    /// The host's TLS certificate and key (PEM, ECDSA P-256, self-signed): the join service, and the web console.
    public var tlsDirectory: String { "\(self.root)/etc/clevervm/tls" }
    public var certificate: String { "\(self.root)/etc/clevervm/tls/host.crt" }
    public var certificateKey: String { "\(self.root)/etc/clevervm/tls/host.key" }
    /// The one-time secret of the join token printed last (removed when a host has joined with it).
    public var joinSecret: String { "\(self.root)/etc/clevervm/join.secret" }
    public var corosyncDirectory: String { "\(self.root)/etc/corosync" }
    public var corosyncConf: String { "\(self.root)/etc/corosync/corosync.conf" }
    public var authKey: String { "\(self.root)/etc/corosync/authkey" }
}
