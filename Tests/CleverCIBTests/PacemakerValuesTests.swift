import CleverCIB
import CleverModel
import Testing

@Suite("Pacemaker spellings")
struct PacemakerValuesTests {
    private func resource(meta: [String: String], params: [String: String] = [:], ops: String = "", agent: String = #"class="ocf" provider="pacemaker" type="Dummy""#) throws -> (ResourceConfig?, [UnsupportedElement]) {
        let metaPairs = meta.sorted { $0.key < $1.key }.map { #"<nvpair id="m-\#($0.key)" name="\#($0.key)" value="\#($0.value)"/>"# }.joined()
        let paramPairs = params.sorted { $0.key < $1.key }.map { #"<nvpair id="p-\#($0.key)" name="\#($0.key)" value="\#($0.value)"/>"# }.joined()
        let xml = cib("""
            <resources><primitive id="r" \(agent)>
              <instance_attributes id="r-params">\(paramPairs)</instance_attributes>
              <meta_attributes id="r-meta">\(metaPairs)</meta_attributes>
              <operations>\(ops)</operations>
            </primitive></resources>
            """)
        let result = try CIBImport.parse(xml, file: "values.xml")
        return (result.config.resource(named: "r"), result.unsupported)
    }

    @Test func metaAttributes() throws {
        let (resource, unsupported) = try self.resource(meta: [
            "resource-stickiness": "+INFINITY", "migration-threshold": "0", "failure-timeout": "90", "target-role": "master",
            "allow-migrate": "yes", "priority": "7",
        ])
        #expect(unsupported.isEmpty)
        #expect(resource?.meta == ResourceMeta(
            stickiness: .infinity, migrationThreshold: Score.infinityValue, failureTimeout: Seconds(90), targetRole: .promoted,
            allowMigrate: true, priority: 7))
    }

    @Test(arguments: [
        ("Stopped", ResourceMeta.TargetRole.stopped), ("Started", .started), ("Slave", .unpromoted),
        ("Unpromoted", .unpromoted), ("Master", .promoted), ("Promoted", .promoted),
    ])
    func targetRoleSpellings(text: String, role: ResourceMeta.TargetRole) throws {
        #expect(try self.resource(meta: ["target-role": text]).0?.meta.targetRole == role)
    }

    @Test(arguments: [("10s", 10.0), ("10", 10), ("2min", 120), ("1m", 60), ("500ms", 0.5), ("1h", 3600), ("PT1M30S", 90), ("15sec", 15)])
    func durations(text: String, seconds: Double) throws {
        let (resource, _) = try self.resource(meta: ["failure-timeout": text])
        #expect(resource?.meta.failureTimeout == Seconds(seconds))
    }

    @Test func failureTimeoutZeroMeansNever() throws {
        let (resource, _) = try self.resource(meta: ["failure-timeout": "0"])
        #expect((resource?.meta.failureTimeout?.value ?? 0) > 1e9)
    }

    @Test func ipAndPingAgents() throws {
        let (ip, ipUnsupported) = try self.resource(
            meta: [:], params: ["ip": "198.51.100.9", "cidr_netmask": "24", "arp_count": "5"],
            agent: #"class="ocf" provider="heartbeat" type="IPaddr2""#)
        #expect(ip?.kind == .ip(IPSpec(address: "198.51.100.9", prefixLength: 24)))
        #expect(ipUnsupported.map(\.elementPath) == ["configuration/resources/primitive[@id=r]/instance_attributes/nvpair[@name=arp_count]"])
        let (ping, _) = try self.resource(
            meta: [:], params: ["host_list": "192.0.2.1,192.0.2.2", "name": "connected", "dampen": "10s"],
            agent: #"class="ocf" provider="pacemaker" type="ping""#)
        #expect(ping?.kind == .ping(PingSpec(hosts: ["192.0.2.1", "192.0.2.2"], multiplier: 1, dampen: Seconds(10), attribute: "connected")))
        #expect(ping?.cloning == .single, "a ping primitive outside a clone runs once, as in Pacemaker")
        let (bare, bareUnsupported) = try self.resource(meta: [:], agent: #"class="ocf" provider="heartbeat" type="IPaddr2""#)
        #expect(bare?.kind == .ocf(OCFSpec(provider: "heartbeat", type: "IPaddr2")))
        #expect(bareUnsupported.count == 1)
    }

    @Test func cloneSettings() throws {
        let xml = cib("""
            <resources>
              <clone id="c">
                <meta_attributes id="c-meta">
                  <nvpair id="c1" name="clone-max" value="3"/><nvpair id="c2" name="promotable" value="true"/>
                  <nvpair id="c3" name="promoted-max" value="2"/><nvpair id="c4" name="resource-stickiness" value="5"/>
                  <nvpair id="c5" name="target-role" value="Stopped"/>
                </meta_attributes>
                <primitive id="p" class="ocf" provider="pacemaker" type="Stateful">
                  <meta_attributes id="p-meta"><nvpair id="p1" name="resource-stickiness" value="9"/><nvpair id="p2" name="target-role" value="Started"/></meta_attributes>
                </primitive>
              </clone>
              <clone id="plain"><primitive id="q" class="ocf" provider="pacemaker" type="Dummy"/></clone>
            </resources>
            <constraints><rsc_location id="l" rsc="p" node="node1" score="5"/></constraints>
            """)
        let result = try CIBImport.parse(xml, file: "clones.xml")
        #expect(result.unsupported.isEmpty)
        let c = try #require(result.config.resource(named: "c"))
        #expect(c.cloning == .promotable(max: 3, promotedMax: 2))
        #expect(c.meta.stickiness == 9, "the primitive's own value wins over the clone's")
        #expect(c.meta.targetRole == .stopped, "a stopped clone stops its instances")
        #expect(result.config.resource(named: "plain")?.cloning == .clone(max: nil))
        #expect(result.config.resource(named: "plain")?.meta.stickiness == 1)
        #expect(result.config.constraints.first == .location(LocationConstraint(id: "l", resource: "c", placement: .node("node1", 5))),
                "a constraint naming the primitive inside a clone applies to the clone")
    }

    @Test func multipleRulesBecomeOneConstraintEach() throws {
        let xml = cib("""
            <resources><primitive id="a" class="ocf" provider="pacemaker" type="Dummy"/></resources>
            <constraints>
              <rsc_location id="l" rsc="a">
                <rule id="r1" score="10"><expression id="e1" attribute="x" operation="lt" value="3"/></rule>
                <rule id="r2" score="-5" role="Slave"><expression id="e2" attribute="y" operation="eq" value="1"/></rule>
              </rsc_location>
            </constraints>
            """)
        let constraints = try CIBImport.parse(xml, file: "rules.xml").config.constraints
        #expect(constraints == [
            .location(LocationConstraint(id: "l", resource: "a", placement: .rule(Rule(score: 10, expression: .compare(attribute: "x", op: .lt, value: "3", type: .number))))),
            .location(LocationConstraint(id: "l#r2", resource: "a", placement: .rule(Rule(score: -5, expression: .compare(attribute: "y", op: .eq, value: "1", type: .string))), role: .unpromoted)),
        ])
    }

    @Test func cliPreferWithLifetimeIsAnExpiringMark() throws {
        let xml = cib("""
            <resources><primitive id="a" class="ocf" provider="pacemaker" type="Dummy"/></resources>
            <constraints>
              <rsc_location id="cli-prefer-a" rsc="a">
                <rule id="cli-prefer-rule-a" score="INFINITY" boolean-op="and">
                  <expression id="x" attribute="#uname" operation="eq" value="node2" type="string"/>
                  <date_expression id="d" operation="lt" end="2026-11-24T21:00:00+01:00"/> <!-- 20:00 UTC -->
                </rule>
              </rsc_location>
            </constraints>
            """)
        let result = try CIBImport.parse(xml, file: "mark.xml")
        #expect(result.unsupported.isEmpty)
        #expect(result.state.marks == [PlacementMark(
            kind: .prefer, resource: "a", node: "node2", expires: Timestamp(seconds: 1_795_550_400), createdBy: "crm_resource (cli-prefer-a)")])
    }
}
