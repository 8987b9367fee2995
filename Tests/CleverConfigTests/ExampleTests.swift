import CleverModel
import Testing

@testable import CleverConfig

@Suite struct ExampleTests {
    @Test func mba7ExampleDescribesTheTwoHostInstallation() throws {
        let config = try ConfigFile.load(path: TestFiles.mba7Example)
        #expect(config.name == "mba7")
        #expect(config.epoch == 1)
        #expect(config.properties.defaultStickiness == 100)
        #expect(config.properties.failureTimeout == Seconds(600))
        #expect(config.nodes.map(\.name) == ["alpha", "beta"])
        #expect(config.nodes.map(\.addresses) == [["198.51.100.11"], ["198.51.100.12"]])
        #expect(config.quorum == QuorumConfig(qdeviceHost: "198.51.100.1", algorithm: "ffsplit", pingTargets: ["198.51.100.1"]))
        #expect(config.resources.map(\.id) == ["disk0", "vmstate", "mba7", "vip", "gw-ping"])

        let disk = try #require(config.resource(named: "disk0"))
        #expect(
            disk.kind
                == .volume(
                    VolumeSpec(
                        size: 1 << 30, backing: "/var/lib/clevervm/disk0.img", protocolMode: .C, port: 7789,
                        afterSplitBrain0: .discardZeroChanges, afterSplitBrain1: .discardSecondary,
                        afterSplitBrain2: .disconnect, secretFile: "/etc/clevervm/disk0.secret")))
        #expect(disk.cloning == .promotable(max: 2, promotedMax: 1))

        let vm = try #require(config.resource(named: "mba7"))
        #expect(
            vm.kind
                == .vm(
                    VMSpec(
                        cpus: 1, memoryMiB: 256, volumes: ["disk0"], stateVolume: "vmstate",
                        boot: "/var/lib/clevervm/guest/vmlinuz", stopMode: .hibernate, migration: .live,
                        addresses: ["vip"])))
        #expect(config.resource(named: "vip")?.kind == .ip(IPSpec(address: "198.51.100.50", prefixLength: 24)))
        #expect(
            config.resource(named: "gw-ping")?.kind
                == .ping(PingSpec(hosts: ["198.51.100.1"], multiplier: 1000, dampen: Seconds(5), attribute: "pingd")))
        #expect(config.resource(named: "gw-ping")?.cloning == .clone(max: nil))

        let expected = Constraint.location(
            LocationConstraint(
                id: "location-mba7-rule-1", resource: "mba7",
                placement: .rule(
                    Rule(
                        score: .minusInfinity,
                        expression: .or([
                            .notDefined("pingd"),
                            .compare(attribute: "pingd", op: .lte, value: "0", type: .number),
                        ])))))
        #expect(config.constraints == [expected])
    }

    @Test func mba7RuleKeepsTheVMOffAHostWithoutTheGateway() throws {
        let config = try ConfigFile.load(path: TestFiles.mba7Example)
        guard case .location(let location) = config.constraints[0], case .rule(let rule) = location.placement else {
            Issue.record("expected a rule")
            return
        }
        #expect(rule.expression.evaluate([:]))
        #expect(rule.expression.evaluate(["pingd": "0"]))
        #expect(!rule.expression.evaluate(["pingd": "1000"]))
    }

    @Test func mba7RoundTrips() throws {
        let config = try ConfigFile.load(path: TestFiles.mba7Example)
        let rendered = ConfigFile.render(config)
        #expect(try ConfigFile.parse(rendered, file: "rendered.yaml") == config)
    }

    @Test func everyFeatureRoundTrips() throws {
        let config = RichConfig.make()
        let rendered = ConfigFile.render(config)
        let reparsed: ClusterConfig
        do {
            reparsed = try ConfigFile.parse(rendered, file: "rendered.yaml")
        } catch {
            Issue.record("rendered config does not parse:\n\(error)\n\(rendered)")
            return
        }
        #expect(reparsed == config, "\(rendered)")
        #expect(ConfigFile.render(reparsed) == rendered)
    }

    @Test func nodesWithoutAddressesRenderANote() {
        let config = ClusterConfig(name: "imported", nodes: [NodeConfig(name: "node1", id: 1, addresses: [])])
        let rendered = ConfigFile.render(config)
        #expect(rendered.contains("    addresses: []  # required: one or two link addresses\n"))
        let found = diagnostics(of: rendered)
        #expect(found.map(\.message) == ["a node has one or two addresses, found 0"])
    }

    @Test func leftOutKeysTakeTheirDefaults() throws {
        let config = try #require(
            parse(
                twoNodes + """
                    resources:
                      - {id: disk0, type: volume, size: 64MiB, backing: /dev/vg0/disk0}
                      - {id: vm1, type: vm, boot: /boot/vmlinuz}
                    """))
        #expect(config.epoch == 1)
        #expect(config.properties == ClusterProperties())
        #expect(config.quorum == nil)
        let disk = try #require(config.resource(named: "disk0"))
        #expect(disk.kind == .volume(VolumeSpec(size: 64 << 20, backing: "/dev/vg0/disk0")))
        #expect(disk.cloning == .promotable(max: 2, promotedMax: 1))
        #expect(disk.monitorInterval == Seconds(10))
        #expect(disk.operationTimeout == Seconds(20))
        #expect(disk.meta == ResourceMeta())
        #expect(config.resource(named: "vm1")?.kind == .vm(VMSpec(boot: "/boot/vmlinuz")))
    }

    @Test func aForwardedFloatingAddress() throws {
        let config = try #require(
            parse(twoNodes + """
                    resources:
                      - {id: vip, type: ip, address: 198.51.100.50/24, interface: lan0, forward-to: 198.51.100.242}
                    """))
        #expect(config.resource(named: "vip")?.kind == .ip(IPSpec(address: "198.51.100.50", prefixLength: 24, interface: "lan0",
                                                                  forwardTo: "198.51.100.242")))
        expectSingleError(twoNodes + """
                resources:
                  - {id: vip, type: ip, address: 198.51.100.50/24, forward-to: 2001:db8::1}
                """, line: 7, column: 64, path: "resources[0].forward-to", containing: "'2001:db8::1' is not an IPv4 address")
    }

    @Test func aVMsNICAndKernelArguments() throws {
        let config = try #require(
            parse(
                twoNodes + """
                    resources:
                      - {id: vm1, type: vm, boot: /boot/k, bridge: lan0, mac: "52:54:00:AA:bb:01", kernel-args: "guest.ip=198.51.100.60/24"}
                    """))
        #expect(config.resource(named: "vm1")?.kind == .vm(VMSpec(boot: "/boot/k", bridge: "lan0", mac: "52:54:00:aa:bb:01",
                                                                  kernelArguments: "guest.ip=198.51.100.60/24")))
    }

    @Test func propertiesAreRead() throws {
        let config = try #require(
            parse(
                """
                cluster:
                  name: lab
                  epoch: 7
                  properties:
                    stickiness: INFINITY
                    no-quorum-policy: freeze
                    migration-threshold: 0
                    failure-timeout: never
                    symmetric: false
                    self-fence-timeout: 250ms
                nodes:
                  - {name: alpha, id: 1, addresses: [198.51.100.11, "2001:db8::11"], attributes: {rack: a}}
                """))
        #expect(config.epoch == 7)
        #expect(
            config.properties
                == ClusterProperties(
                    defaultStickiness: .infinity, noQuorumPolicy: .freeze, migrationThreshold: 0, failureTimeout: nil,
                    symmetric: false, selfFenceTimeout: Seconds(0.25)))
        #expect(config.nodes[0].addresses == ["198.51.100.11", "2001:db8::11"])
        #expect(config.nodes[0].attributes == ["rack": "a"])
    }

    @Test func failureTimeoutZeroMeansNever() throws {
        let config = try #require(
            parse(
                """
                cluster: {name: lab, properties: {failure-timeout: 0}}
                nodes: [{name: alpha, id: 1, addresses: [198.51.100.11]}]
                resources:
                  - {id: w, type: process, command: /bin/true, meta: {failure-timeout: never}, monitor: none, timeout: 90s}
                """))
        #expect(config.properties.failureTimeout == nil)
        let worker = try #require(config.resource(named: "w"))
        // In meta, nil inherits the cluster's value, so "never" is kept as 0.
        #expect(worker.meta.failureTimeout == Seconds(0))
        #expect(worker.monitorInterval == nil)
        #expect(worker.operationTimeout == Seconds(90))
    }

    @Test func resourceKindsAndCloningOverrides() throws {
        let config = try #require(
            parse(
                twoNodes + """
                    resources:
                      - id: worker
                        type: process
                        command: /bin/sleep  infinity
                        clone: {max: 2}
                      - {id: dummy, type: ocf, agent: "ocf:heartbeat:Dummy", params: {state: /run/dummy.state}}
                      - {id: dummy2, type: ocf, agent: "pacemaker:Stateful", promotable: {max: 2, promoted-max: 1}}
                      - {id: legacy, type: lsb, script: /etc/init.d/foo, clone: true}
                      - {id: disk0, type: volume, size: 1G, backing: /dev/sdb, clone: false}
                      - {id: vip6, type: ip, address: "2001:db8::50/64", interface: eth0}
                    """))
        #expect(config.resource(named: "worker")?.kind == .process(ProcessSpec(command: ["/bin/sleep", "infinity"])))
        #expect(config.resource(named: "worker")?.cloning == .clone(max: 2))
        #expect(
            config.resource(named: "dummy")?.kind
                == .ocf(OCFSpec(provider: "heartbeat", type: "Dummy", parameters: ["state": "/run/dummy.state"])))
        #expect(config.resource(named: "dummy2")?.cloning == .promotable(max: 2, promotedMax: 1))
        #expect(config.resource(named: "legacy")?.kind == .lsb(LSBSpec(script: "/etc/init.d/foo")))
        #expect(config.resource(named: "legacy")?.cloning == .clone(max: nil))
        #expect(config.resource(named: "disk0")?.cloning == .single)
        #expect(
            config.resource(named: "vip6")?.kind
                == .ip(IPSpec(address: "2001:db8::50", prefixLength: 64, interface: "eth0")))
    }

    @Test func constraintsAndGroupsAreRead() throws {
        let config = try #require(
            parse(
                twoNodes + """
                    resources:
                      - {id: disk0, type: volume, size: 1GiB, backing: /dev/sdb}
                      - {id: vip, type: ip, address: 198.51.100.50/24}
                      - {id: worker, type: process, command: [/bin/sleep, infinity]}
                    groups:
                      - {id: web, members: [vip, worker], meta: {target-role: Stopped, priority: 5}}
                    constraints:
                      - location: {id: loc1, resource: web, node: alpha, score: 50}
                      - location: {resource: disk0, node: beta, role: Promoted}
                      - location: {resource: web, score-attribute: pingd, rule: "defined pingd"}
                      - colocation: {id: c1, resource: web, with: disk0, score: INFINITY, role: Started, with-role: Promoted}
                      - order: {id: o1, first: disk0, first-action: promote, then: web, then-action: start, kind: optional, symmetrical: false}
                    """))
        #expect(config.groups == [GroupConfig(id: "web", members: ["vip", "worker"], meta: ResourceMeta(targetRole: .stopped, priority: 5))])
        #expect(
            config.constraints == [
                .location(LocationConstraint(id: "loc1", resource: "web", placement: .node("alpha", 50))),
                .location(
                    LocationConstraint(
                        id: "location-disk0-beta-Promoted", resource: "disk0", placement: .node("beta", .infinity),
                        role: .promoted)),
                .location(
                    LocationConstraint(
                        id: "location-web-rule-1", resource: "web",
                        placement: .rule(Rule(score: .zero, scoreAttribute: "pingd", expression: .defined("pingd"))))),
                .colocation(
                    ColocationConstraint(
                        id: "c1", dependent: "web", primary: "disk0", score: .infinity, dependentRole: .started,
                        primaryRole: .promoted)),
                .order(
                    OrderConstraint(
                        id: "o1", first: "disk0", firstAction: .promote, then: "web", thenAction: .start, kind: .optional,
                        symmetrical: false)),
            ])
    }

    @Test func missingConstraintIDsAreGeneratedDeterministically() throws {
        let config = try #require(
            parse(
                twoNodes + """
                    resources:
                      - {id: a, type: process, command: /bin/true}
                      - {id: b, type: process, command: /bin/true}
                      - {id: order-a-b, type: process, command: /bin/true}
                    constraints:
                      - location: {resource: a, node: alpha, score: 10}
                      - location: {resource: a, rule: "defined x"}
                      - location: {resource: a, rule: "defined y"}
                      - colocation: {resource: a, with: b}
                      - order: {first: a, then: b}
                      - order: {first: a, then: b, then-action: stop}
                    """))
        #expect(
            config.constraints.map(\.id) == [
                "location-a-alpha", "location-a-rule-1", "location-a-rule-2", "colocation-a-b", "order-a-b-2",
                "order-a-b-3",
            ])
    }
}

/// A config that uses every key and some awkward strings, for the round trip.
enum RichConfig {
    static func make() -> ClusterConfig {
        ClusterConfig(
            name: "lab-1",
            epoch: 42,
            properties: ClusterProperties(
                // stop: freeze and ignore are refused with a volume (it would run twice).
                defaultStickiness: .minusInfinity, noQuorumPolicy: .stop, migrationThreshold: 0, failureTimeout: nil,
                symmetric: false, selfFenceTimeout: Seconds(1.5), watchdogTimeout: Seconds(4), token: Seconds(0.5),
                consensus: Seconds(0.75)),
            nodes: [
                NodeConfig(name: "alpha", id: 1, addresses: ["198.51.100.11", "fe80::1"], attributes: ["rack": "a b", "#weird": "x: y"],
                           watchdog: .device("/dev/watchdog0"), watchdogTimeout: Seconds(6)),
                NodeConfig(name: "beta", id: 7, addresses: ["198.51.100.12", "::1"], watchdog: .disabled),
            ],
            quorum: QuorumConfig(qdeviceHost: "qnetd.example", algorithm: "lms", pingTargets: ["198.51.100.1", "gw"],
                                 timeout: Seconds(2), syncTimeout: Seconds(4)),
            resources: [
                ResourceConfig(
                    id: "disk0",
                    kind: .volume(
                        VolumeSpec(
                            size: 3 * 4096, backing: "/var/lib/clevervm/disk 0.img", protocolMode: .A, port: 7790,
                            afterSplitBrain0: .discardLeastChanges, afterSplitBrain1: .consensus, afterSplitBrain2: .disconnect,
                            secretFile: "/etc/secret")),
                    meta: ResourceMeta(stickiness: 0, migrationThreshold: 1, failureTimeout: Seconds(0), targetRole: .promoted),
                    cloning: .promotable(max: nil, promotedMax: 1), monitorInterval: Seconds(0.25), operationTimeout: Seconds(3600)),
                ResourceConfig(
                    id: "disk1", kind: .volume(VolumeSpec(size: 5 << 40, backing: "/dev/sdc")), cloning: .single,
                    monitorInterval: nil),
                ResourceConfig(
                    id: "vm", kind: .vm(VMSpec(cpus: 4, memoryMiB: 2048 + 1, volumes: ["disk0"], stateVolume: "disk1", boot: "/boot/k", stopMode: .shutdown, migration: .hibernate, addresses: ["vip"], bridge: "vmbr0", mac: "52:54:00:0a:0b:0c", kernelArguments: "console=ttyS0 guest.ip=198.51.100.60/24")),
                    meta: ResourceMeta(allowMigrate: false, priority: -3)),
                ResourceConfig(id: "vip", kind: .ip(IPSpec(address: "198.51.100.50", prefixLength: 32, interface: "br0", forwardTo: "198.51.100.242"))),
                ResourceConfig(
                    id: "ping", kind: .ping(PingSpec(hosts: ["198.51.100.1"], multiplier: 7, dampen: Seconds(90), attribute: "#ping")),
                    cloning: .clone(max: 3), operationTimeout: Seconds(1.0005)),
                ResourceConfig(id: "p1", kind: .process(ProcessSpec(command: ["/bin/sh", "-c", "echo \"hi\"; sleep 1"]))),
                ResourceConfig(id: "p2", kind: .process(ProcessSpec(command: ["/bin/true"])), cloning: .clone(max: nil)),
                ResourceConfig(id: "o", kind: .ocf(OCFSpec(provider: "heartbeat", type: "IPaddr2", parameters: ["ip": "198.51.100.9", "empty": ""]))),
                ResourceConfig(id: "l", kind: .lsb(LSBSpec(script: "foo"))),
            ],
            groups: [GroupConfig(id: "g", members: ["p1", "o"], meta: ResourceMeta(stickiness: .infinity, failureTimeout: Seconds(300)))],
            constraints: [
                .location(LocationConstraint(id: "l1", resource: "vm", placement: .node("beta", -5), role: nil)),
                .location(LocationConstraint(id: "l2", resource: "disk0", placement: .node("alpha", .infinity), role: .unpromoted)),
                .location(
                    LocationConstraint(
                        id: "l3", resource: "g",
                        placement: .rule(
                            Rule(
                                score: 20,
                                expression: .and([
                                    .or([.defined("#uname"), .compare(attribute: "rack", op: .ne, value: "a b", type: .string)]),
                                    .compare(attribute: "load", op: .gt, value: "10", type: .string),
                                    .compare(attribute: "cores", op: .gte, value: "4", type: .number),
                                    .and([.notDefined("x"), .compare(attribute: "#uname", op: .eq, value: "alpha", type: .string)]),
                                ]))))),
                .location(
                    LocationConstraint(
                        id: "l4", resource: "vm",
                        placement: .rule(Rule(score: .zero, scoreAttribute: "pingd", expression: .defined("pingd"))))),
                .colocation(ColocationConstraint(id: "c1", dependent: "vm", primary: "disk0", score: .infinity, dependentRole: nil, primaryRole: .promoted)),
                .colocation(ColocationConstraint(id: "c2", dependent: "g", primary: "vm", score: -100, dependentRole: .started)),
                .order(OrderConstraint(id: "o1", first: "disk1", firstAction: .start, then: "vm", thenAction: .start)),
                .order(OrderConstraint(id: "o2", first: "vm", firstAction: .stop, then: "g", thenAction: .start, kind: .optional, symmetrical: false)),
            ])
    }
}
