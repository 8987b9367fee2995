import CleverCluster
import CleverModel
import Foundation

/// The control socket's wire format: one JSON object per line, `{"v":1,"kind":"status"}`, with named fields beside
/// `kind` (docs/architecture.md lists them). The CLI and the agent of one release speak the same version; a line of
/// another version is refused with a message that says so, never guessed at.
public enum ControlWire {
    public static let version = 1

    public enum Refusal: Error, Hashable, Sendable, CustomStringConvertible {
        case notJSON
        case noVersion
        case unsupportedVersion(Int)
        case malformed(String)

        public var description: String {
            switch self {
            case .notJSON: "not a control message (not a JSON object)"
            case .noVersion: "control message without a version ('v'): the other side is an older CleverVM; use the clevervm of the agent's release"
            case .unsupportedVersion(let version):
                "control protocol version \(version) is not supported (this side speaks \(ControlWire.version)); "
                    + "use the clevervm of the agent's release"
            case .malformed(let reason): "malformed control message: \(reason)"
            }
        }
    }

    public static func encode(_ request: ControlRequest) -> [UInt8] { Self.encoded(Versioned(request)) }
    public static func encode(_ response: ControlResponse) -> [UInt8] { Self.encoded(Versioned(response)) }

    public static func decodeRequest(_ bytes: [UInt8]) throws(Refusal) -> ControlRequest {
        try Self.decode(Versioned<ControlRequest>.self, bytes).value
    }

    public static func decodeResponse(_ bytes: [UInt8]) throws(Refusal) -> ControlResponse {
        try Self.decode(Versioned<ControlResponse>.self, bytes).value
    }

    private static func encoded<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // A NaN in a report would make encoding fail: answer that instead of nothing.
        if let data = try? encoder.encode(value) { return Array(data) }
        return Self.encoded(Versioned(ControlResponse.failure("the agent could not encode its answer")))
    }

    private struct Header: Decodable { var v: Int? }

    private static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws(Refusal) -> T {
        let data = Data(bytes)
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: data) } catch { throw .notJSON }
        guard let version = header.v else { throw .noVersion }
        guard version == Self.version else { throw .unsupportedVersion(version) }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch DecodingError.keyNotFound(let key, let context) {
            throw .malformed("missing '\(key.stringValue)' at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'")
        } catch DecodingError.dataCorrupted(let context) {
            throw .malformed("\(context.debugDescription) at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'")
        } catch {
            throw .malformed("\(error)")
        }
    }

    /// A request or response with the protocol version beside its fields.
    private struct Versioned<Value: Codable>: Codable {
        var value: Value
        init(_ value: Value) { self.value = value }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: WireKey.self)
            try container.encode(ControlWire.version, forKey: "v")
            try self.value.encode(to: encoder)
        }
        init(from decoder: any Decoder) throws { self.value = try Value(from: decoder) }
    }
}

extension ControlRequest: Codable {
    public enum Kind: String, Codable, CaseIterable, Sendable { case status, intent, applyConfig, showConfig, events, snapshot, direct, resolveVolume }

    public var kind: Kind {
        switch self {
        case .status: .status
        case .intent: .intent
        case .applyConfig: .applyConfig
        case .showConfig: .showConfig
        case .events: .events
        case .snapshot: .snapshot
        case .direct: .direct
        case .resolveVolume: .resolveVolume
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var fields = try WireUnion.fields(of: self.kind, in: encoder, nested: false)
        switch self {
        case .status, .showConfig, .snapshot: break
        case .intent(let intent): try fields.encode(intent, forKey: "intent")
        case .applyConfig(let config): try fields.encode(config, forKey: "config")
        case .events(let limit): try fields.encode(limit, forKey: "limit")
        case .direct(let action, let resource):
            try fields.encode(action, forKey: "action")
            try fields.encode(resource, forKey: "resource")
        case .resolveVolume(let volume, let discard, let dryRun):
            try fields.encode(volume, forKey: "volume")
            try fields.encode(discard, forKey: "discard")
            try fields.encode(dryRun, forKey: "dryRun")
        }
    }

    public init(from decoder: any Decoder) throws {
        let (kind, fields) = try WireUnion.fields(Kind.self, in: decoder, nested: false, what: "control")
        switch kind {
        case .status: self = .status
        case .showConfig: self = .showConfig
        case .snapshot: self = .snapshot
        case .intent: self = .intent(try fields.decode(OperatorIntent.self, forKey: "intent"))
        case .applyConfig: self = .applyConfig(try fields.decode(ClusterConfig.self, forKey: "config"))
        case .events: self = .events(limit: try fields.decode(Int.self, forKey: "limit"))
        case .direct:
            self = .direct(action: try fields.decode(ResourceAction.self, forKey: "action"), resource: try fields.decode(String.self, forKey: "resource"))
        case .resolveVolume:
            self = .resolveVolume(volume: try fields.decode(String.self, forKey: "volume"), discard: try fields.decode(String.self, forKey: "discard"),
                                  dryRun: try fields.decode(Bool.self, forKey: "dryRun"))
        }
    }
}

extension ControlResponse: Codable {
    public enum Kind: String, Codable, CaseIterable, Sendable { case status, done, config, events, snapshot, failure }

    public var kind: Kind {
        switch self {
        case .status: .status
        case .done: .done
        case .config: .config
        case .events: .events
        case .snapshot: .snapshot
        case .failure: .failure
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var fields = try WireUnion.fields(of: self.kind, in: encoder, nested: false)
        switch self {
        case .status(let report): try fields.encode(report, forKey: "report")
        case .done(let text): try fields.encode(text, forKey: "text")
        case .config(let config): try fields.encode(config, forKey: "config")
        case .events(let events): try fields.encode(events, forKey: "events")
        case .snapshot(let config, let state, let now):
            try fields.encode(config, forKey: "config")
            try fields.encode(state, forKey: "state")
            try fields.encode(now, forKey: "now")
        case .failure(let message): try fields.encode(message, forKey: "message")
        }
    }

    public init(from decoder: any Decoder) throws {
        let (kind, fields) = try WireUnion.fields(Kind.self, in: decoder, nested: false, what: "control")
        switch kind {
        case .status: self = .status(try fields.decode(StatusReport.self, forKey: "report"))
        case .done: self = .done(try fields.decode(String.self, forKey: "text"))
        case .config: self = .config(try fields.decode(ClusterConfig.self, forKey: "config"))
        case .events: self = .events(try fields.decode([EventRecord].self, forKey: "events"))
        case .snapshot:
            self = .snapshot(config: try fields.decode(ClusterConfig.self, forKey: "config"), state: try fields.decode(ClusterState.self, forKey: "state"),
                             now: try fields.decode(Timestamp.self, forKey: "now"))
        case .failure: self = .failure(try fields.decode(String.self, forKey: "message"))
        }
    }
}
