import CleverModel

/// Configs built in code for tests of the pure cores (the YAML examples are tested separately).
public enum Fixtures {
    /// The installation of the design brief: a replicated volume, a VM on it, a floating address,
    /// and a ping of the gateway that makes a host unfit when it loses connectivity.
    public static func twoHost(migration: VMSpec.Migration = .live, stickiness: Score = 100) -> ClusterConfig {
        ClusterConfig(
            name: "mba7",
            properties: ClusterProperties(defaultStickiness: stickiness, migrationThreshold: 3, failureTimeout: Seconds(600)),
            nodes: [
                NodeConfig(name: "alpha", id: 1, addresses: ["198.51.100.11"]),
                NodeConfig(name: "beta", id: 2, addresses: ["198.51.100.12"]),
            ],
            quorum: QuorumConfig(qdeviceHost: "198.51.100.1", pingTargets: ["198.51.100.1"]),
            resources: [
                ResourceConfig(id: "disk0", kind: .volume(VolumeSpec(size: 1 << 30, backing: "/var/lib/clevervm/disk0.img"))),
                ResourceConfig(id: "mba7", kind: .vm(VMSpec(volumes: ["disk0"], boot: "/var/lib/clevervm/vmlinuz",
                                                            migration: migration, addresses: ["vip"]))),
                ResourceConfig(id: "vip", kind: .ip(IPSpec(address: "198.51.100.50", prefixLength: 24))),
                ResourceConfig(id: "gw-ping", kind: .ping(PingSpec(hosts: ["198.51.100.1"], multiplier: 1000))),
            ],
            constraints: [
                .location(LocationConstraint(
                    id: "mba7-needs-gateway", resource: "mba7",
                    placement: .rule(Rule(score: .minusInfinity, expression: .or([
                        .notDefined("pingd"),
                        .compare(attribute: "pingd", op: .lte, value: "0", type: .number),
                    ]))))),
            ]
        )
    }

    /// Both hosts online and reaching the gateway, nothing running yet.
    public static func healthyState(of config: ClusterConfig) -> ClusterState {
        var state = ClusterState.fresh(for: config)
        for node in config.nodes { state.nodes[node.name]?.attributes["pingd"] = "1000" }
        return state
    }

    public static let epoch = Timestamp(seconds: 1_800_000_000)
}
