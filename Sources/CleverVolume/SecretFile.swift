#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The replication link's shared secret: a file of bytes, readable by its owner only.
///
/// Binary files are used whole, byte for byte (`clevervm-volume secret generate` writes 32 random bytes). A
/// file that is entirely printable text (a hex string, a passphrase) loses only its trailing whitespace, so an
/// editor's final newline on one host does not make the two sides disagree.
public enum SecretFile {
    public static let minimumLength = 16
    public static let generatedLength = 32

    public static func read(path: String, volume: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw VolumeError("volume \(volume): secret file \(path) cannot be opened: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw VolumeError("volume \(volume): secret file \(path) is not a regular file")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw VolumeError("volume \(volume): secret file \(path) has mode \(String(mode, radix: 8)): group or "
                + "others may read or change it; `chmod 600 \(path)`")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw VolumeError("volume \(volume): secret file \(path) cannot be read") }
            if got == 0 { break }
            bytes += chunk[0..<got]
            guard bytes.count <= 65536 else {
                throw VolumeError("volume \(volume): secret file \(path) is larger than 64 KiB")
            }
        }
        let secret = Self.secret(from: bytes)
        guard secret.count >= Self.minimumLength else {
            throw VolumeError("volume \(volume): secret in \(path) is shorter than \(Self.minimumLength) bytes")
        }
        return secret
    }

    /// The secret a file's bytes hold: text loses its trailing whitespace, anything else is kept whole.
    public static func secret(from bytes: [UInt8]) -> [UInt8] {
        let isText = bytes.allSatisfy { (0x20...0x7E).contains($0) || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        guard isText else { return bytes }
        var end = bytes.count
        while end > 0, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[end - 1]) { end -= 1 }
        return Array(bytes[0..<end])
    }

    /// Writes a new secret of `generatedLength` random bytes (mode 0600). Never overwrites a file.
    public static func generate(path: String) throws {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<Self.generatedLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SystemError("create secret file", path) }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        guard written == bytes.count else { throw SystemError("write secret file", path) }
        guard fsync(fd) == 0 else { throw SystemError("fsync secret file", path) }
    }
}
