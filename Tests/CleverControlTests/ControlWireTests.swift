import CleverCluster
import CleverControl
import CleverModel
import CleverTesting
import Foundation
import Testing

enum ControlSamples {
    static let at = Timestamp(seconds: 1_800_000_123.5)

    static var requests: [(name: String, request: ControlRequest)] {
        [
            ("status", .status),
            ("intent", .intent(.migrate(node: .thisHost, to: "beta", expires: Self.at))),
            ("applyConfig", .applyConfig(Fixtures.twoHost())),
            ("showConfig", .showConfig),
            ("events", .events(limit: 50)),
            ("snapshot", .snapshot),
            ("direct", .direct(action: .stop, resource: "mba7")),
            ("resolveVolume", .resolveVolume(volume: "disk0", discard: "beta", dryRun: true)),
        ]
    }

    static var responses: [(name: String, response: ControlResponse)] {
        let config = Fixtures.twoHost()
        var ledger = ClusterLedger(localNode: "alpha", document: ClusterDocument(config: config, origin: 1))
        _ = ledger.onQuorum(true)
        _ = ledger.onView(memberIDs: [1, 2], now: Self.at)
        for member in ["alpha", "beta"] { _ = ledger.onDeliver(Envelope(from: member, message: .sync(ledger.document)), now: Self.at) }
        return [
            ("status", .status(StatusReport(ledger: ledger, pendingActions: [], now: Self.at))),
            ("done", .done("standby beta: applied cluster-wide")),
            ("config", .config(config)),
            ("events", .events([EventRecord(at: Self.at, node: "alpha", text: "this partition has quorum")])),
            ("snapshot", .snapshot(config: config, state: Fixtures.healthyState(of: config), now: Self.at)),
            ("failure", .failure("refused: this partition has no quorum")),
        ]
    }

    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    static func check(_ bytes: [UInt8], file name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (stored, actual) = try GoldenFile.stored(bytes, name: name, in: Self.golden)
        #expect(actual == stored, "\(name) changed: a rename altered the control protocol", sourceLocation: sourceLocation)
    }
}

@Suite struct ControlWireTests {
    @Test func everyKindHasAGoldenSample() {
        #expect(Set(ControlSamples.requests.map(\.request.kind)) == Set(ControlRequest.Kind.allCases))
        #expect(Set(ControlSamples.responses.map(\.response.kind)) == Set(ControlResponse.Kind.allCases))
    }

    @Test func requestsMatchTheirGoldenBytesAndDecodeBack() throws {
        for (name, request) in ControlSamples.requests {
            let bytes = ControlWire.encode(request)
            try ControlSamples.check(bytes, file: "request-\(name).json")
            #expect(try ControlWire.decodeRequest(bytes) == request)
        }
    }

    @Test func responsesMatchTheirGoldenBytesAndDecodeBack() throws {
        for (name, response) in ControlSamples.responses {
            let bytes = ControlWire.encode(response)
            try ControlSamples.check(bytes, file: "response-\(name).json")
            #expect(try ControlWire.decodeResponse(bytes) == response)
        }
    }

    /// Before "this host" had a type of its own the CLI sent it as an empty node name; that line still means it.
    @Test func anEmptyNodeNameFromAnOlderCLIMeansThisHost() throws {
        let stored = try #require(FileManager.default.contents(atPath: ControlSamples.golden.appendingPathComponent("request-intent-empty-node.json").path))
        #expect(try ControlWire.decodeRequest(Array(stored.dropLast()))
                == .intent(.migrate(node: .thisHost, to: "beta", expires: ControlSamples.at)))
        let unmigrate = #"{"intent":{"kind":"unmigrate","node":""},"kind":"intent","v":1}"#
        #expect(try ControlWire.decodeRequest(Array(unmigrate.utf8)) == .intent(.unmigrate(node: .thisHost)))
        let everyNode = #"{"intent":{"kind":"unmigrate"},"kind":"intent","v":1}"#
        #expect(try ControlWire.decodeRequest(Array(everyNode.utf8)) == .intent(.unmigrate(node: nil)))
    }

    @Test func anotherVersionIsRefusedWithAClearError() {
        #expect(throws: ControlWire.Refusal.unsupportedVersion(2)) { try ControlWire.decodeRequest(Array(#"{"v":2,"kind":"status"}"#.utf8)) }
        #expect(ControlWire.Refusal.unsupportedVersion(2).description
                == "control protocol version 2 is not supported (this side speaks 1); use the clevervm of the agent's release")
        // The first release's unversioned shape.
        #expect(throws: ControlWire.Refusal.noVersion) { try ControlWire.decodeRequest(Array(#"{"status":{}}"#.utf8)) }
        #expect(throws: ControlWire.Refusal.notJSON) { try ControlWire.decodeResponse(Array("hello".utf8)) }
        #expect(throws: ControlWire.Refusal.self) { try ControlWire.decodeRequest(Array(#"{"v":1,"kind":"reboot"}"#.utf8)) }
    }
}
