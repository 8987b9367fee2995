#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Crash-safe whole-file replacement: write a temporary file, fsync it, rename it over the old one, fsync the
/// directory. A crash leaves either the old or the new contents, never a mix.
public enum DurableFile {
    public static func replace(path: String, with bytes: [UInt8]) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError("create", temporary) }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { raw -> Bool in
            var done = 0
            while done < raw.count {
                let put = write(fd, raw.baseAddress! + done, raw.count - done)
                if put > 0 { done += put; continue }
                if put < 0 && errno == EINTR { continue }
                return false
            }
            return true
        }
        guard written else { throw SystemError("write", temporary) }
        guard fsync(fd) == 0 else { throw SystemError("fsync", temporary) }
        guard rename(temporary, path) == 0 else { throw SystemError("rename to \(path)", temporary) }
        let directory = (path as NSString).deletingLastPathComponent
        let dirFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }

    public static func read(path: String) -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return [UInt8](data)
    }
}

/// CRC-32C (Castagnoli), as DRBD uses for activity-log transactions.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { index -> UInt32 in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = Self.table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
