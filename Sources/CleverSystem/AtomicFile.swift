import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Files that must survive a crash whole or not at all: write a temporary file, fsync it, rename it
/// over the old one, fsync the directory. A crash leaves the old or the new contents, never a mix. The one
/// durable-write helper of the shells (the agent's document, the volume's metadata and bitmap, accounts, set-up files).
public enum AtomicFile {
    /// The whole file, nil when it cannot be read.
    public static func read(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { [UInt8]($0) }
    }

    public struct WriteError: Error, Hashable, Sendable, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "cannot write \(self.path): \(self.reason)" }
    }

    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(WriteError) {
        try Self.write(Data(bytes), to: path, mode: mode)
    }

    public static func write(_ data: Data, to path: String, mode: mode_t = 0o600) throws(WriteError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = "\(path).tmp.\(getpid())"
        func failure(_ step: String) -> WriteError {
            WriteError(path: path, reason: "\(step): \(String(cString: strerror(errno)))")
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw failure("open \(temporary)") }
        var written = 0
        let ok = data.withUnsafeBytes { buffer -> Bool in
            while written < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + written, buffer.count - written)
                if n < 0 { if errno == EINTR { continue }; return false }
                written += n
            }
            return true
        }
        guard ok else { let error = failure("write"); close(fd); unlink(temporary); throw error }
        guard fsync(fd) == 0 else { let error = failure("fsync"); close(fd); unlink(temporary); throw error }
        close(fd)
        guard rename(temporary, path) == 0 else { let error = failure("rename"); unlink(temporary); throw error }
        let directoryFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }
}
