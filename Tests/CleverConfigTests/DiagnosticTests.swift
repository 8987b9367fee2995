import CleverModel
import Foundation
import Testing

@testable import CleverConfig

/// Each kind of error, with the exact place it is reported.
@Suite struct DiagnosticTests {
    // MARK: Format

    @Test func descriptionHasTheCompilerShape() {
        let diagnostic = ConfigDiagnostic(
            file: "mba7.yaml", line: 14, column: 13, keyPath: "resources[2].memory", message: "memory '8MiB' is less than 16MiB",
            hint: "at least 16MiB")
        #expect(
            diagnostic.description
                == "mba7.yaml:14:13: error: resources[2].memory: memory '8MiB' is less than 16MiB (hint: at least 16MiB)")
        let whole = ConfigDiagnostic(file: "x.yaml", line: 0, column: 0, keyPath: "", message: "the file is empty")
        #expect(whole.description == "x.yaml: error: the file is empty")
    }

    // MARK: Files and YAML

    @Test func missingFileIsOneDiagnostic() {
        do {
            _ = try ConfigFile.load(path: "/nonexistent/clevervm.yaml")
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.count == 1)
            #expect(error.description == "/nonexistent/clevervm.yaml: error: cannot read the config file: it does not exist")
        }
    }

    @Test func directoryIsOneDiagnostic() {
        do {
            _ = try ConfigFile.load(path: NSTemporaryDirectory())
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.count == 1)
            #expect(error.diagnostics[0].message.contains("is a directory"))
        }
    }

    @Test func binaryFileIsNotUTF8() throws {
        let path = NSTemporaryDirectory() + "clevervm-config-test-\(UUID().uuidString).yaml"
        try Data([0xFF, 0xFE, 0x00, 0xC3]).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try ConfigFile.load(path: path)
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.count == 1)
            #expect(error.diagnostics[0].message.contains("not UTF-8"))
        }
    }

    @Test func emptyFile() {
        let found = diagnostics(of: "# nothing here\n")
        #expect(found.map(\.message) == ["the file is empty"])
    }

    @Test func notAMapping() {
        expectSingleError("just some text\n", line: 1, column: 1, path: "", containing: "expected a mapping")
    }

    @Test func yamlSyntaxErrorIsLocated() {
        let yaml = """
            cluster:
              name: lab
             nodes: []
            """
        let found = diagnostics(of: yaml)
        #expect(found.count == 1)
        #expect(found.first?.line == 3)
        #expect(found.first?.message.hasPrefix("invalid YAML") == true)
    }

    @Test func deeplyNestedYAMLIsAnErrorNotACrash() {
        let deep = "cluster: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n"
        let found = diagnostics(of: deep)
        #expect(found.count == 1)
        #expect(found.first?.message.hasPrefix("invalid YAML") == true)
    }

    @Test func tabIndentationGetsAHint() {
        let found = diagnostics(of: "cluster:\n\tname: lab\n")
        #expect(found.count == 1)
        #expect(found.first?.line == 2)
        #expect(found.first?.column == 1)
        #expect(found.first?.hint == "YAML indents with spaces, not tabs")
    }

    @Test func duplicateKeyIsLocated() {
        let yaml = """
            cluster:
              name: lab
              name: other
            """
        let found = diagnostics(of: yaml)
        #expect(found.count == 1)
        #expect(found.first?.line == 3)
        #expect(found.first?.column == 3)
        #expect(found.first?.message == "duplicate key 'name' in one mapping")
        #expect(found.first?.hint == "first given at line 2; each key may appear only once")
    }

    @Test func duplicateKeyFurtherDownANestedMapping() {
        let yaml = """
            cluster:
              name: lab
            nodes:
              - name: alpha
                id: 1
                # a comment

                attributes: {rack: a}
                id: 2
              - name: beta
                id: 2
            """
        let found = diagnostics(of: yaml)
        #expect(found.map { "\($0.line):\($0.column)" } == ["9:5"])
    }

    @Test func duplicateKeyInAFlowMappingPointsAtTheFirst() {
        let found = diagnostics(of: "cluster: {name: a, name: b}\nnodes: []\n")
        #expect(found.map { "\($0.line):\($0.column)" } == ["1:11"])
    }

    // MARK: Keys and types

    @Test func unknownKeyNamesTheNearestKnownOne() {
        let diagnostic = expectSingleError(
            """
            cluster:
              name: lab
            nodes:
              - name: alpha
                id: 1
                addresses: [198.51.100.11]
                atributes: {rack: a}
            """, line: 7, column: 5, path: "nodes[0].atributes", containing: "unknown key 'atributes'")
        #expect(diagnostic?.hint == "did you mean 'attributes'?")
    }

    @Test func unknownKeyWithoutANearOneListsTheKnownKeys() {
        let diagnostic = expectSingleError(
            twoNodes + "flavour: vanilla\n", line: 6, column: 1, path: "flavour", containing: "unknown key")
        #expect(diagnostic?.hint == "known keys: cluster, nodes, quorum, resources, groups, constraints")
    }

    @Test func keysDependOnTheResourceType() {
        let diagnostic = expectSingleError(
            twoNodes + """
                resources:
                  - id: vip
                    type: ip
                    address: 198.51.100.50/24
                    memory: 1GiB
                """, line: 10, column: 5, path: "resources[0].memory", containing: "unknown key 'memory'")
        #expect(diagnostic?.hint?.hasPrefix("known keys: id, type, meta") == true)
    }

    @Test func wrongTypeIsReported() {
        expectSingleError(
            """
            cluster: [lab]
            nodes: [{name: alpha, id: 1, addresses: [198.51.100.11]}]
            """, line: 1, column: 10, path: "cluster", containing: "expected a mapping (key: value), found a list")
        expectSingleError(
            twoNodes + """
                resources:
                  - {id: vm1, type: vm, boot: /boot/k, cpus: [1, 2]}
                """, line: 7, column: 46, path: "resources[0].cpus", containing: "expected an integer, found a list")
        expectSingleError(
            twoNodes + """
                resources:
                  - {id: vm1, type: vm, boot: /boot/k, cpus: two}
                """, line: 7, column: 46, path: "resources[0].cpus", containing: "expected an integer, found 'two'")
    }

    @Test func missingRequiredKeys() {
        expectSingleError(
            """
            cluster:
              epoch: 2
            nodes: [{name: alpha, id: 1, addresses: [198.51.100.11]}]
            """, line: 2, column: 3, path: "cluster", containing: "missing required key 'name'")
        expectSingleError(
            twoNodes + """
                resources:
                  - id: disk0
                    size: 1GiB
                """, line: 7, column: 5, path: "resources[0]", containing: "missing required key 'type'")
        expectSingleError(
            "cluster: {name: lab}\n", line: 1, column: 1, path: "", containing: "missing required key 'nodes'")
        expectSingleError(
            twoNodes + """
                resources:
                  - {id: disk0, type: volume, backing: /dev/sdb}
                """, line: 7, column: 5, path: "resources[0]", containing: "missing required key 'size'")
    }

    @Test func keyWithoutValue() {
        expectSingleError(
            """
            cluster:
              name:
            nodes: [{name: alpha, id: 1, addresses: [198.51.100.11]}]
            """, line: 2, column: 8, path: "cluster.name", containing: "'name' has no value")
    }

    @Test func unknownResourceType() {
        let diagnostic = expectSingleError(
            twoNodes + """
                resources:
                  - {id: web, type: procss, command: /bin/true}
                """, line: 7, column: 21, path: "resources[0].type", containing: "unknown resource type 'procss'")
        #expect(diagnostic?.hint == "did you mean 'process'?")
    }

    @Test func badEnumValueSuggestsTheNearest() {
        let diagnostic = expectSingleError(
            twoNodes + """
                resources:
                  - {id: vm1, type: vm, boot: /boot/k, stop-mode: hibernat}
                """, line: 7, column: 51, path: "resources[0].stop-mode", containing: "'hibernat' is not one of")
        #expect(diagnostic?.hint == "did you mean 'hibernate'?")
    }

    // MARK: Duplicates

    @Test func duplicateNodeNamesAndIDs() {
        let found = diagnostics(
            of: """
                cluster: {name: lab}
                nodes:
                  - {name: alpha, id: 1, addresses: [198.51.100.11]}
                  - {name: alpha, id: 1, addresses: [198.51.100.11]}
                """)
        #expect(found.map(\.keyPath) == ["nodes[1].name", "nodes[1].id", "nodes[1].addresses[0]"])
        #expect(found.map(\.line) == [4, 4, 4])
        #expect(found.map(\.column) == [12, 23, 38])
        #expect(found[0].message == "node name 'alpha' is already used by nodes[0]")
        #expect(found[0].hint == "first used at line 3; each must be unique")
    }

    @Test func duplicateIDsAcrossResourcesGroupsAndConstraints() {
        let found = diagnostics(
            of: twoNodes + """
                resources:
                  - {id: a, type: process, command: /bin/true}
                  - {id: a, type: process, command: /bin/false}
                  - {id: b, type: process, command: /bin/true}
                groups:
                  - {id: b, members: [a]}
                constraints:
                  - order: {id: a, first: a, then: b}
                """)
        #expect(found.map(\.keyPath) == ["resources[1].id", "groups[0].id", "constraints[0].order.id"])
        #expect(found.map(\.line) == [8, 11, 13])
        #expect(found.map(\.column) == [10, 10, 17])
        #expect(found.map(\.message) == [
            "id 'a' is already used by resources[0]", "id 'b' is already used by resources[2]",
            "id 'a' is already used by resources[0]",
        ])
    }

    @Test func volumePortsMustDiffer() {
        expectSingleError(
            twoNodes + """
                resources:
                  - {id: d0, type: volume, size: 1GiB, backing: /dev/sdb}
                  - {id: d1, type: volume, size: 1GiB, backing: /dev/sdc, port: 7789}
                """, line: 8, column: 65, path: "resources[1].port", containing: "port 7789 is already used by volume d0")
    }

    // MARK: References

    @Test func undefinedReferences() {
        let found = diagnostics(
            of: twoNodes + """
                resources:
                  - {id: disk0, type: volume, size: 1GiB, backing: /dev/sdb}
                  - {id: vip, type: ip, address: 198.51.100.50/24}
                  - id: vm1
                    type: vm
                    boot: /boot/k
                    volumes: [disk0, disk9]
                    state-volume: disk1
                    addresses: [vip, disk0, vip2]
                groups:
                  - {id: g, members: [vm1, nobody]}
                constraints:
                  - location: {resource: vm2, node: alpha}
                  - location: {resource: vm1, node: gamma}
                  - colocation: {resource: g, with: dsk0}
                  - order: {first: disk0, then: gg}
                """)
        let summary = found.map { "\($0.line):\($0.column) \($0.keyPath): \($0.message)" }
        #expect(
            summary == [
                "12:22 resources[2].volumes[1]: 'disk9' is not a defined resource",
                "13:19 resources[2].state-volume: 'disk1' is not a defined resource",
                "14:22 resources[2].addresses[1]: 'disk0' is a volume resource, not an ip",
                "14:29 resources[2].addresses[2]: 'vip2' is not a defined resource",
                "16:28 groups[0].members[1]: 'nobody' is not a defined resource",
                "18:26 constraints[0].location.resource: 'vm2' is not a defined resource or group",
                "19:37 constraints[1].location.node: 'gamma' is not a defined node",
                "20:37 constraints[2].colocation.with: 'dsk0' is not a defined resource or group",
                "21:33 constraints[3].order.then: 'gg' is not a defined resource or group",
            ])
        #expect(found[0].hint == "did you mean 'disk0'?")
        #expect(found[1].hint == "did you mean 'disk0'?")
        #expect(found[3].hint == "did you mean 'vip'?")
        #expect(found[5].hint == "did you mean 'vm1'?")
    }

    @Test func rolesAndActionsNeedAPromotableResource() {
        let found = diagnostics(
            of: twoNodes + """
                resources:
                  - {id: w, type: process, command: /bin/true}
                  - {id: disk0, type: volume, size: 1GiB, backing: /dev/sdb}
                constraints:
                  - location: {resource: w, node: alpha, role: Promoted}
                  - colocation: {resource: w, with: disk0, with-role: Promoted, role: Unpromoted}
                  - order: {first: w, first-action: promote, then: disk0, then-action: promote}
                """)
        #expect(found.map(\.keyPath) == [
            "constraints[0].location.role", "constraints[1].colocation.role", "constraints[2].order.first-action",
        ])
        #expect(found.map(\.line) == [10, 11, 12])
    }

    // MARK: Impossible values

    @Test(arguments: [
        ("cpus: 0", "must be at least 1, found 0"),
        ("memory: 8MiB", "memory '8MiB' is less than 16MiB"),
        ("memory: 20000KiB", "is not a whole number of MiB"),
        ("memory: lots", "expected a size, found 'lots'"),
    ])
    func impossibleVMValues(setting: String, message: String) {
        expectSingleError(
            twoNodes + """
                resources:
                  - id: vm1
                    type: vm
                    boot: /boot/k
                    \(setting)
                """, line: 10, column: setting.firstIndex(of: ":")!.utf16Offset(in: setting) + 7,
            path: "resources[0].\(setting.prefix { $0 != ":" })", containing: message)
    }

    @Test(arguments: [
        ("size: 0", "a volume needs a size above 0"),
        ("size: 1000", "size 1000 bytes is not a multiple of 4096"),
        ("size: 1.5GiB", "expected a size, found '1.5GiB'"),
        ("size: 1GB", "size 1000000000 bytes is not a multiple of 4096"),
        ("port: 0", "port 0 is outside 1...65535"),
        ("port: 65536", "port 65536 is outside 1...65535"),
        ("protocol: B", "'B' is not one of A, C"),
        ("after-sb-2pri: discard-secondary", "'discard-secondary' is not one of disconnect"),
        ("secret-file: disk0.secret", "'disk0.secret' is not an absolute path"),
        ("c-plan-ahead: 60s", "c-plan-ahead 60s is longer than 30s"),
        ("c-fill-target: 1K", "c-fill-target 1K is outside 64KiB"),
        ("c-max-rate: 0", "c-max-rate must be above 0"),
        ("resync-rate: fast", "expected a size, found 'fast'"),
        ("monitor: 10 minutes", "expected a duration, found '10 minutes'"),
        ("timeout: 0", "must be longer than 0, found '0'"),
        ("meta: {migration-threshold: -1}", "must be at least 0, found -1"),
        ("meta: {stickiness: high}", "expected a score, found 'high'"),
        ("meta: {target-role: Master}", "'Master' is not one of Stopped, Started, Unpromoted, Promoted"),
        ("promotable: {max: 1, promoted-max: 2}", "promoted-max 2 is more than max 1"),
        ("clone: maybe", "expected true or false, found 'maybe'"),
    ])
    func impossibleVolumeValues(setting: String, message: String) {
        // The setting comes last and replaces the default line for the same key.
        let key = setting.prefix { $0 != ":" }
        let lines = ["size: 1GiB", "backing: /dev/sdb"].filter { !$0.hasPrefix("\(key):") } + [setting]
        let found = diagnostics(
            of: twoNodes + """
                resources:
                  - id: disk0
                    type: volume

                """ + lines.map { "    \($0)\n" }.joined())
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.message.contains(message) == true, "\(found)")
        #expect(found.first?.keyPath.hasPrefix("resources[0].\(key)") == true, "\(found)")
        #expect(found.first?.line == 8 + lines.count, "\(found)")
    }

    @Test(arguments: [
        ("198.51.100.50/33", "prefix length 33 is more than 32 for an IPv4 address"),
        ("2001:db8::1/129", "prefix length 129 is more than 128 for an IPv6 address"),
        ("198.51.100.50", "has no prefix length"),
        ("198.51.100.500/24", "'198.51.100.500' is not an IPv4 or IPv6 address"),
        ("198.51.100.50/x", "'x' is not a prefix length"),
    ])
    func impossibleAddresses(address: String, message: String) {
        expectSingleError(
            twoNodes + """
                resources:
                  - id: vip
                    type: ip
                    address: "\(address)"
                """, line: 9, column: 14, path: "resources[0].address", containing: message)
    }

    @Test(arguments: [
        ("bridge", "a-very-long-bridge-name", "is not a network interface name"),
        ("mac", "52:54:00:12:34", "is not a MAC address"),
        ("mac", "01:00:5e:00:00:01", "is a multicast MAC address"),
    ])
    func badVMNetwork(key: String, value: String, message: String) {
        expectSingleError(
            twoNodes + """
                resources:
                  - id: vm1
                    type: vm
                    boot: /boot/k
                    \(key): "\(value)"
                """, line: 10, column: 5 + key.count + 2, path: "resources[0].\(key)", containing: message)
    }

    @Test func badClusterProperties() {
        let found = diagnostics(
            of: """
                cluster:
                  name: lab
                  epoch: 0
                  properties:
                    migration-threshold: -1
                    failure-timeout: soon
                    self-fence-timeout: 0
                    symmetric: perhaps
                nodes: [{name: alpha, id: 1, addresses: [198.51.100.11]}]
                """)
        #expect(found.map(\.line) == [3, 5, 6, 7, 8])
        #expect(found.map(\.keyPath) == [
            "cluster.epoch", "cluster.properties.migration-threshold", "cluster.properties.failure-timeout",
            "cluster.properties.self-fence-timeout", "cluster.properties.symmetric",
        ])
    }

    @Test func badNodes() {
        let found = diagnostics(
            of: """
                cluster: {name: lab}
                nodes:
                  - {name: alpha, id: 0, addresses: [198.51.100.11]}
                  - {name: "be ta", id: 2, addresses: [198.51.100.12]}
                  - {name: gamma, id: 3, addresses: [198.51.100.13, 198.51.100.14, 198.51.100.15]}
                  - {name: delta, id: 4, addresses: [198.51.100.256]}
                """)
        let summary = found.map { "\($0.line):\($0.column) \($0.keyPath)" }
        #expect(summary == ["3:23 nodes[0].id", "4:12 nodes[1].name", "5:37 nodes[2].addresses", "6:38 nodes[3].addresses[0]"])
        #expect(found[2].message == "a node has one or two addresses, found 3")
        #expect(found[3].message == "'198.51.100.256' is not an IPv4 or IPv6 address")
    }

    @Test func linksMustMatchAcrossNodes() {
        let found = diagnostics(
            of: """
                cluster: {name: lab}
                nodes:
                  - {name: alpha, id: 1, addresses: [198.51.100.11, "2001:db8::11"]}
                  - {name: beta, id: 2, addresses: [198.51.100.12]}
                  - {name: gamma, id: 3, addresses: [198.51.100.13, 198.51.100.113]}
                """)
        let summary = found.map { "\($0.line):\($0.column) \($0.keyPath): \($0.message)" }
        #expect(
            summary == [
                "4:36 nodes[1].addresses: node 'beta' has 1 link addresses, node 'alpha' has 2",
                "5:53 nodes[2].addresses[1]: link 1 mixes IPv4 and IPv6 across nodes",
            ])
    }

    @Test func corosyncLimitsOnNamesAndIDs() {
        let found = diagnostics(
            of: """
                cluster: {name: "my cluster"}
                nodes:
                  - {name: alpha, id: 4294967296, addresses: [198.51.100.11]}
                """)
        #expect(found.map(\.keyPath) == ["cluster.name", "nodes[0].id"])
        #expect(found.map(\.message) == ["'my cluster' is not a valid cluster name", "node id 4294967296 is above 2147483647"])
    }

    @Test func badQuorum() {
        let found = diagnostics(
            of: twoNodes + """
                quorum:
                  qdevice: "bad host"
                  algorithm: 2nodelms
                  ping: [198.51.100.1, 300.1.1.1]
                """)
        #expect(found.map(\.keyPath) == ["quorum.qdevice", "quorum.algorithm", "quorum.ping[1]"])
        #expect(found.map(\.line) == [7, 8, 9])
    }

    @Test func emptyCommandAndOCFAgent() {
        let found = diagnostics(
            of: twoNodes + """
                resources:
                  - {id: w, type: process, command: []}
                  - {id: x, type: process, command: "  "}
                  - {id: o, type: ocf, agent: Dummy}
                  - {id: p, type: ping, hosts: []}
                """)
        #expect(found.map(\.message) == [
            "the command is empty", "the command is empty", "'Dummy' is not an OCF agent", "ping needs at least one host",
        ])
        #expect(found.map(\.column) == [37, 37, 31, 32])
    }

    @Test func badIDs() {
        let found = diagnostics(
            of: twoNodes + """
                resources:
                  - {id: 1vm, type: process, command: /bin/true}
                  - {id: "my vm", type: process, command: /bin/true}
                """)
        #expect(found.map(\.keyPath) == ["resources[0].id", "resources[1].id"])
        #expect(found[0].hint == "start with a letter or '_', then letters, digits, '_', '-' or '.'")
    }

    // MARK: Groups

    @Test func groupMembersMustBeSinglePrimitivesInOneGroup() {
        let found = diagnostics(
            of: twoNodes + """
                resources:
                  - {id: disk0, type: volume, size: 1GiB, backing: /dev/sdb}
                  - {id: w, type: process, command: /bin/true}
                  - {id: x, type: process, command: /bin/true}
                groups:
                  - {id: g1, members: [w, disk0, w]}
                  - {id: g2, members: [x, w, g1]}
                  - {id: g3, members: []}
                """)
        let summary = found.map { "\($0.line):\($0.column) \($0.keyPath): \($0.message)" }
        #expect(
            summary == [
                "11:27 groups[0].members[1]: 'disk0' is a clone and cannot be a group member",
                "11:34 groups[0].members[2]: 'w' is listed twice in group 'g1'",
                "12:27 groups[1].members[1]: 'w' is already a member of group 'g1'",
                "12:30 groups[1].members[2]: 'g1' is a group; groups cannot be nested",
                "13:23 groups[2].members: a group needs at least one member",
            ])
    }

    // MARK: Constraints

    @Test func constraintShapes() {
        let found = diagnostics(
            of: twoNodes + """
                resources:
                  - {id: w, type: process, command: /bin/true}
                constraints:
                  - location: {resource: w}
                  - location: {resource: w, node: alpha, rule: "defined x"}
                  - {location: {resource: w, node: alpha}, order: {first: w, then: w}}
                  - placement: {resource: w}
                  - location: {resource: w, rule: "defined x", score: 5, score-attribute: pingd}
                  - order: {first: w, then: w}
                  - order: {first: w, first-action: migrate_to, then: w, then-action: stop}
                """)
        let summary = found.map { "\($0.line):\($0.column) \($0.keyPath): \($0.message)" }
        #expect(
            summary == [
                "9:15 constraints[0].location: a location constraint needs 'node' or 'rule'",
                "10:48 constraints[1].location.rule: a location constraint has either 'node' or 'rule', not both",
                "11:44 constraints[2]: one constraint per list entry, found location and order",
                "12:5 constraints[3].placement: unknown key 'placement'",
                "13:75 constraints[4].location.score-attribute: a rule has either 'score' or 'score-attribute', not both",
                "14:29 constraints[5].order.then: 'w start' cannot be ordered before itself",
                "15:37 constraints[6].order.first-action: 'migrate_to' cannot be ordered",
            ])
        #expect(found[3].hint == "known keys: location, colocation, order")
    }

    // MARK: Rules inside YAML

    @Test func ruleErrorPointsInsideAQuotedString() {
        let diagnostic = expectSingleError(
            twoNodes + """
                resources: [{id: w, type: process, command: /bin/true}]
                constraints:
                  - location:
                      resource: w
                      rule: "defined pingd and pingd == 0"
                """, line: 10, column: 38, path: "constraints[0].location.rule",
            containing: "rule: expected a comparison after 'pingd', found '=='")
        #expect(diagnostic?.hint == "write 'eq'")
    }

    @Test func ruleErrorPointsInsideAPlainString() {
        expectSingleError(
            twoNodes + """
                resources: [{id: w, type: process, command: /bin/true}]
                constraints:
                  - location:
                      resource: w
                      rule: not_defined pingd or (pingd lte 0
                """, line: 10, column: 34, path: "constraints[0].location.rule", containing: "'(' is never closed")
    }

    // MARK: One pass

    @Test func everyErrorOfAFileIsReportedInOnePass() {
        do {
            _ = try ConfigFile.load(path: TestFiles.fixture("many-errors.yaml"))
            Issue.record("expected errors")
        } catch {
            let lines = error.diagnostics.map(\.line)
            #expect(lines == lines.sorted())
            #expect(error.diagnostics.count == 21, "\(error)")
            #expect(error.diagnostics.allSatisfy { $0.file.hasSuffix("Fixtures/many-errors.yaml") })
            #expect(error.description.split(separator: "\n").count == error.diagnostics.count)
        }
    }

    @Test func fixturesFailWithTheirExpectedFirstError() {
        let expectations: [(file: String, first: String)] = [
            ("order-cycle.yaml", "order-cycle.yaml:26:12: error: constraints[0].order: order cycle: vip start -> disk0 promote -> mba7 start -> vip start"),
            ("bad-indentation.yaml", "bad-indentation.yaml:5:4: error: invalid YAML: did not find expected '-' indicator"),
        ]
        for expectation in expectations {
            do {
                _ = try ConfigFile.load(path: TestFiles.fixture(expectation.file))
                Issue.record("\(expectation.file) parsed")
            } catch {
                let first = error.diagnostics.first?.description ?? ""
                #expect(first.hasSuffix(expectation.first) || first.contains(expectation.first), "\(error)")
            }
        }
    }
}
