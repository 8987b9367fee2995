import CleverAgentCore
import CleverCluster
import CleverModel
import CleverTesting
import Foundation
import Testing

/// One sample of every message kind (and every intent kind), as checked in under Golden/.
enum WireSamples {
    static let request = RequestID(node: "beta", serial: 7)
    static let at = Timestamp(seconds: 1_800_000_123.5)

    static var messages: [(name: String, message: ClusterMessage)] {
        let config = Fixtures.twoHost()
        let action = ActionRequest(id: RequestID(node: "alpha", serial: 3), resource: "mba7", node: "beta", action: .migrateTo,
                                   migrationTarget: "beta", timeout: Seconds(120), reason: "alpha marked unfit")
        var promote = ActionRequest(id: RequestID(node: "alpha", serial: 4), resource: "disk0", node: "beta", action: .promote,
                                    timeout: Seconds(20), reason: "promotion score")
        promote.peerFenced = false
        promote.allowTwoPrimaries = true
        return [
            ("sync", .sync(ClusterDocument(config: config, marks: [PlacementMark(kind: .ban, resource: nil, node: "alpha", expires: nil, createdBy: "migrate")],
                                           targetRoles: ["vip": .stopped], standby: ["beta"], generation: 12, origin: 1))),
            ("applyConfig", .applyConfig(config, request: Self.request)),
            ("intent", .intent(.migrate(node: "alpha", to: "beta", expires: Self.at), request: Self.request)),
            ("attribute", .attribute(name: "pingd", value: "1000")),
            ("attribute-removed", .attribute(name: "pingd", value: nil)),
            ("resourceReport", .resourceReport(["mba7": ResourceNodeState(role: .started), "disk0": ResourceNodeState(role: .promoted)])),
            ("operationResult", .operationResult(OperationResult(
                request: RequestID(node: "alpha", serial: 3), resource: "mba7", node: "alpha", action: .migrateTo, exitCode: 0,
                migrationTarget: "beta", at: Self.at, output: #"{"mode":"live","downtimeMs":24}"#))),
            ("actionRequest", .actionRequest(action)),
            ("actionRequest-promote", .actionRequest(promote)),
            ("prepareMigration", .prepareMigration(action)),
            ("migrationPrepared", .migrationPrepared(request: RequestID(node: "alpha", serial: 9), exitCode: 0, output: "tcp:198.51.100.12:49152")),
            ("fenced", .fenced(node: "alpha")),
            ("resolveVolume", .resolveVolume(VolumeResolveRequest(id: RequestID(node: "gamma", serial: 2), volume: "disk0", discard: "beta",
                                                                  dryRun: false))),
            ("volumeResolved", .volumeResolved(request: RequestID(node: "gamma", serial: 2), succeeded: true,
                                               text: "volume disk0: resolving; resync finished")),
        ]
    }

    static var intents: [(name: String, intent: OperatorIntent)] {
        [
            ("migrate", .migrate(node: "alpha", to: nil, expires: nil)),
            ("unmigrate", .unmigrate(node: nil)),
            ("forceStart", .forceStart(resource: "mba7")),
            ("forceStop", .forceStop(resource: "mba7")),
            ("cleanup", .cleanup(resource: "mba7", node: "beta")),
            ("standby", .standby(node: "beta")),
            ("unstandby", .unstandby(node: "beta")),
            ("outdateDisk", .outdateDisk(volume: "disk0", node: "beta")),
            ("clearOutdated", .clearOutdated(volume: "disk0", node: "beta")),
        ]
    }

    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    /// Compares `bytes` with the checked-in file (`CLEVERVM_WRITE_GOLDEN=1` rewrites it).
    static func check(_ bytes: [UInt8], file name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (stored, actual) = try GoldenFile.stored(bytes, name: name, in: Self.golden)
        #expect(actual == stored, "\(name) changed: a rename altered what goes between hosts", sourceLocation: sourceLocation)
    }
}

@Suite struct GroupWireFormatTests {
    @Test func everyMessageKindHasAGoldenSample() {
        let sampled = Set(WireSamples.messages.map(\.message.kind))
        #expect(sampled == Set(ClusterMessage.Kind.allCases))
        #expect(Set(WireSamples.intents.map(\.intent.kind)) == Set(OperatorIntent.Kind.allCases))
    }

    @Test(arguments: WireVersion.supported)
    func messagesMatchTheirGoldenBytesAndDecodeBack(version: Int) throws {
        for (name, message) in WireSamples.messages {
            let envelope = Envelope(from: "alpha", message: message, version: version)
            try WireSamples.check(envelope.encoded(), file: "v\(version)-\(name).json")
            #expect(try Envelope.decode(envelope.encoded()) == envelope)
        }
    }

    @Test(arguments: WireVersion.supported)
    func intentsMatchTheirGoldenBytes(version: Int) throws {
        for (name, intent) in WireSamples.intents {
            let envelope = Envelope(from: "beta", message: .intent(intent, request: WireSamples.request), version: version)
            try WireSamples.check(envelope.encoded(), file: "v\(version)-intent-\(name).json")
            #expect(try Envelope.decode(envelope.encoded()) == envelope)
        }
    }

    /// Version 1 is what the first release wrote with synthesized Codable: the mirror types below have its shapes.
    @Test func versionOneIsTheFirstReleasesShape() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.userInfo[.clusterWireVersion] = WireVersion.legacy
        // Kinds added after the first release have no first-release shape.
        for (name, message) in WireSamples.messages where ![.resolveVolume, .volumeResolved].contains(message.kind) {
            let ours = try encoder.encode(message)
            let theirs = try encoder.encode(FirstReleaseMessage(message))
            #expect(String(decoding: ours, as: UTF8.self) == String(decoding: theirs, as: UTF8.self), "\(name)")
        }
        // The first release's envelope has no `max`: it counts as version 1.
        let old = try JSONEncoder().encode(FirstReleaseEnvelope(v: 1, from: "beta", message: FirstReleaseMessage(.fenced(node: "alpha"))))
        let decoded = try Envelope.decode(Array(old))
        #expect(decoded.v == 1 && decoded.maxVersion == 1 && decoded.message == .fenced(node: "alpha"))
    }

    @Test func anUnknownVersionIsRefusedByName() {
        #expect(throws: Envelope.DecodeError.unsupportedVersion(7, from: "beta")) {
            try Envelope.decode(Array(#"{"v": 7, "from": "beta"}"#.utf8))
        }
        #expect(Envelope.DecodeError.unsupportedVersion(7, from: "beta").description
                == "message version 7 from beta is not supported (this agent speaks 1 to 2)")
        #expect(throws: Envelope.DecodeError.noVersion) { try Envelope.decode(Array(#"{"from": "beta"}"#.utf8)) }
    }

    @Test func anUnknownKindIsRefusedByName() throws {
        let error = #expect(throws: Envelope.DecodeError.self) {
            try Envelope.decode(Array(#"{"v": 2, "from": "beta", "message": {"kind": "nope"}}"#.utf8))
        }
        guard case .malformed(let from, _) = try #require(error) else {
            Issue.record("not a malformed-message error: \(String(describing: error))")
            return
        }
        #expect(from == "beta")
    }
}

@Suite struct RollingUpgradeTests {
    @Test func aNewerAgentSpeaksTheOlderVersionUntilEveryMemberAnnouncesTheNewer() {
        var alpha = CoreDriver("alpha")
        alpha.quorum(true, ring: [1, 2])
        alpha.view([1, 2])
        #expect(alpha.core.wireVersion == WireVersion.legacy, "nobody announced anything in this view yet")
        // beta runs the first release: its envelopes are version 1 without `max`.
        let old = Envelope(from: "beta", message: .attribute(name: "pingd", value: "1000"), version: 1, maxVersion: 1)
        alpha.record(alpha.core.onDelivery(old.encoded(), fromNodeID: 2, now: alpha.now))
        alpha.deliver(.sync(alpha.core.ledger.document), from: "alpha")
        #expect(alpha.core.memberWireVersions == ["alpha": 2, "beta": 1])
        #expect(alpha.core.wireVersion == 1)
        #expect(alpha.core.envelope(.fenced(node: "x")).v == 1)
        // beta is upgraded: it rejoins and announces version 2; from then on alpha writes version 2.
        alpha.view([1])
        alpha.view([1, 2])
        #expect(alpha.core.wireVersion == 1, "the upgraded beta has not spoken in this view yet")
        alpha.deliver(.sync(alpha.core.ledger.document), from: "beta")
        alpha.deliver(.sync(alpha.core.ledger.document), from: "alpha")
        #expect(alpha.core.wireVersion == 2)
    }

    @Test func aMixedClusterWorksAndSwitchesOnceUpgraded() {
        let cluster = InMemoryCluster(config: Fixtures.twoHost(), now: Fixtures.epoch, wireVersions: ["beta": 1])
        cluster.start()
        cluster.settle()
        #expect(cluster.running("mba7") == ["alpha"])
        #expect(cluster.sentVersions.allSatisfy { $0.version == 1 })
        let before = cluster.sentVersions.count
        cluster.killAgent("beta")
        cluster.settle(for: Seconds(5))
        cluster.restartAgent("beta", highestWireVersion: 2)
        cluster.settle()
        #expect(cluster.sentVersions.dropFirst(before).contains { $0.version == 1 }, "the rejoin speaks 1 until both announced 2")
        let upgraded = cluster.sentVersions.count
        cluster.request(from: "alpha", .standby(node: "beta"))
        cluster.settle()
        let after = cluster.sentVersions.dropFirst(upgraded)
        #expect(!after.isEmpty && after.allSatisfy { $0.version == 2 }, "\(after.map(\.version))")
        #expect(cluster.running("mba7") == ["alpha"])
        #expect(cluster.hosts["alpha"]!.ledger.document == cluster.hosts["beta"]!.ledger.document)
    }
}

// MARK: - The first release's shapes (synthesized Codable of its enums), to prove version 1 unchanged

private enum FirstReleaseIntent: Codable {
    case migrate(node: String, to: String?, expires: Timestamp?)
    case unmigrate(node: String?)
    case forceStart(resource: String)
    case forceStop(resource: String)
    case cleanup(resource: String?, node: String?)
    case standby(node: String)
    case unstandby(node: String)

    init(_ intent: OperatorIntent) {
        switch intent {
        // The first release named this host by "" (agents resolve it before sending; the samples name nodes).
        case .migrate(let node, let to, let expires): self = .migrate(node: node.named ?? "", to: to, expires: expires)
        case .unmigrate(let node): self = .unmigrate(node: node.map { $0.named ?? "" })
        case .forceStart(let resource): self = .forceStart(resource: resource)
        case .forceStop(let resource): self = .forceStop(resource: resource)
        case .cleanup(let resource, let node): self = .cleanup(resource: resource, node: node)
        case .standby(let node): self = .standby(node: node)
        case .unstandby(let node): self = .unstandby(node: node)
        case .outdateDisk, .clearOutdated: preconditionFailure("not in the first release: \(intent)")
        }
    }
}

private enum FirstReleaseMessage: Codable {
    case sync(ClusterDocument)
    case applyConfig(ClusterConfig, request: RequestID)
    case intent(FirstReleaseIntent, request: RequestID)
    case attribute(name: String, value: String?)
    case resourceReport([String: ResourceNodeState])
    case operationResult(OperationResult)
    case actionRequest(ActionRequest)
    case prepareMigration(ActionRequest)
    case migrationPrepared(request: RequestID, exitCode: Int, output: String?)
    case fenced(node: String)

    init(_ message: ClusterMessage) {
        switch message {
        case .sync(let document): self = .sync(document)
        case .applyConfig(let config, let request): self = .applyConfig(config, request: request)
        case .intent(let intent, let request): self = .intent(FirstReleaseIntent(intent), request: request)
        case .attribute(let name, let value): self = .attribute(name: name, value: value)
        case .resourceReport(let report): self = .resourceReport(report)
        case .operationResult(let result): self = .operationResult(result)
        case .actionRequest(let request): self = .actionRequest(request)
        case .prepareMigration(let request): self = .prepareMigration(request)
        case .migrationPrepared(let request, let exitCode, let output): self = .migrationPrepared(request: request, exitCode: exitCode, output: output)
        case .fenced(let node): self = .fenced(node: node)
        case .resolveVolume, .volumeResolved: preconditionFailure("not in the first release: \(message.kind)")
        }
    }
}

private struct FirstReleaseEnvelope: Codable {
    var v: Int
    var from: String
    var message: FirstReleaseMessage
}
