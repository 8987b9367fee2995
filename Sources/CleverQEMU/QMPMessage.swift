import Foundation

/// The QMP wire format (docs/interop/qmp-spec): one JSON object per line in each direction.
public enum QMP {
    /// One message from QEMU.
    public enum Message: Hashable, Sendable {
        /// The first message after connecting: `{"QMP": {"version": …, "capabilities": […]}}`.
        case greeting(JSONValue)
        /// `{"return": …, "id": …}`.
        case success(id: String?, JSONValue)
        /// `{"error": {"class": …, "desc": …}, "id": …}`.
        case failure(id: String?, errorClass: String, description: String)
        /// `{"event": NAME, "data": …, "timestamp": …}`.
        case event(name: String, data: JSONValue)
    }

    public struct ProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
        public var line: String
        public var reason: String
        public var description: String { "bad QMP message (\(self.reason)): \(self.line.prefix(200))" }
    }

    /// Parses one line from QEMU. Bad bytes are an error naming the line, never a crash.
    public static func parse(line: String) throws(ProtocolError) -> Message {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(line.utf8)) else {
            throw ProtocolError(line: line, reason: "not JSON")
        }
        guard case .object(let members) = value else { throw ProtocolError(line: line, reason: "not an object") }
        let id = members["id"]?.string
        if let greeting = members["QMP"] { return .greeting(greeting) }
        if let returned = members["return"] { return .success(id: id, returned) }
        if let error = members["error"] {
            return .failure(id: id, errorClass: error["class"]?.string ?? "GenericError",
                            description: error["desc"]?.string ?? error.description)
        }
        if let event = members["event"]?.string { return .event(name: event, data: members["data"] ?? .null) }
        throw ProtocolError(line: line, reason: "neither return, error, event nor greeting")
    }

    /// One command line (with its newline) to send.
    public static func command(_ name: String, arguments: JSONValue? = nil, id: String) -> String {
        var members: [String: JSONValue] = ["execute": .string(name), "id": .string(id)]
        if let arguments { members["arguments"] = arguments }
        return JSONValue.object(members).description + "\n"
    }

    /// Splits a byte stream into lines; keeps a partial line until its newline arrives.
    public struct LineBuffer: Sendable {
        private var pending: [UInt8] = []
        public init() {}

        public mutating func append(_ bytes: some Sequence<UInt8>) -> [String] {
            self.pending.append(contentsOf: bytes)
            var lines: [String] = []
            while let newline = self.pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: self.pending[..<newline], as: UTF8.self)
                self.pending.removeSubrange(...newline)
                let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
                if !trimmed.isEmpty { lines.append(trimmed) }
            }
            return lines
        }
    }
}
