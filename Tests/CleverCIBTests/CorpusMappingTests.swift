import CleverCIB
import CleverModel
import Testing

/// Specific mappings, checked on the corpus CIBs whose comments describe them.
@Suite("Corpus mappings")
struct CorpusMappingTests {
    @Test func twoHostInstallation() throws {
        let result = try CorpusFiles.load("two-host-healthy")
        let config = result.config

        let drbd = try #require(config.resource(named: "drbd-clone"))
        #expect(drbd.cloning == .promotable(max: 2, promotedMax: 1))
        #expect(drbd.kind == .ocf(OCFSpec(provider: "linbit", type: "drbd", parameters: ["drbd_resource": "r0"])))
        #expect(drbd.meta.stickiness == nil, "rsc_defaults sets stickiness, which the clone inherits")

        let vm = try #require(config.resource(named: "vm"))
        #expect(vm.kind == .ocf(OCFSpec(provider: "heartbeat", type: "VirtualDomain", parameters: ["config": "/etc/libvirt/qemu/mba7.xml"])))
        #expect(vm.meta.allowMigrate == false)
        #expect(vm.monitorInterval == Seconds(10))
        #expect(vm.cloning == .single)

        let vip = try #require(config.resource(named: "vip"))
        #expect(vip.kind == .ip(IPSpec(address: "198.51.100.50", prefixLength: 24, interface: "br0")))

        let ping = try #require(config.resource(named: "ping-clone"))
        #expect(ping.kind == .ping(PingSpec(hosts: ["192.0.2.1", "192.0.2.2"], multiplier: 1000, dampen: Seconds(5), attribute: "pingd")))
        #expect(ping.cloning == .clone(max: nil))
        #expect(config.resource(named: "ping") == nil, "the primitive inside a clone is the clone")

        #expect(config.properties.defaultStickiness == 100)
        #expect(config.constraints.contains(
            .colocation(ColocationConstraint(id: "vm-with-drbd-promoted", dependent: "vm", primary: "drbd-clone", score: .infinity, primaryRole: .promoted))))
        #expect(config.constraints.contains(
            .order(OrderConstraint(id: "drbd-promote-then-vm", first: "drbd-clone", firstAction: .promote, then: "vm", thenAction: .start))))
        #expect(config.constraints.contains(
            .colocation(ColocationConstraint(id: "vip-with-vm", dependent: "vip", primary: "vm", score: .infinity))))
        let pingRule = Rule(
            score: .minusInfinity,
            expression: .or([.notDefined("pingd"), .compare(attribute: "pingd", op: .lte, value: "0", type: .number)]))
        #expect(config.constraints.contains(
            .location(LocationConstraint(id: "vm-on-connected-node", resource: "vm", placement: .rule(pingRule)))))

        let state = result.state
        #expect(state.hasQuorum)
        #expect(state.nodes["node1"]?.status == .online)
        #expect(state.nodes["node1"]?.attributes["pingd"] == "2000")
        #expect(state.nodes["node2"]?.attributes["master-drbd"] == "10000")
        #expect(state.state(of: "drbd-clone", on: "node1").role == .promoted)
        #expect(state.state(of: "drbd-clone", on: "node2").role == .unpromoted)
        #expect(state.state(of: "vm", on: "node1").role == .started)
        #expect(state.state(of: "vm", on: "node2").role == .stopped, "a probe that returned 7")
        #expect(state.state(of: "ping-clone", on: "node2").role == .started)
        #expect(state.activeNodes(of: "vip") == ["node1"])
        #expect(state.state(of: "vm", on: "node1").lastOperations.map(\.action) == [.start, .monitor])
    }

    @Test func pingLostRuleHoldsOnTheNodeWithPingdZero() throws {
        let result = try CorpusFiles.load("two-host-ping-lost")
        guard case .location(let location)? = result.config.constraints.first(where: { $0.id == "vm-on-connected-node" }),
            case .rule(let rule) = location.placement
        else {
            Issue.record("no ping rule")
            return
        }
        #expect(rule.expression.evaluate(result.state.ruleAttributes(of: "node1")))
        #expect(!rule.expression.evaluate(result.state.ruleAttributes(of: "node2")))
        let undefined = try CorpusFiles.load("ping-rule-not-defined")
        #expect(rule.expression.evaluate(undefined.state.ruleAttributes(of: "node1")))
    }

    @Test func activeNodeOffline() throws {
        let result = try CorpusFiles.load("two-host-active-offline")
        #expect(result.state.nodes["node1"]?.status == .offline)
        #expect(result.state.nodes["node2"]?.status == .online)
        #expect(!result.state.hasQuorum)
        #expect(result.config.properties.noQuorumPolicy == .ignore)
        #expect(result.state.resources["vm"]?["node1"] == nil)
    }

    @Test func legacyMasterElementAndRoleSpellings() throws {
        let result = try CorpusFiles.load("promotable-legacy-master")
        let drbd = try #require(result.config.resource(named: "ms-drbd"))
        #expect(drbd.cloning == .promotable(max: 2, promotedMax: 1))
        #expect(drbd.meta.targetRole == .promoted)
        #expect(drbd.meta.stickiness == 1, "Pacemaker's default stickiness for clone instances")
        #expect(result.config.constraints == [
            .location(LocationConstraint(id: "drbd-master-on-node2", resource: "ms-drbd", placement: .node("node2", 200), role: .promoted))
        ])
        #expect(result.state.state(of: "ms-drbd", on: "node1").role == .promoted)
        #expect(result.state.nodes["node1"]?.attributes["master-drbd"] == "100")
        #expect(result.state.nodes["node1"]?.attributes["master-ms-drbd"] == "100", "the score under the clone's id too")
        #expect(result.state.nodes["node2"]?.attributes["master-ms-drbd"] == "10")
    }

    @Test func pacemakerDefaultsWhenNothingIsSet() throws {
        let properties = try CorpusFiles.load("location-scores-three-nodes").config.properties
        #expect(properties.defaultStickiness == 0)
        #expect(properties.migrationThreshold == Score.infinityValue)
        #expect(properties.failureTimeout == nil)
        #expect(properties.noQuorumPolicy == .stop)
        #expect(properties.symmetric)
    }

    @Test func stickinessDefaultsAndLocations() throws {
        let result = try CorpusFiles.load("location-minus-infinity")
        #expect(result.config.properties.defaultStickiness == .infinity)
        #expect(result.config.constraints == [
            .location(LocationConstraint(id: "vm-never-node1", resource: "vm", placement: .node("node1", .minusInfinity)))
        ])
    }

    @Test func symmetricClusterFalse() throws {
        #expect(try CorpusFiles.load("symmetric-cluster-false").config.properties.symmetric == false)
    }

    @Test func rulesWithAndAndIntegerType() throws {
        let constraint = try CorpusFiles.load("rule-and").config.constraints.first { $0.id == "vm-site-a-high-rack" }
        let expected = Rule(score: 100, expression: .and([
            .compare(attribute: "site", op: .eq, value: "a", type: .string),
            .compare(attribute: "rack", op: .gt, value: "2", type: .number),
        ]))
        #expect(constraint == .location(LocationConstraint(id: "vm-site-a-high-rack", resource: "vm", placement: .rule(expected))))
    }

    @Test func nestedRules() throws {
        let result = try CorpusFiles.load("rule-or-nested")
        let constraint = result.config.constraints.first { $0.id == "vm-healthy-ssd" }
        let expected = Rule(score: .minusInfinity, expression: .or([
            .compare(attribute: "kind", op: .ne, value: "ssd", type: .string),
            .and([.defined("maintenance"), .compare(attribute: "maintenance", op: .eq, value: "yes", type: .string)]),
        ]))
        #expect(constraint == .location(LocationConstraint(id: "vm-healthy-ssd", resource: "vm", placement: .rule(expected))))
        #expect(result.config.node(named: "node2")?.attributes == ["kind": "ssd", "maintenance": "yes"])
        #expect(result.state.ruleAttributes(of: "node3")["kind"] == "ssd")
    }

    @Test func scoreAttributeAndUname() throws {
        let constraints = try CorpusFiles.load("rule-score-attribute").config.constraints
        #expect(constraints.contains(.location(LocationConstraint(
            id: "vm-by-weight", resource: "vm",
            placement: .rule(Rule(score: 0, scoreAttribute: "weight", expression: .defined("weight")))))))
        #expect(constraints.contains(.location(LocationConstraint(
            id: "vm-not-node3-by-name", resource: "vm",
            placement: .rule(Rule(score: -20, expression: .compare(attribute: "#uname", op: .eq, value: "node3", type: .string)))))))
    }

    @Test func colocations() throws {
        let anti = try CorpusFiles.load("anti-colocation").config.constraints
        #expect(anti.contains(.colocation(ColocationConstraint(id: "b-not-with-a", dependent: "b", primary: "a", score: .minusInfinity))))
        let advisory = try CorpusFiles.load("colocation-advisory").config.constraints
        #expect(advisory.contains(.colocation(ColocationConstraint(id: "web-with-db", dependent: "web", primary: "db", score: 50))))
    }

    @Test func orderSpellings() throws {
        let constraints = try CorpusFiles.load("order-constraints").config.constraints
        let orders = constraints.compactMap { constraint -> OrderConstraint? in
            if case .order(let order) = constraint { return order }
            return nil
        }
        #expect(orders == [
            OrderConstraint(id: "a-then-b", first: "a", then: "b"),
            OrderConstraint(id: "b-then-c", first: "b", then: "c", kind: .optional),
            OrderConstraint(id: "a-then-c", first: "a", then: "c", kind: .optional),
            OrderConstraint(id: "drbd-then-a", first: "drbd-clone", firstAction: .promote, then: "a", thenAction: .start, symmetrical: false),
            OrderConstraint(id: "c-stop-then-b-stop", first: "c", firstAction: .stop, then: "b", thenAction: .stop),
        ])
    }

    @Test func groups() throws {
        let result = try CorpusFiles.load("group-stickiness")
        #expect(result.config.groups == [GroupConfig(id: "app", members: ["fs", "db", "web"], meta: ResourceMeta(stickiness: 40))])
        #expect(result.config.group(containing: "db")?.id == "app")
        #expect(result.config.resources.map(\.id) == ["fs", "db", "web"])
        #expect(result.state.activeNodes(of: "web") == ["node1"])
        let placement = try CorpusFiles.load("group-placement")
        #expect(placement.config.constraints.first?.id == "app-node2")
    }

    @Test func failCountsAreSummedPerResource() throws {
        let result = try CorpusFiles.load("migration-threshold-not-reached")
        #expect(result.config.resource(named: "vm")?.meta.migrationThreshold == 3)
        let vm = result.state.state(of: "vm", on: "node1")
        #expect(vm.failCount == 2)
        #expect(vm.lastFailure == Timestamp(seconds: 1_790_000_000 - 300))
        #expect(vm.role == .started, "stopped and started again after the failed monitor")
        #expect(vm.lastOperations.contains { $0.action == .monitor && $0.exitCode == 7 })
    }

    @Test func failureTimeout() throws {
        let result = try CorpusFiles.load("failure-timeout-expired")
        let meta = try #require(result.config.resource(named: "vm")?.meta)
        #expect(meta.failureTimeout == Seconds(600))
        let vm = result.state.state(of: "vm", on: "node1")
        #expect(vm.failCount == 3)
        #expect(vm.lastFailure == Timestamp(seconds: 1_790_000_000 - 3600))
    }

    @Test func targetRoles() throws {
        let stopped = try CorpusFiles.load("target-role-stopped").config
        #expect(stopped.resource(named: "vm")?.meta.targetRole == .stopped)
        #expect(stopped.resource(named: "web")?.meta.targetRole == .started)
        let mixed = try CorpusFiles.load("lsb-and-target-roles").config
        #expect(mixed.resource(named: "drbd-clone")?.meta.targetRole == .unpromoted)
        #expect(mixed.resource(named: "cron")?.kind == .lsb(LSBSpec(script: "cron")))
        #expect(mixed.resource(named: "cron")?.monitorInterval == Seconds(30))
    }

    @Test func standbyAndOffline() throws {
        let standby = try CorpusFiles.load("node-standby").state
        #expect(standby.nodes["node1"]?.standby == true)
        #expect(standby.nodes["node1"]?.status == .online)
        #expect(standby.nodes["node2"]?.standby == false)
        let offline = try CorpusFiles.load("node-offline").state
        #expect(offline.nodes["node1"]?.status == .offline)
        #expect(offline.nodes["node2"]?.status == .online)
    }

    @Test func cliConstraintsBecomeMarks() throws {
        let ban = try CorpusFiles.load("cli-ban")
        #expect(ban.config.constraints.isEmpty)
        #expect(ban.state.marks == [PlacementMark(kind: .ban, resource: "vm", node: "node1", createdBy: "crm_resource (cli-ban-vm-on-node1)")])
        let prefer = try CorpusFiles.load("cli-prefer")
        #expect(prefer.config.constraints.isEmpty)
        #expect(prefer.state.marks.map(\.kind) == [.prefer])
        #expect(prefer.state.marks.first?.node == "node2")
        let expired = try CorpusFiles.load("cli-ban-expired")
        #expect(expired.config.constraints.isEmpty)
        let mark = try #require(expired.state.marks.first)
        #expect(mark.expires == Timestamp(seconds: 1_790_000_000 - 4400), "2026-09-21 13:00:00 +00:00")
        #expect(!mark.isActive(at: CorpusFiles.now))
    }

    @Test func quorum() throws {
        let stop = try CorpusFiles.load("no-quorum-stop")
        #expect(!stop.state.hasQuorum)
        #expect(stop.config.properties.noQuorumPolicy == .stop)
        #expect(try CorpusFiles.load("no-quorum-freeze").config.properties.noQuorumPolicy == .freeze)
        #expect(try CorpusFiles.load("stickiness-keeps-place").state.hasQuorum)
    }
}
