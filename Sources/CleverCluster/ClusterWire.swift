import CleverModel
import Foundation

/// The versions of the group's wire format (the `v` of every envelope).
///
/// - 1: the first release's shapes, as Swift's synthesized `Codable` wrote them (`{"sync":{"_0":{…}}}`). Still read
///   and written so a cluster can be upgraded one host at a time.
/// - 2: explicit shapes: every message and intent is an object with a `kind` and named fields.
///
/// An agent writes the highest version every member of its view announces (`Envelope.maxVersion`, carried by
/// every envelope since version 2; a member not heard from in this view counts as 1). Every member sees the same
/// messages in the same order, so all switch at the same message. See docs/architecture.md for every kind.
public enum WireVersion {
    public static let legacy = 1
    public static let current = 2
    public static let supported = 1...2
}

extension CodingUserInfoKey {
    /// The wire version an encoder writes or a decoder reads (`WireVersion.current` when absent).
    public static let clusterWireVersion = CodingUserInfoKey(rawValue: "clevervm.clusterWireVersion")!
}

extension Encoder {
    var clusterWireVersion: Int { self.userInfo[.clusterWireVersion] as? Int ?? WireVersion.current }
}

extension Decoder {
    var clusterWireVersion: Int { self.userInfo[.clusterWireVersion] as? Int ?? WireVersion.current }
}

/// A coding key made from any string: the version 1 shapes name their cases and `_0` payloads.
public struct WireKey: CodingKey, ExpressibleByStringLiteral, Sendable {
    public var stringValue: String
    public var intValue: Int? { nil }
    public init(_ string: String) { self.stringValue = string }
    public init(stringLiteral value: String) { self.stringValue = value }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

/// A tagged union on the wire: its fields beside `"kind": KIND` (version 2 and the control protocol), or, in the
/// group's version 1, nested under the case name (`{"KIND": {…}}`, synthesized Codable's shape).
public enum WireUnion {
    public static func fields<Kind: RawRepresentable<String> & Encodable>(
        of kind: Kind, in encoder: any Encoder, nested: Bool) throws -> KeyedEncodingContainer<WireKey> {
        var outer = encoder.container(keyedBy: WireKey.self)
        if nested { return outer.nestedContainer(keyedBy: WireKey.self, forKey: WireKey(kind.rawValue)) }
        try outer.encode(kind, forKey: "kind")
        return outer
    }

    public static func fields<Kind: RawRepresentable<String> & Decodable>(
        _ type: Kind.Type, in decoder: any Decoder, nested: Bool, what: String) throws -> (Kind, KeyedDecodingContainer<WireKey>) {
        let outer = try decoder.container(keyedBy: WireKey.self)
        guard nested else { return (try outer.decode(Kind.self, forKey: "kind"), outer) }
        guard outer.allKeys.count == 1, let key = outer.allKeys.first, let kind = Kind(rawValue: key.stringValue) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                "not one \(what) kind (\(outer.allKeys.map(\.stringValue).sorted().joined(separator: ", ")))"))
        }
        return (kind, try outer.nestedContainer(keyedBy: WireKey.self, forKey: key))
    }
}

// MARK: - Messages

extension ClusterMessage: Codable {
    /// The `kind` of each message in version 2 (and its case key in version 1).
    public enum Kind: String, Codable, CaseIterable, Sendable {
        case sync, applyConfig, intent, attribute, resourceReport, operationResult, actionRequest, prepareMigration,
             migrationPrepared, fenced, resolveVolume, volumeResolved
    }

    public var kind: Kind {
        switch self {
        case .sync: .sync
        case .applyConfig: .applyConfig
        case .intent: .intent
        case .attribute: .attribute
        case .resourceReport: .resourceReport
        case .operationResult: .operationResult
        case .actionRequest: .actionRequest
        case .prepareMigration: .prepareMigration
        case .migrationPrepared: .migrationPrepared
        case .fenced: .fenced
        case .resolveVolume: .resolveVolume
        case .volumeResolved: .volumeResolved
        }
    }

    public func encode(to encoder: any Encoder) throws {
        // Version 2 writes the fields beside `kind`; version 1 nests them under the case name.
        let legacy = encoder.clusterWireVersion == WireVersion.legacy
        var fields = try WireUnion.fields(of: self.kind, in: encoder, nested: legacy)
        switch self {
        case .sync(let document):
            try fields.encode(document, forKey: legacy ? "_0" : "document")
        case .applyConfig(let config, let request):
            try fields.encode(config, forKey: legacy ? "_0" : "config")
            try fields.encode(request, forKey: "request")
        case .intent(let intent, let request):
            try fields.encode(intent, forKey: legacy ? "_0" : "intent")
            try fields.encode(request, forKey: "request")
        case .attribute(let name, let value):
            try fields.encode(name, forKey: "name")
            try fields.encodeIfPresent(value, forKey: "value")
        case .resourceReport(let resources):
            try fields.encode(resources, forKey: legacy ? "_0" : "resources")
        case .operationResult(let result):
            try fields.encode(result, forKey: legacy ? "_0" : "result")
        case .actionRequest(let request), .prepareMigration(let request):
            try fields.encode(request, forKey: legacy ? "_0" : "request")
        case .migrationPrepared(let request, let exitCode, let output):
            try fields.encode(request, forKey: "request")
            try fields.encode(exitCode, forKey: "exitCode")
            try fields.encodeIfPresent(output, forKey: "output")
        case .fenced(let node):
            try fields.encode(node, forKey: "node")
        case .resolveVolume(let request):
            try fields.encode(request, forKey: legacy ? "_0" : "request")
        case .volumeResolved(let request, let succeeded, let text):
            try fields.encode(request, forKey: "request")
            try fields.encode(succeeded, forKey: "succeeded")
            try fields.encode(text, forKey: "text")
        }
    }

    public init(from decoder: any Decoder) throws {
        let legacy = decoder.clusterWireVersion == WireVersion.legacy
        let (kind, fields) = try WireUnion.fields(Kind.self, in: decoder, nested: legacy, what: "message")
        switch kind {
        case .sync:
            self = .sync(try fields.decode(ClusterDocument.self, forKey: legacy ? "_0" : "document"))
        case .applyConfig:
            self = .applyConfig(try fields.decode(ClusterConfig.self, forKey: legacy ? "_0" : "config"),
                                request: try fields.decode(RequestID.self, forKey: "request"))
        case .intent:
            self = .intent(try fields.decode(OperatorIntent.self, forKey: legacy ? "_0" : "intent"),
                           request: try fields.decode(RequestID.self, forKey: "request"))
        case .attribute:
            self = .attribute(name: try fields.decode(String.self, forKey: "name"), value: try fields.decodeIfPresent(String.self, forKey: "value"))
        case .resourceReport:
            self = .resourceReport(try fields.decode([String: ResourceNodeState].self, forKey: legacy ? "_0" : "resources"))
        case .operationResult:
            self = .operationResult(try fields.decode(OperationResult.self, forKey: legacy ? "_0" : "result"))
        case .actionRequest:
            self = .actionRequest(try fields.decode(ActionRequest.self, forKey: legacy ? "_0" : "request"))
        case .prepareMigration:
            self = .prepareMigration(try fields.decode(ActionRequest.self, forKey: legacy ? "_0" : "request"))
        case .migrationPrepared:
            self = .migrationPrepared(request: try fields.decode(RequestID.self, forKey: "request"),
                                      exitCode: try fields.decode(Int.self, forKey: "exitCode"),
                                      output: try fields.decodeIfPresent(String.self, forKey: "output"))
        case .fenced:
            self = .fenced(node: try fields.decode(String.self, forKey: "node"))
        case .resolveVolume:
            self = .resolveVolume(try fields.decode(VolumeResolveRequest.self, forKey: legacy ? "_0" : "request"))
        case .volumeResolved:
            self = .volumeResolved(request: try fields.decode(RequestID.self, forKey: "request"),
                                   succeeded: try fields.decode(Bool.self, forKey: "succeeded"),
                                   text: try fields.decode(String.self, forKey: "text"))
        }
    }
}

// MARK: - Operator intents

extension OperatorIntent: Codable {
    public enum Kind: String, Codable, CaseIterable, Sendable {
        case migrate, unmigrate, forceStart, forceStop, cleanup, standby, unstandby, outdateDisk, clearOutdated
    }

    public var kind: Kind {
        switch self {
        case .migrate: .migrate
        case .unmigrate: .unmigrate
        case .forceStart: .forceStart
        case .forceStop: .forceStop
        case .cleanup: .cleanup
        case .standby: .standby
        case .unstandby: .unstandby
        case .outdateDisk: .outdateDisk
        case .clearOutdated: .clearOutdated
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var fields = try WireUnion.fields(of: self.kind, in: encoder, nested: encoder.clusterWireVersion == WireVersion.legacy)
        switch self {
        case .migrate(let node, let to, let expires):
            try Self.encode(node, into: &fields)
            try fields.encodeIfPresent(to, forKey: "to")
            try fields.encodeIfPresent(expires, forKey: "expires")
        case .unmigrate(let node):
            if let node { try Self.encode(node, into: &fields) }
        case .forceStart(let resource), .forceStop(let resource):
            try fields.encode(resource, forKey: "resource")
        case .cleanup(let resource, let node):
            try fields.encodeIfPresent(resource, forKey: "resource")
            try fields.encodeIfPresent(node, forKey: "node")
        case .standby(let node), .unstandby(let node):
            try fields.encode(node, forKey: "node")
        case .outdateDisk(let volume, let node), .clearOutdated(let volume, let node):
            try fields.encode(volume, forKey: "volume")
            try fields.encode(node, forKey: "node")
        }
    }

    public init(from decoder: any Decoder) throws {
        let (kind, fields) = try WireUnion.fields(Kind.self, in: decoder, nested: decoder.clusterWireVersion == WireVersion.legacy, what: "intent")
        switch kind {
        case .migrate:
            guard let node = try Self.decodeNode(fields) else {
                throw DecodingError.keyNotFound(WireKey("node"), .init(codingPath: fields.codingPath, debugDescription: "migrate names no node"))
            }
            self = .migrate(node: node, to: try fields.decodeIfPresent(String.self, forKey: "to"),
                            expires: try fields.decodeIfPresent(Timestamp.self, forKey: "expires"))
        case .unmigrate: self = .unmigrate(node: try Self.decodeNode(fields))
        case .forceStart: self = .forceStart(resource: try fields.decode(String.self, forKey: "resource"))
        case .forceStop: self = .forceStop(resource: try fields.decode(String.self, forKey: "resource"))
        case .cleanup:
            self = .cleanup(resource: try fields.decodeIfPresent(String.self, forKey: "resource"),
                            node: try fields.decodeIfPresent(String.self, forKey: "node"))
        case .standby: self = .standby(node: try fields.decode(String.self, forKey: "node"))
        case .unstandby: self = .unstandby(node: try fields.decode(String.self, forKey: "node"))
        case .outdateDisk:
            self = .outdateDisk(volume: try fields.decode(String.self, forKey: "volume"), node: try fields.decode(String.self, forKey: "node"))
        case .clearOutdated:
            self = .clearOutdated(volume: try fields.decode(String.self, forKey: "volume"), node: try fields.decode(String.self, forKey: "node"))
        }
    }
}

extension OperatorIntent {
    /// A named node is `"node": "alpha"`; this host is `"thisHost": true` (the first release wrote `"node": ""`,
    /// which still reads as this host).
    static func encode(_ node: NodeSelector, into fields: inout KeyedEncodingContainer<WireKey>) throws {
        switch node {
        case .named(let name): try fields.encode(name, forKey: "node")
        case .thisHost: try fields.encode(true, forKey: "thisHost")
        }
    }

    static func decodeNode(_ fields: KeyedDecodingContainer<WireKey>) throws -> NodeSelector? {
        if try fields.decodeIfPresent(Bool.self, forKey: "thisHost") == true { return .thisHost }
        return try fields.decodeIfPresent(String.self, forKey: "node").map(NodeSelector.init(typed:))
    }
}

// MARK: - The envelope

/// The wire form of one group message: `{"from":"alpha","max":2,"message":{…},"v":2}` as JSON with sorted keys.
public struct Envelope: Hashable, Sendable {
    public static let maximumSize = 4 << 20

    /// The version this envelope is written in.
    public var v: Int
    /// The highest version the sender speaks (absent in version 1 envelopes of the first release: then `v`).
    public var maxVersion: Int
    public var from: String
    public var message: ClusterMessage

    public init(from: String, message: ClusterMessage, version: Int = WireVersion.current, maxVersion: Int = WireVersion.current) {
        self.v = version
        self.maxVersion = max(version, maxVersion)
        self.from = from
        self.message = message
    }

    public enum DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
        case tooLarge(bytes: Int)
        case notAMessage
        case noVersion
        case unsupportedVersion(Int, from: String?)
        case malformed(from: String?, reason: String)

        public var description: String {
            switch self {
            case .tooLarge(let bytes): "message of \(bytes) bytes exceeds the \(Envelope.maximumSize)-byte limit"
            case .notAMessage: "not a CleverVM message (not a JSON object with 'v' and 'from')"
            case .noVersion: "message without a version ('v')"
            case .unsupportedVersion(let version, let from):
                "message version \(version) from \(from ?? "?") is not supported (this agent speaks "
                    + "\(WireVersion.supported.lowerBound) to \(WireVersion.supported.upperBound))"
            case .malformed(let from, let reason): "malformed message from \(from ?? "?"): \(reason)"
            }
        }
    }

    private struct Header: Decodable {
        var v: Int?
        var from: String?
    }

    private enum Keys: String, CodingKey { case v, max, from, message }

    private struct Body: Codable {
        var envelope: Envelope
        init(_ envelope: Envelope) { self.envelope = envelope }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(self.envelope.v, forKey: .v)
            try container.encode(self.envelope.maxVersion, forKey: .max)
            try container.encode(self.envelope.from, forKey: .from)
            try container.encode(self.envelope.message, forKey: .message)
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Keys.self)
            let version = try container.decode(Int.self, forKey: .v)
            self.envelope = Envelope(
                from: try container.decode(String.self, forKey: .from), message: try container.decode(ClusterMessage.self, forKey: .message),
                version: version, maxVersion: try container.decodeIfPresent(Int.self, forKey: .max) ?? version)
        }
    }

    /// The JSON bytes, in this envelope's version.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.userInfo[.clusterWireVersion] = self.v
        // Encoding these value types cannot fail: no floats that are NaN, no non-string keys.
        return Array((try? encoder.encode(Body(self))) ?? Data())
    }

    /// Decodes bytes from the network; anything malformed or of an unsupported version is an error that names what
    /// was wrong, never a crash.
    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> Envelope {
        guard bytes.count <= Self.maximumSize else { throw .tooLarge(bytes: bytes.count) }
        let data = Data(bytes)
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: data)
        } catch {
            throw .notAMessage
        }
        guard let version = header.v else { throw .noVersion }
        guard WireVersion.supported.contains(version) else { throw .unsupportedVersion(version, from: header.from) }
        let decoder = JSONDecoder()
        decoder.userInfo[.clusterWireVersion] = version
        do {
            return try decoder.decode(Body.self, from: data).envelope
        } catch {
            throw .malformed(from: header.from, reason: Self.describe(error))
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            "missing '\(key.stringValue)' at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
             DecodingError.dataCorrupted(let context):
            "\(context.debugDescription) at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        default:
            "\(error)"
        }
    }
}
