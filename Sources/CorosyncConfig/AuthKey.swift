import Foundation

/// corosync's shared secret for knet crypto (/etc/corosync/authkey): 256 random bytes, the same on every
/// host, readable by root only. `corosync-keygen` makes the same thing.
public enum AuthKey {
    public static let size = 256

    public static func generate() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<Self.size).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// Writes `key` to `path` with mode 0400 (created 0400 before any byte is written).
    public static func write(_ key: [UInt8], to path: String) throws(AuthKeyError) {
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o400)
        guard fd >= 0 else { throw AuthKeyError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let written = key.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        guard written == key.count else { throw AuthKeyError(path: path, reason: "short write (\(written) of \(key.count) bytes)") }
        guard fsync(fd) == 0 else { throw AuthKeyError(path: path, reason: String(cString: strerror(errno))) }
    }
}

public struct AuthKeyError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "cannot write corosync authkey \(self.path): \(self.reason)" }
}
