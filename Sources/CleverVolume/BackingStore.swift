#if canImport(Glibc)
import Glibc
#endif

/// glibc's fallocate(2) is declared only under _GNU_SOURCE, which Swift's Glibc module does not set.
@_silgen_name("fallocate")
private func linuxFallocate(_ fd: Int32, _ mode: Int32, _ offset: Int, _ length: Int) -> Int32

/// The local disk: a file (created and sized if missing) or a block device, accessed with pread/pwrite.
/// Not final: tests inject faults at this layer (a subclass that fails chosen reads, writes or syncs).
open class BackingStore: @unchecked Sendable {
    public let path: String
    public let size: UInt64
    public let fd: Int32

    public init(path: String, size: UInt64) throws {
        self.path = path
        self.size = size
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError("open backing", path) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            close(fd)
            throw SystemError("stat backing", path)
        }
        if (info.st_mode & S_IFMT) == S_IFREG && UInt64(info.st_size) < size {
            guard ftruncate(fd, off_t(size)) == 0 else {
                close(fd)
                throw SystemError("size backing to \(size) bytes", path)
            }
        }
        self.fd = fd
    }

    deinit { close(self.fd) }

    open func read(offset: UInt64, into pointer: UnsafeMutableRawPointer, count: Int) throws {
        var done = 0
        while done < count {
            let got = pread(self.fd, pointer + done, count - done, off_t(offset) + off_t(done))
            if got > 0 { done += got; continue }
            if got == 0 {
                // Past the end of a sparse file: zeroes.
                (pointer + done).initializeMemory(as: UInt8.self, repeating: 0, count: count - done)
                return
            }
            if errno == EINTR { continue }
            throw SystemError("pread \(count) bytes at \(offset)", self.path)
        }
    }

    public func read(offset: UInt64, count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        try buffer.withUnsafeMutableBytes { try self.read(offset: offset, into: $0.baseAddress!, count: count) }
        return buffer
    }

    open func write(offset: UInt64, _ pointer: UnsafeRawPointer, count: Int) throws {
        var done = 0
        while done < count {
            let put = pwrite(self.fd, pointer + done, count - done, off_t(offset) + off_t(done))
            if put > 0 { done += put; continue }
            if put < 0 && errno == EINTR { continue }
            throw SystemError("pwrite \(count) bytes at \(offset)", self.path)
        }
    }

    public func write(offset: UInt64, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try self.write(offset: offset, $0.baseAddress!, count: $0.count) }
    }

    open func sync() throws {
        guard fdatasync(self.fd) == 0 else { throw SystemError("fdatasync", self.path) }
    }

    /// TRIM: punch a hole (reads return zeroes); falls back to writing zeroes where unsupported.
    open func trim(offset: UInt64, length: UInt64) throws {
        let mode = Int32(0x02 | 0x01)  // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
        if linuxFallocate(self.fd, mode, Int(offset), Int(length)) == 0 { return }
        try self.writeZeroes(offset: offset, length: length)
    }

    /// WRITE_ZEROES: zero the range (FALLOC_FL_ZERO_RANGE, else plain zero writes).
    open func writeZeroes(offset: UInt64, length: UInt64) throws {
        let zeroRange = Int32(0x10 | 0x01)  // FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE
        if linuxFallocate(self.fd, zeroRange, Int(offset), Int(length)) == 0 { return }
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        var position = offset
        let end = offset + length
        while position < end {
            let count = Int(min(UInt64(chunk.count), end - position))
            try chunk.withUnsafeBytes { try self.write(offset: position, $0.baseAddress!, count: count) }
            position += UInt64(count)
        }
    }
}
