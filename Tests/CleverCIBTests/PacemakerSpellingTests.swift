import CleverCIB
import CleverModel
import Testing

/// Spellings Pacemaker accepts and older CIBs use (cts/scheduler simple6, novell-239082, novell-239087).
@Suite struct PacemakerSpellingTests {
    @Test func decimalPriorityAndDefaultTargetRole() throws {
        let xml = cib("""
            <resources>
              <primitive id="a" class="ocf" provider="pacemaker" type="Dummy">
                <meta_attributes id="a-meta">
                  <nvpair id="a-priority" name="priority" value="2.0"/>
                  <nvpair id="a-role" name="target-role" value="#default"/>
                </meta_attributes>
              </primitive>
              <primitive id="fence" class="stonith" type="fence_ipmilan"/>
            </resources>
            """)
        let result = try CIBImport.parse(xml, file: "x.xml")
        let a = try #require(result.config.resource(named: "a"))
        #expect(a.meta.priority == 2)
        #expect(a.meta.targetRole == nil)
        #expect(result.config.resource(named: "fence") != nil, "a fence device is placed like any primitive")
    }

    @Test func aPriorityThatIsNoNumberIsStillAnError() {
        let xml = cib("""
            <resources>
              <primitive id="a" class="ocf" provider="pacemaker" type="Dummy">
                <meta_attributes id="a-meta"><nvpair id="a-priority" name="priority" value="high"/></meta_attributes>
              </primitive>
            </resources>
            """)
        #expect(throws: CIBError.self) { try CIBImport.parse(xml, file: "x.xml") }
    }
}

@Suite struct NodeIDRuleTests {
    @Test func ruleOnNodeIDNamesThatNode() throws {
        let xml = cib("""
            <resources><primitive id="a" class="ocf" provider="pacemaker" type="Dummy"/></resources>
            <constraints>
              <rsc_location id="a-on-2" rsc="a">
                <rule id="r" score="100"><expression id="e" attribute="#id" operation="eq" value="2"/></rule>
              </rsc_location>
            </constraints>
            """)
        let result = try CIBImport.parse(xml, file: "x.xml")
        #expect(result.unsupported.isEmpty)
        guard case .location(let location) = try #require(result.config.constraints.first),
            case .rule(let rule) = location.placement
        else { Issue.record("no location rule"); return }
        #expect(rule.expression == .compare(attribute: "#uname", op: .eq, value: "node2", type: .string))
    }
}

@Suite struct LocationRuleRoleTests {
    /// Pacemaker 2.1.5 (unpack_rsc_location) takes a rule-based location's role from each rule only: a role on
    /// the rsc_location element itself is not applied to its rules, so the location weighs on every role.
    @Test func aConstraintRoleDoesNotReachItsRules() throws {
        let xml = cib("""
            <resources><primitive id="a" class="ocf" provider="pacemaker" type="Dummy"/></resources>
            <constraints>
              <rsc_location id="outer" rsc="a" role="Promoted">
                <rule id="r1" score="-INFINITY"><expression id="e1" attribute="rack" operation="defined"/></rule>
              </rsc_location>
              <rsc_location id="inner" rsc="a">
                <rule id="r2" score="10" role="Promoted"><expression id="e2" attribute="rack" operation="defined"/></rule>
              </rsc_location>
            </constraints>
            """)
        let result = try CIBImport.parse(xml, file: "x.xml")
        #expect(result.unsupported.isEmpty)
        let roles = result.config.constraints.compactMap { constraint -> ConstraintRole?? in
            guard case .location(let location) = constraint else { return nil }
            return .some(location.role)
        }
        #expect(roles == [nil, .promoted])
    }
}
