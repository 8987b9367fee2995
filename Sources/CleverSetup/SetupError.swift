/// Why a set-up command (init, join, qdevice setup, remove) refused or failed: an opaque code for scripts,
/// a message naming the thing and the place, and what was rolled back.
public struct SetupError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable, Codable {
        case badInput = "bad-input"
        case badToken = "bad-token"
        case conflict
        case io
        case command
        case service
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { self.message }
}
