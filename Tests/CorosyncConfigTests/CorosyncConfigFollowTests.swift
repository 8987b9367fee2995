import CleverModel
import CorosyncConfig
import Testing

/// corosync.conf on a set-up host follows the applied config: the nodelist changes reach it, a new epoch alone
/// does not reload Corosync.
@Suite struct CorosyncConfigFollowTests {
    static let twoHosts = ClusterConfig(
        name: "plant", epoch: 4,
        nodes: [NodeConfig(name: "alpha", id: 1, addresses: ["198.51.100.11"]), NodeConfig(name: "beta", id: 2, addresses: ["198.51.100.12"])],
        quorum: QuorumConfig(qdeviceHost: "198.51.100.1"))

    @Test func aNodeAddedElsewhereRewritesTheFileWithEveryNode() throws {
        let current = try CorosyncConfigFile.render(Self.twoHosts)
        var three = Self.twoHosts
        three.epoch += 1
        three.nodes.append(NodeConfig(name: "gamma", id: 3, addresses: ["198.51.100.13"]))
        guard case .rewrite(let text) = CorosyncConfigFile.follow(three, current: current) else {
            Issue.record("a third node did not rewrite corosync.conf")
            return
        }
        #expect(text == (try CorosyncConfigFile.render(three)))
        #expect(text.contains("name: gamma") && text.contains("ring0_addr: 198.51.100.13"))
    }

    @Test func aNewEpochAloneChangesNothing() throws {
        let current = try CorosyncConfigFile.render(Self.twoHosts)
        var next = Self.twoHosts
        next.epoch += 7
        #expect(CorosyncConfigFile.follow(next, current: current) == .unchanged)
    }

    @Test func aMissingOrHandEditedFileIsRewritten() throws {
        let rendered = try CorosyncConfigFile.render(Self.twoHosts)
        #expect(CorosyncConfigFile.follow(Self.twoHosts, current: nil) == .rewrite(rendered))
        let edited = rendered.replacingOccurrences(of: "token: 1000", with: "token: 5000")
        #expect(CorosyncConfigFile.follow(Self.twoHosts, current: edited) == .rewrite(rendered))
    }

    @Test func aConfigWithoutCorosyncConfLeavesTheFile() {
        var bad = Self.twoHosts
        bad.name = "not a name!"
        guard case .cannotRender(let problems) = CorosyncConfigFile.follow(bad, current: "totem {}\n") else {
            Issue.record("an invalid cluster name rendered")
            return
        }
        #expect(!problems.isEmpty)
    }
}
