#if canImport(Glibc)
import Glibc
#endif

/// A unix-domain socket address (`sockaddr_un`) built once, checked for length, for `bind` and `connect`.
public struct UnixSocketAddress: Sendable {
    public struct PathTooLong: Error, Hashable, Sendable, CustomStringConvertible {
        public var path: String
        public var description: String {
            "socket path too long (\(self.path.utf8.count) bytes, at most \(UnixSocketAddress.maximumPathLength)): \(self.path)"
        }
    }

    /// `sun_path` holds 108 bytes including the terminating NUL.
    public static let maximumPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    public let path: String
    private let storage: sockaddr_un

    public init(path: String) throws(PathTooLong) {
        let bytes = Array(path.utf8)
        guard bytes.count <= Self.maximumPathLength else { throw PathTooLong(path: path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        self.path = path
        self.storage = address
    }

    /// Calls `body` with the address as `bind`, `connect` and `sendto` take it.
    public func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Result) rethrows -> Result {
        var address = self.storage
        return try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    public func connect(_ fd: Int32) -> Int32 { self.withSockaddr { Glibc.connect(fd, $0, $1) } }
    public func bind(_ fd: Int32) -> Int32 { self.withSockaddr { Glibc.bind(fd, $0, $1) } }
}
