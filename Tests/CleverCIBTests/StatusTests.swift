import CleverCIB
import CleverModel
import Testing

@Suite("Status section to ClusterState")
struct StatusTests {
    private static let resources = """
        <resources>
          <primitive id="a" class="ocf" provider="pacemaker" type="Dummy"/>
          <master id="ms">
            <meta_attributes id="ms-meta"><nvpair id="ms-mm" name="master-max" value="1"/></meta_attributes>
            <primitive id="disk" class="ocf" provider="linbit" type="drbd"/>
          </master>
        </resources>
        """

    private func op(_ rsc: String, _ operation: String, call: Int, rc: Int, interval: Int = 0, expected: Int? = nil, status: Int = 0) -> String {
        let key = expected.map { #" transition-key="1:2:\#($0):uuid""# } ?? ""
        return #"<lrm_rsc_op id="\#(rsc)_\#(operation)_\#(call)" operation="\#(operation)" call-id="\#(call)" rc-code="\#(rc)" op-status="\#(status)" interval="\#(interval)" last-rc-change="\#(1000 + call)"\#(key)/>"#
    }

    private func node(_ name: String, id: Int, attributes: [String: String] = [:], history: [String: [String]] = [:], extra: String = #"in_ccm="true" crmd="online" join="member""#) -> String {
        let pairs = attributes.sorted { $0.key < $1.key }.map { #"<nvpair id="s-\#($0.key)" name="\#($0.key)" value="\#($0.value)"/>"# }.joined()
        let transient = attributes.isEmpty ? "" : #"<transient_attributes id="\#(id)"><instance_attributes id="st-\#(id)">\#(pairs)</instance_attributes></transient_attributes>"#
        let lrm = history.sorted { $0.key < $1.key }.map { rsc, ops in
            #"<lrm_resource id="\#(rsc)" class="ocf" provider="pacemaker" type="Dummy">\#(ops.joined())</lrm_resource>"#
        }.joined()
        return #"<node_state id="\#(id)" uname="\#(name)" \#(extra)>\#(transient)<lrm id="\#(id)"><lrm_resources>\#(lrm)</lrm_resources></lrm></node_state>"#
    }

    private func load(_ status: String, rootAttributes: String = #"have-quorum="1""#) throws -> CIBImportResult {
        try CIBImport.parse(cib(Self.resources, status: status, rootAttributes: rootAttributes), file: "status.xml")
    }

    @Test func cloneInstancesMapToTheClone() throws {
        let result = try self.load(
            self.node("node1", id: 1, history: ["disk:0": [self.op("disk", "start", call: 2, rc: 0), self.op("disk", "promote", call: 3, rc: 0)]])
                + self.node("node2", id: 2, history: ["disk:1": [self.op("disk", "start", call: 2, rc: 0)]]))
        #expect(result.unsupported.isEmpty)
        #expect(result.state.resources.keys.sorted() == ["ms"])
        #expect(result.state.state(of: "ms", on: "node1").role == .promoted)
        #expect(result.state.state(of: "ms", on: "node2").role == .unpromoted)
        #expect(result.state.activeNodes(of: "ms") == ["node1", "node2"])
    }

    @Test func probesReportWhatTheyFound() throws {
        let result = try self.load(
            self.node("node1", id: 1, history: ["a": [self.op("a", "monitor", call: 1, rc: 0)], "disk": [self.op("disk", "monitor", call: 1, rc: 8)]])
                + self.node("node2", id: 2, history: ["a": [self.op("a", "monitor", call: 1, rc: 7)], "disk": [self.op("disk", "monitor", call: 1, rc: 7)]]))
        #expect(result.state.state(of: "a", on: "node1").role == .started)
        #expect(result.state.state(of: "ms", on: "node1").role == .promoted)
        #expect(result.state.state(of: "a", on: "node2").role == .stopped)
        #expect(result.state.state(of: "ms", on: "node2").role == .stopped)
    }

    @Test func failuresLeaveTheResourceFailedUntilAStopOrStart() throws {
        let failedMonitor = [self.op("a", "start", call: 2, rc: 0), self.op("a", "monitor", call: 3, rc: 7, interval: 10000, expected: 0)]
        let failedStop = [self.op("a", "start", call: 2, rc: 0), self.op("a", "stop", call: 4, rc: 1)]
        let result = try self.load(
            self.node("node1", id: 1, history: ["a": failedMonitor])
                + self.node("node2", id: 2, history: ["a": failedStop]))
        #expect(result.state.state(of: "a", on: "node1").role == .failed)
        #expect(result.state.state(of: "a", on: "node2").role == .failed)

        let recovered = try self.load(self.node("node1", id: 1, history: ["a": failedMonitor + [self.op("a", "stop", call: 5, rc: 0)]]))
        #expect(recovered.state.state(of: "a", on: "node1").role == .stopped)
        let timedOut = try self.load(self.node("node1", id: 1, history: ["a": [self.op("a", "start", call: 2, rc: 0, status: 2)]]))
        #expect(timedOut.state.state(of: "a", on: "node1").role == .failed)
    }

    @Test func pendingStartCountsAsActive() throws {
        let result = try self.load(
            self.node("node1", id: 1, history: ["a": [self.op("a", "monitor", call: 1, rc: 7), self.op("a", "start", call: -1, rc: 193, status: -1)]])
                + self.node("node2", id: 2, history: ["disk": [self.op("disk", "start", call: 2, rc: 0), self.op("disk", "promote", call: -1, rc: 193, status: -1)]]))
        #expect(result.state.state(of: "a", on: "node1").role == .started)
        #expect(result.state.state(of: "ms", on: "node2").role == .promoted)
    }

    @Test func operationsAreReplayedInCallOrderNotDocumentOrder() throws {
        let result = try self.load(self.node("node1", id: 1, history: ["a": [
            self.op("a", "stop", call: 9, rc: 0), self.op("a", "start", call: 2, rc: 0),
        ]]))
        let state = result.state.state(of: "a", on: "node1")
        #expect(state.role == .stopped)
        #expect(state.lastOperations.map(\.action) == [.start, .stop])
        #expect(state.lastOperations.first?.at == Timestamp(seconds: 1002))
    }

    @Test func failCountsFromAttributes() throws {
        let result = try self.load(self.node("node1", id: 1, attributes: [
            "fail-count-a#monitor_10000": "2", "fail-count-a#start_0": "INFINITY", "last-failure-a#monitor_10000": "1500",
            "last-failure-a#start_0": "1700", "fail-count-disk:1#promote_0": "1", "fail-count-a": "1",
        ]))
        let a = result.state.state(of: "a", on: "node1")
        #expect(a.failCount == Score.infinityValue)
        #expect(a.lastFailure == Timestamp(seconds: 1700))
        #expect(result.state.state(of: "ms", on: "node1").failCount == 1)
        #expect(result.state.nodes["node1"]?.attributes["fail-count-a#monitor_10000"] == "2")
    }

    @Test func promotionScoresAreAlsoStoredUnderTheClonesID() throws {
        let result = try self.load(
            self.node("node1", id: 1, attributes: ["master-disk": "10", "master-a": "3"])
                + self.node("node2", id: 2, attributes: ["master-disk:1": "20"]))
        #expect(result.state.nodes["node1"]?.attributes == ["master-disk": "10", "master-ms": "10", "master-a": "3"])
        #expect(result.state.nodes["node2"]?.attributes == ["master-disk:1": "20", "master-ms": "20"])
    }

    @Test func nodeMembershipStandbyAndAttributes() throws {
        let result = try self.load(
            self.node("node1", id: 1, attributes: ["standby": "on", "pingd": "1000"])
                + self.node("node2", id: 2, extra: #"in_ccm="true" crmd="offline" join="down""#)
                + self.node("node3", id: 3, extra: #"in_ccm="1732000000" crmd="1732000000" join="member""#))
        #expect(result.state.nodes["node1"] == NodeState(status: .online, standby: true, attributes: ["standby": "on", "pingd": "1000"]))
        #expect(result.state.nodes["node2"]?.status == .offline)
        #expect(result.state.nodes["node3"]?.status == .online, "Pacemaker 2.1.7+ writes timestamps")
        #expect(result.unsupported.map(\.elementPath) == ["status/node_state[@id=3]"], "node3 is not configured")
    }

    @Test func configuredNodeWithoutStatusIsOffline() throws {
        let result = try self.load(self.node("node1", id: 1))
        #expect(result.state.nodes["node2"]?.status == .offline)
    }

    @Test func quorumAndNow() throws {
        let withoutQuorum = try self.load("", rootAttributes: #"have-quorum="0" cib-last-written="Tue Nov 24 20:36:44 2026""#)
        #expect(!withoutQuorum.state.hasQuorum)
        #expect(withoutQuorum.now == Timestamp(seconds: 1_795_552_604))
        let missing = try self.load("", rootAttributes: "")
        #expect(!missing.state.hasQuorum, "Pacemaker treats a CIB without have-quorum as not quorate")
        #expect(missing.now == nil)
        let executionDate = try self.load("", rootAttributes: #"have-quorum="true" execution-date="1790000000" cib-last-written="Tue Nov 24 20:36:44 2026""#)
        #expect(executionDate.state.hasQuorum)
        #expect(executionDate.now == Timestamp(seconds: 1_790_000_000))
    }

    @Test func noStatusSection() throws {
        let result = try CIBImport.parse(
            #"<cib have-quorum="1"><configuration><nodes><node id="1" uname="n1"><instance_attributes id="i"><nvpair id="p" name="rack" value="2"/></instance_attributes></node></nodes></configuration></cib>"#,
            file: "nostatus.xml")
        #expect(result.state.nodes["n1"] == NodeState(status: .offline, attributes: ["rack": "2"]))
        #expect(result.config.nodes == [NodeConfig(name: "n1", id: 1, addresses: [], attributes: ["rack": "2"])])
    }
}
