import CleverConfig
import CleverModel
import CleverSetup
import Testing

@Suite struct InitPlanTests {
    static let paths = SetupPaths(root: "/r")
    static let request = InitPlan.Request(clusterName: "plant", nodeName: "alpha", address: "198.51.100.11")
    static let material = InitPlan.Material(authKey: [1, 2, 3], volumeSecret: "v", joinSecret: String(repeating: "a", count: 64))

    func plan(_ existing: InitPlan.Existing, _ request: InitPlan.Request = Self.request) -> Result<InitPlan.Plan, SetupError> {
        InitPlan.plan(request, existing: existing, material: Self.material, paths: Self.paths)
    }

    @Test func aFreshHostGetsEveryFileThenCorosyncAndTheAgent() throws {
        let plan = try self.plan(InitPlan.Existing()).get()
        #expect(plan.changed == [
            "/r/etc/clevervm/cluster.yaml", "/r/etc/corosync/corosync.conf", "/r/etc/corosync/authkey",
            "/r/etc/clevervm/volumes.secret", "/r/etc/clevervm/tls/host.crt", "/r/etc/clevervm/join.secret",
        ])
        #expect(plan.directives.contains(.write(path: "/r/etc/corosync/authkey", contents: [1, 2, 3], mode: 0o400)))
        #expect(plan.directives.suffix(2) == [.restartCorosync, .startAgent])
        guard case .write(_, let yaml, _) = plan.directives[0] else { Issue.record("cluster.yaml first"); return }
        let config = try ConfigFile.parse(String(decoding: yaml, as: UTF8.self), file: "cluster.yaml")
        #expect(config.name == "plant")
        #expect(config.nodes == [NodeConfig(name: "alpha", id: 1, addresses: ["198.51.100.11"])])
    }

    @Test func runAgainItKeepsEverythingAndReprintsTheSameSecret() throws {
        let first = try self.plan(InitPlan.Existing()).get()
        guard case .write(_, let corosync, _) = first.directives[1] else { Issue.record("corosync.conf second"); return }
        let config = try ConfigFile.parse(
            ConfigFile.render(ClusterConfig(name: "plant", nodes: [NodeConfig(name: "alpha", id: 1, addresses: ["198.51.100.11"])])), file: "c")
        let again = try self.plan(InitPlan.Existing(
            cluster: config, corosyncConf: String(decoding: corosync, as: UTF8.self), hasAuthKey: true, hasVolumeSecret: true,
            hasCertificate: true, joinSecret: String(repeating: "b", count: 64))).get()
        #expect(again.changed.isEmpty)
        #expect(again.directives == [.startAgent])
        #expect(again.joinSecret == String(repeating: "b", count: 64))
    }

    @Test func debiansSampleCorosyncConfIsReplacedOnAFreshHost() throws {
        let plan = try self.plan(InitPlan.Existing(corosyncConf: "totem {\n cluster_name: debian\n}\n", hasAuthKey: true)).get()
        #expect(plan.changed.contains("/r/etc/corosync/corosync.conf"))
        #expect(plan.changed.contains("/r/etc/corosync/authkey"))
    }

    @Test func anotherClusterOnThisHostIsRefusedAndNothingIsWritten() {
        let other = ClusterConfig(name: "other", nodes: [NodeConfig(name: "alpha", id: 1, addresses: ["198.51.100.11"])])
        guard case .failure(let error) = self.plan(InitPlan.Existing(cluster: other)) else { Issue.record("accepted"); return }
        #expect(error.code == .conflict)
        #expect(error.message.contains("already belongs to cluster 'other' (/r/etc/clevervm/cluster.yaml)"))
    }

    @Test func aDifferentAddressForTheSameNodeIsRefused() {
        let same = ClusterConfig(name: "plant", nodes: [NodeConfig(name: "alpha", id: 1, addresses: ["198.51.100.99"])])
        guard case .failure(let error) = self.plan(InitPlan.Existing(cluster: same)) else { Issue.record("accepted"); return }
        #expect(error.message.contains("has address 198.51.100.99, not 198.51.100.11"))
    }

    @Test func badNamesAndAddressesNameTheOption() {
        let badName = InitPlan.Request(clusterName: "my plant", nodeName: "alpha", address: "198.51.100.11")
        guard case .failure(let name) = self.plan(InitPlan.Existing(), badName) else { Issue.record("accepted"); return }
        #expect(name.message.contains("cluster name \"my plant\""))
        let badAddress = InitPlan.Request(clusterName: "plant", nodeName: "alpha", address: "198.51.100")
        guard case .failure(let address) = self.plan(InitPlan.Existing(), badAddress) else { Issue.record("accepted"); return }
        #expect(address.message == "--address '198.51.100' is not an IPv4 or IPv6 address")
    }
}

@Suite struct JoinTokenTests {
    static let token = JoinToken(address: "198.51.100.11:7850", fingerprint: String(repeating: "0f", count: 32), secret: String(repeating: "a1", count: 32))

    @Test func aTokenIsOneWordAndReadsBack() throws {
        let text = Self.token.text
        #expect(text.hasPrefix("clevervm-join:"))
        let forbidden: Set<Character> = [" ", "+", "/", "="]
        #expect(text.allSatisfy { !forbidden.contains($0) })
        #expect(try JoinToken.parse(text).get() == Self.token)
        #expect(try JoinToken.parse("  \(text)\n").get() == Self.token)
    }

    @Test func aDamagedTokenSaysWhatIsWrongWithoutTheSecret() {
        guard case .failure(let prefix) = JoinToken.parse("join:abc") else { Issue.record("accepted"); return }
        #expect(prefix.message.contains("must start with 'clevervm-join:'"))
        let text = Self.token.text
        guard case .failure(let cut) = JoinToken.parse(String(text.dropLast(10))) else { Issue.record("accepted"); return }
        #expect(cut.code == .badToken)
        #expect(!cut.message.contains("a1a1"))
        let badAddress = JoinToken(address: "198.51.100.11", fingerprint: Self.token.fingerprint, secret: Self.token.secret)
        guard case .failure(let address) = JoinToken.parse(badAddress.text) else { Issue.record("accepted"); return }
        #expect(address.message.contains("address '198.51.100.11' is not HOST:PORT"))
    }

    @Test func hostPortWithIPv6() {
        #expect(HostPort.parse("[2001:db8::1]:7850") == HostPort(host: "2001:db8::1", port: 7850))
        #expect(HostPort(host: "2001:db8::1", port: 7850).text == "[2001:db8::1]:7850")
        #expect(HostPort.parse("host:0") == nil)
    }
}

@Suite struct JoinAndRemovePlanTests {
    static let one = ClusterConfig(name: "plant", nodes: [NodeConfig(name: "alpha", id: 1, addresses: ["198.51.100.11"])],
                                   quorum: QuorumConfig(qdeviceHost: "198.51.100.1"))

    @Test func aNewHostGetsTheNextIDAndTheEpochRises() throws {
        let outcome = try JoinPlan.plan(JoinPlan.Request(secret: "s", node: "beta", address: "198.51.100.12"), cluster: Self.one).get()
        guard case .add(let config, let corosync, let id) = outcome else { Issue.record("not added"); return }
        #expect(id == 2)
        #expect(config.epoch == 2)
        #expect(config.nodes.map(\.name) == ["alpha", "beta"])
        #expect(corosync.contains("ring0_addr: 198.51.100.12"))
    }

    @Test func eachHostsWatchdogGoesIntoItsNodeEntry() throws {
        let request = InitPlan.Request(clusterName: "plant", nodeName: "alpha", address: "198.51.100.11", watchdog: .disabled)
        let plan = try InitPlan.plan(request, existing: InitPlan.Existing(), material: InitPlanTests.material, paths: InitPlanTests.paths).get()
        guard case .write(_, let yaml, _) = plan.directives[0] else { Issue.record("cluster.yaml first"); return }
        let config = try ConfigFile.parse(String(decoding: yaml, as: UTF8.self), file: "cluster.yaml")
        #expect(config.nodes.first?.watchdog == .disabled)

        let joined = JoinPlan.plan(JoinPlan.Request(secret: "s", node: "beta", address: "198.51.100.12", watchdog: "/dev/watchdog"), cluster: Self.one)
        guard case .success(.add(let two, _, _)) = joined else { Issue.record("beta was not added: \(joined)"); return }
        #expect(two.node(named: "beta")?.watchdog == .device("/dev/watchdog"))
        guard case .failure(let error) = JoinPlan.plan(JoinPlan.Request(secret: "s", node: "beta", address: "198.51.100.12", watchdog: "dog"), cluster: Self.one)
        else { Issue.record("a relative watchdog path was accepted"); return }
        #expect(error.message.contains("'dog'"))
    }

    @Test func joiningAgainChangesNothing() throws {
        var two = Self.one
        two.nodes.append(NodeConfig(name: "beta", id: 2, addresses: ["198.51.100.12"]))
        let outcome = try JoinPlan.plan(JoinPlan.Request(secret: "s", node: "beta", address: "198.51.100.12"), cluster: two).get()
        guard case .alreadyMember(let config, _, 2) = outcome else { Issue.record("not recognised"); return }
        #expect(config == two)
    }

    @Test func aSecondHostWithoutATieBreakerIsRefused() {
        var noQdevice = Self.one
        noQdevice.quorum = nil
        guard case .failure(let error) = JoinPlan.plan(JoinPlan.Request(secret: "s", node: "beta", address: "198.51.100.12"), cluster: noQdevice)
        else { Issue.record("accepted"); return }
        #expect(error.message.contains("run `clevervm qdevice setup QNETD-HOST` on alpha"))
    }

    @Test func aTakenNameOrAddressIsRefused() {
        guard case .failure(let name) = JoinPlan.plan(JoinPlan.Request(secret: "s", node: "alpha", address: "198.51.100.12"), cluster: Self.one)
        else { Issue.record("accepted"); return }
        #expect(name.message.contains("already has a node 'alpha' with address 198.51.100.11"))
        guard case .failure(let address) = JoinPlan.plan(JoinPlan.Request(secret: "s", node: "beta", address: "198.51.100.11"), cluster: Self.one)
        else { Issue.record("accepted"); return }
        #expect(address.message.contains("address 198.51.100.11 is node 'alpha''s"))
    }

    @Test func theSecretIsComparedWhole() {
        #expect(JoinPlan.secretMatches("abcd", expected: "abcd"))
        #expect(!JoinPlan.secretMatches("abce", expected: "abcd"))
        #expect(!JoinPlan.secretMatches("abc", expected: "abcd"))
        #expect(!JoinPlan.secretMatches("", expected: ""))
    }

    @Test func removeDropsTheNodeButNeverThisHost() throws {
        var two = Self.one
        two.nodes.append(NodeConfig(name: "beta", id: 2, addresses: ["198.51.100.12"]))
        guard case .remove(let config, let corosync) = try RemovePlan.plan(node: "beta", cluster: two, localNode: "alpha").get()
        else { Issue.record("not removed"); return }
        #expect(config.nodes.map(\.name) == ["alpha"])
        #expect(!corosync.contains("198.51.100.12"))
        #expect(try RemovePlan.plan(node: "gamma", cluster: two, localNode: "alpha").get() == .notMember)
        guard case .failure(let error) = RemovePlan.plan(node: "alpha", cluster: two, localNode: "alpha") else { Issue.record("accepted"); return }
        #expect(error.message.contains("is this host"))
    }
}
