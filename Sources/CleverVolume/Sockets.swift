#if canImport(Glibc)
import Glibc
#endif
import CleverSystem
import Foundation

/// Blocking POSIX socket helpers. The data path uses plain threads and blocking calls: one reader thread per
/// connection keeps request handling simple and fast (see docs/architecture-volume.md, "Why threads").
public enum Sockets {
    /// accept(2), then close-on-exec (accept4 needs _GNU_SOURCE).
    public static func acceptCloseOnExec(_ listener: Int32) -> Int32 {
        let fd = accept(listener, nil, nil)
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return fd
    }

    /// Reads exactly `count` bytes; nil on EOF or error.
    public static func readFully(_ fd: Int32, count: Int) -> [UInt8]? {
        if count == 0 { return [] }
        var buffer = [UInt8](repeating: 0, count: count)
        let ok = buffer.withUnsafeMutableBytes { raw -> Bool in
            var done = 0
            while done < count {
                let got = read(fd, raw.baseAddress! + done, count - done)
                if got > 0 { done += got; continue }
                if got < 0 && errno == EINTR { continue }
                return false
            }
            return true
        }
        return ok ? buffer : nil
    }

    /// Reads exactly `count` bytes into an existing buffer.
    public static func readFully(_ fd: Int32, into pointer: UnsafeMutableRawPointer, count: Int) -> Bool {
        var done = 0
        while done < count {
            let got = read(fd, pointer + done, count - done)
            if got > 0 { done += got; continue }
            if got < 0 && errno == EINTR { continue }
            return false
        }
        return true
    }

    /// Reads whatever is available, up to `max` bytes (at least 1); nil on EOF or error.
    public static func readSome(_ fd: Int32, max: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, max) }
            if got > 0 { return Array(buffer.prefix(got)) }
            if got < 0 && errno == EINTR { continue }
            return nil
        }
    }

    @discardableResult
    public static func writeFully(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Self.writeFully(fd, $0.baseAddress, count: $0.count) }
    }

    public static func writeFully(_ fd: Int32, _ pointer: UnsafeRawPointer?, count: Int) -> Bool {
        guard let pointer else { return count == 0 }
        var done = 0
        while done < count {
            let sent = send(fd, pointer + done, count - done, Int32(MSG_NOSIGNAL))
            if sent > 0 { done += sent; continue }
            if sent < 0 && errno == EINTR { continue }
            return false
        }
        return true
    }

    /// Writes two buffers back to back (header and data) with as few system calls as possible.
    public static func writeFully(_ fd: Int32, _ first: [UInt8], _ second: UnsafeRawBufferPointer) -> Bool {
        first.withUnsafeBytes { head -> Bool in
            var iov = [
                iovec(iov_base: UnsafeMutableRawPointer(mutating: head.baseAddress), iov_len: head.count),
                iovec(iov_base: UnsafeMutableRawPointer(mutating: second.baseAddress), iov_len: second.count),
            ]
            var total = head.count + second.count
            var index = 0
            while total > 0 {
                let sent = iov.withUnsafeMutableBufferPointer { buffer in
                    writev(fd, buffer.baseAddress! + index, Int32(2 - index))
                }
                if sent < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                total -= sent
                var remaining = sent
                while index < 2 && remaining >= iov[index].iov_len {
                    remaining -= iov[index].iov_len
                    index += 1
                }
                if index < 2 && remaining > 0 {
                    iov[index].iov_base = iov[index].iov_base! + remaining
                    iov[index].iov_len -= remaining
                }
            }
            return true
        }
    }

    static func unixAddress(_ path: String) throws -> UnixSocketAddress {
        do { return try UnixSocketAddress(path: path) } catch { throw VolumeError("\(error)") }
    }

    /// Binds and listens on a unix socket (removing a stale socket file), with the given file mode.
    public static func listenUnix(path: String, mode: mode_t) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", path) }
        unlink(path)
        let bound = try unixAddress(path).bind(fd)
        guard bound == 0 else {
            let error = SystemError("bind", path)
            close(fd)
            throw error
        }
        chmod(path, mode)
        guard listen(fd, 64) == 0 else {
            let error = SystemError("listen", path)
            close(fd)
            throw error
        }
        return fd
    }

    public static func connectUnix(path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", path) }
        let result = try unixAddress(path).connect(fd)
        guard result == 0 else {
            let error = SystemError("connect", path)
            close(fd)
            throw error
        }
        return fd
    }

    /// Parses "A.B.C.D:PORT".
    public static func parseIPv4(_ text: String) throws -> sockaddr_in {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = UInt16(parts[1]), port > 0 else {
            throw VolumeError("address '\(text)' is not HOST:PORT with an IPv4 host and a port 1-65535")
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, String(parts[0]), &address.sin_addr) == 1 else {
            throw VolumeError("address '\(text)': '\(parts[0])' is not an IPv4 address")
        }
        return address
    }

    public static func listenTCP(_ text: String) throws -> Int32 {
        var address = try parseIPv4(text)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", text) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 8) == 0 else {
            let error = SystemError("bind/listen", text)
            close(fd)
            throw error
        }
        return fd
    }

    public static func connectTCP(_ text: String) throws -> Int32 {
        var address = try parseIPv4(text)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", text) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let error = SystemError("connect", text)
            close(fd)
            throw error
        }
        Self.tuneTCP(fd)
        return fd
    }

    /// No Nagle delay (acks are tiny and latency-bound); large buffers for streaming writes.
    public static func tuneTCP(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var size: Int32 = 4 << 20
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var keepalive: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &keepalive, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Sets a receive timeout so a silent peer is noticed.
    public static func setReceiveTimeout(_ fd: Int32, seconds: Double) {
        var timeout = Self.timeValue(seconds)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    public static func setSendTimeout(_ fd: Int32, seconds: Double) {
        var timeout = Self.timeValue(seconds)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    static func timeValue(_ seconds: Double) -> timeval {
        let whole = Int(seconds.rounded(.down))
        return timeval(tv_sec: whole, tv_usec: Int((seconds - Double(whole)) * 1_000_000))
    }
}
