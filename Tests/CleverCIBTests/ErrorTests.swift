import CleverCIB
import CleverModel
import Testing

@Suite("Bad CIBs give clear errors")
struct ErrorTests {
    private func error(_ xml: String, file: String = "bad.xml") -> CIBError? {
        do {
            _ = try CIBImport.parse(xml, file: file)
            return nil
        } catch {
            return error
        }
    }

    @Test func malformedXMLNamesTheFileAndLine() throws {
        let error = try #require(self.error("<cib>\n  <configuration>\n    <nodes>\n  </configuration>\n</cib>\n"))
        #expect(error.file == "bad.xml")
        #expect(error.line == 4)
        #expect(error.message.contains("not well-formed XML"))
        #expect(error.message.contains("closing tag does not match"))
        #expect(error.description.hasPrefix("bad.xml:4: "))
    }

    @Test func emptyInput() throws {
        let error = try #require(self.error(""))
        #expect(error.message.contains("not well-formed XML"))
    }

    @Test func doubleHyphenInComment() throws {
        let error = try #require(self.error("<cib>\n<!-- crm_resource --ban -->\n</cib>"))
        #expect(error.line == 2)
        #expect(error.message.contains("double hyphen"))
    }

    @Test func wrongRootElement() throws {
        let error = try #require(self.error(#"<cluster name="x"><configuration/></cluster>"#))
        #expect(error.element == "cluster")
        #expect(error.message.contains("expected <cib>"))
    }

    @Test func missingConfiguration() throws {
        let error = try #require(self.error(#"<cib have-quorum="1"><status/></cib>"#))
        #expect(error.message.contains("no <configuration> section"))
    }

    @Test func missingFile() throws {
        do {
            _ = try CIBImport.load(path: "/nonexistent/cib.xml")
            Issue.record("expected an error")
        } catch {
            #expect(error.file == "/nonexistent/cib.xml")
            #expect(error.message.contains("cannot read the file"))
        }
    }

    @Test func constraintOnAnUnknownResource() throws {
        let xml = cib("""
            <resources/>
            <constraints><rsc_location id="l1" rsc="ghost" node="node1" score="10"/></constraints>
            """)
        let error = try #require(self.error(xml))
        #expect(error.element == "configuration/constraints/rsc_location[@id=l1]")
        #expect(error.message.contains("\"ghost\" is not a resource"))
        #expect(error.line != nil)
    }

    @Test func badScore() throws {
        let xml = cib("""
            <resources><primitive id="a" class="ocf" provider="pacemaker" type="Dummy"/></resources>
            <constraints><rsc_location id="l1" rsc="a" node="node1" score="lots"/></constraints>
            """)
        let error = try #require(self.error(xml))
        #expect(error.message.contains("score \"lots\" is not a score"))
    }

    @Test func primitiveWithoutType() throws {
        let error = try #require(self.error(cib(#"<resources><primitive id="a" class="ocf" provider="heartbeat"/></resources>"#)))
        #expect(error.element == "configuration/resources/primitive[@id=a]")
        #expect(error.message.contains("missing required attribute \"type\""))
    }

    @Test func badMetaValues() throws {
        let role = cib("""
            <resources><primitive id="a" class="ocf" provider="pacemaker" type="Dummy">
              <meta_attributes id="a-meta"><nvpair id="a-tr" name="target-role" value="Running"/></meta_attributes>
            </primitive></resources>
            """)
        let roleError = try #require(self.error(role))
        #expect(roleError.element == "configuration/resources/primitive[@id=a]/meta_attributes[@id=a-meta]/nvpair[@name=target-role]")
        #expect(roleError.message.contains("target-role \"Running\""))

        let threshold = cib("""
            <resources/>
            <rsc_defaults><meta_attributes id="d"><nvpair id="d1" name="migration-threshold" value="-3"/></meta_attributes></rsc_defaults>
            """)
        #expect(self.error(threshold)?.message.contains("migration-threshold") == true)
    }

    @Test func badStatusValues() throws {
        let xml = cib(
            #"<resources><primitive id="a" class="ocf" provider="pacemaker" type="Dummy"/></resources>"#,
            status: """
                <node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member">
                  <lrm id="1"><lrm_resources><lrm_resource id="a" class="ocf" provider="pacemaker" type="Dummy">
                    <lrm_rsc_op id="a_last_0" operation="start" call-id="3" rc-code="zero" interval="0"/>
                  </lrm_resource></lrm_resources></lrm>
                </node_state>
                """)
        let error = try #require(self.error(xml))
        #expect(error.message.contains("rc-code \"zero\""))
        #expect(error.element?.hasPrefix("status/node_state[@id=1]/lrm/lrm_resources/lrm_resource[@id=a]") == true)
    }

    @Test func badExecutionDate() throws {
        let error = try #require(self.error(cib("<resources/>", rootAttributes: #"execution-date="yesterday""#)))
        #expect(error.message.contains("execution-date"))
    }
}

@Suite("Hostile CIBs do not crash the import")
struct HostileInputTests {
    @Test func deeplyNestedRules() {
        let depth = 5000
        let open = (0..<depth).map { #"<rule id="r\#($0)" boolean-op="and" score="1">"# }.joined()
        let close = String(repeating: "</rule>", count: depth)
        let xml = cib("""
            <resources><primitive id="a" class="ocf" provider="pacemaker" type="Dummy"/></resources>
            <constraints><rsc_location id="l" rsc="a">\(open)\(close)</rsc_location></constraints>
            """)
        #expect {
            try CIBImport.parse(xml, file: "deep.xml")
        } throws: { error in
            (error as? CIBError)?.message.contains("nested deeper than 100 levels") == true
        }
    }

    @Test func nonFiniteTimes() throws {
        for value in ["nan", "inf", "-inf"] {
            let xml = cib("<resources/>", rootAttributes: #"have-quorum="1" execution-date="\#(value)""#)
            #expect(throws: CIBError.self) { try CIBImport.parse(xml, file: "time.xml") }
        }
    }

    @Test func billionLaughsIsRefused() {
        let xml = """
            <?xml version="1.0"?>
            <!DOCTYPE cib [
              <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
              <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
              <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
              <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
              <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
              <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
              <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
            ]>
            <cib epoch="&g;"><configuration/></cib>
            """
        _ = try? CIBImport.parse(xml, file: "laughs.xml")
    }
}
