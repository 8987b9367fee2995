import CleverModel
import CorosyncConfig
import Testing

/// The cluster config's Corosync timeouts reach corosync.conf: the survivors derive their watchdog wait from the
/// same numbers (issue 11, finding 3).
@Suite struct TimeoutsFromConfigTests {
    @Test func tokenConsensusAndQdeviceTimeoutsComeFromTheConfig() throws {
        let config = ClusterConfig(
            name: "lab",
            properties: ClusterProperties(token: Seconds(0.5)),
            nodes: [NodeConfig(name: "alpha", id: 1, addresses: ["198.51.100.11"]),
                    NodeConfig(name: "beta", id: 2, addresses: ["198.51.100.12"])],
            quorum: QuorumConfig(qdeviceHost: "198.51.100.1", timeout: Seconds(1), syncTimeout: Seconds(2)))
        let text = try CorosyncConfigFile.render(config)
        #expect(text.contains("    token: 500\n    consensus: 600\n"))
        #expect(text.contains("timeout: 1000\n"))
        #expect(text.contains("sync_timeout: 2000\n"))
    }
}
