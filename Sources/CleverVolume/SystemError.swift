#if canImport(Glibc)
import Glibc
#endif

/// A failed system call, naming the operation, the thing it acted on and errno's text.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var subject: String
    public var code: Int32

    public init(_ operation: String, _ subject: String, code: Int32 = errno) {
        self.operation = operation
        self.subject = subject
        self.code = code
    }

    public var description: String {
        "\(self.operation) \(self.subject): \(String(cString: strerror(self.code))) (errno \(self.code))"
    }
}

/// An error in the volume's configuration, metadata or a request, with a message naming the place.
public struct VolumeError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { self.message }
}
