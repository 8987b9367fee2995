#if canImport(Glibc)
import Glibc
#endif

// glibc declares splice(2) only under _GNU_SOURCE, which Swift's Glibc module does not set.
@_silgen_name("splice")
private func linuxSplice(_ fdIn: Int32, _ offIn: UnsafeMutablePointer<Int>?, _ fdOut: Int32,
    _ offOut: UnsafeMutablePointer<Int>?, _ length: Int, _ flags: UInt32) -> Int

/// Moves bytes from a socket into a file at an offset through a pipe with splice(2), so replicated data is
/// written on the secondary without being copied into user space. nil when pipes can't be made.
final class Splicer {
    enum Outcome: Equatable {
        case done
        case socketClosed
        case fileError(Int32)
    }

    private let readEnd: Int32
    private let writeEnd: Int32
    private let capacity: Int

    init?() {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return nil }
        self.readEnd = fds[0]
        self.writeEnd = fds[1]
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        let setPipeSize: Int32 = 1031  // F_SETPIPE_SZ
        let size = fcntl(fds[1], setPipeSize, Int32(1 << 20))
        self.capacity = size > 0 ? Int(size) : 65536
    }

    static let batch = 256 << 10

    static func setReceiveLowWater(_ socket: Int32, _ bytes: Int) {
        var value = Int32(bytes)
        setsockopt(socket, SOL_SOCKET, SO_RCVLOWAT, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit {
        close(self.readEnd)
        close(self.writeEnd)
    }

    func move(from socket: Int32, count: Int, to file: Int32, at offset: UInt64) -> Outcome {
        let moveFlag: UInt32 = 1  // SPLICE_F_MOVE
        var remaining = count
        var fileOffset = Int(offset)
        var fileError: Int32 = 0
        // Wake up once per `batch` bytes, not for every segment that arrives: a large write then costs a few
        // wakeups instead of dozens. Back to 1 afterwards, or a small frame alone on the wire would not wake the
        // reader.
        var lowWater = 1
        defer { if lowWater != 1 { Self.setReceiveLowWater(socket, 1) } }
        while remaining > 0 {
            let wanted = count >= Self.batch ? min(remaining, Self.batch) : 1
            if wanted != lowWater {
                Self.setReceiveLowWater(socket, wanted)
                lowWater = wanted
            }
            let got = linuxSplice(socket, nil, self.writeEnd, nil, min(remaining, self.capacity), moveFlag)
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { return .socketClosed }
            remaining -= got
            var inPipe = got
            while inPipe > 0 {
                let put = linuxSplice(self.readEnd, nil, file, &fileOffset, inPipe, moveFlag)
                if put < 0 && errno == EINTR { continue }
                if put <= 0 {
                    // Keep the stream in step: drain the pipe, remember the error.
                    fileError = put < 0 ? errno : EIO
                    var sink = [UInt8](repeating: 0, count: 65536)
                    while inPipe > 0 {
                        let drained = read(self.readEnd, &sink, min(inPipe, sink.count))
                        if drained <= 0 { return .socketClosed }
                        inPipe -= drained
                    }
                    break
                }
                inPipe -= put
            }
        }
        return fileError == 0 ? .done : .fileError(fileError)
    }
}
