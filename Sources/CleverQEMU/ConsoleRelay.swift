import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Relays a VM's serial console between hosts: the host that runs the VM listens on its cluster address; `clevervm
/// console` on any host connects there. A session proves it holds the cluster's key (every host's root-only
/// Corosync authkey) by an HMAC-SHA256 over the server's fresh nonce and the VM's name; then bytes flow both ways
/// between the TCP connection and the VM's console socket until either side closes.
///
///     server: CLEVERVM-CONSOLE 1 <nonce, 32 hex>\n
///     client: <vm> <hex HMAC-SHA256(key, "<nonce> <vm>")>\n
///     server: OK\n  |  ERR <reason>\n (and closes)
public enum ConsoleRelay {
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    public static let defaultPort = 7788
    public static let defaultKeyFile = "/etc/corosync/authkey"
    static let greeting = "CLEVERVM-CONSOLE 1"

    static func proof(key: [UInt8], nonce: String, vm: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Array("\(nonce) \(vm)".utf8), using: SymmetricKey(data: key))
        return code.map { String(format: "%02x", $0) }.joined()
    }

    /// The relay's listening side: one thread accepts, one thread per session. `consoleSocket` maps a VM to its
    /// console socket on this host (nil: it does not run here).
    public final class Server: @unchecked Sendable {
        // Safety: `listener` is set once in init and closed once in stop; sessions own their file descriptors.
        public let port: Int
        private let listener: Int32
        private let key: [UInt8]
        private let consoleSocket: @Sendable (String) -> String?

        public init(address: String, port: Int, key: [UInt8], consoleSocket: @escaping @Sendable (String) -> String?) throws {
            guard !key.isEmpty else { throw Failure("the console relay needs a non-empty key") }
            self.key = key
            self.consoleSocket = consoleSocket
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure("socket: \(String(cString: strerror(errno)))") }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var bound = sockaddr_in()
            bound.sin_family = sa_family_t(AF_INET)
            bound.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, address, &bound.sin_addr) == 1 else {
                close(fd)
                throw Failure("'\(address)' is not an IPv4 address")
            }
            let result = withUnsafePointer(to: &bound) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard result == 0, listen(fd, 8) == 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw Failure("cannot listen on \(address):\(port): \(reason)")
            }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            self.port = Int(UInt16(bigEndian: bound.sin_port))
            self.listener = fd
            let thread = Thread { [self] in self.acceptLoop() }
            thread.name = "console-relay"
            thread.start()
        }

        /// Stops accepting; sessions already relaying end when either side closes.
        public func stop() { shutdown(self.listener, Int32(SHUT_RDWR)) }

        private func acceptLoop() {
            while true {
                let client = accept(self.listener, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    close(self.listener)
                    return
                }
                let thread = Thread { [self] in self.serve(client) }
                thread.start()
            }
        }

        private func serve(_ client: Int32) {
            defer { close(client) }
            var nonceBytes = [UInt8](repeating: 0, count: 16)
            for index in nonceBytes.indices { nonceBytes[index] = UInt8.random(in: 0...255) }
            let nonce = nonceBytes.map { String(format: "%02x", $0) }.joined()
            ConsoleSession.writeAll(client, Array("\(ConsoleRelay.greeting) \(nonce)\n".utf8)[...])
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            guard let line = ConsoleRelay.readLine(client) else { return }
            let words = line.split(separator: " ").map(String.init)
            guard words.count == 2, words[1] == ConsoleRelay.proof(key: self.key, nonce: nonce, vm: words[0]) else {
                ConsoleSession.writeAll(client, Array("ERR not authenticated\n".utf8)[...])
                return
            }
            timeout = timeval(tv_sec: 0, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            // A VM id names a file in the run directory: nothing that could point elsewhere.
            guard !words[0].contains("/"), !words[0].hasPrefix("."), let path = self.consoleSocket(words[0]),
                let console = try? ConsoleSession.connect(path)
            else {
                ConsoleSession.writeAll(client, Array("ERR \(words[0]) does not run on this host\n".utf8)[...])
                return
            }
            defer { close(console) }
            ConsoleSession.writeAll(client, Array("OK\n".utf8)[...])
            ConsoleRelay.pump(client, console)
        }
    }

    /// Reads one line byte by byte (the relay's handshake is two short lines; what follows belongs to the console).
    static func readLine(_ fd: Int32, limit: Int = 512) -> String? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while bytes.count < limit {
            guard read(fd, &byte, 1) == 1 else { return nil }
            if byte == 10 { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
        return nil
    }

    /// Copies both ways until either side closes.
    static func pump(_ one: Int32, _ other: Int32) {
        var fds = [pollfd(fd: one, events: Int16(POLLIN), revents: 0), pollfd(fd: other, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            guard poll(&fds, 2, -1) >= 0 else {
                if errno == EINTR { continue }
                return
            }
            for (from, to) in [(0, 1), (1, 0)] where fds[from].revents != 0 {
                let count = read(fds[from].fd, &buffer, buffer.count)
                if count <= 0 { return }
                ConsoleSession.writeAll(fds[to].fd, buffer[..<count])
            }
        }
    }

    /// The client side: a connected, authenticated file descriptor whose bytes are `vm`'s console.
    public static func connect(address: String, port: Int, vm: String, key: [UInt8]) throws(Failure) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket: \(String(cString: strerror(errno)))") }
        var peer = sockaddr_in()
        peer.sin_family = sa_family_t(AF_INET)
        peer.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, address, &peer.sin_addr) == 1 else {
            close(fd)
            throw Failure("'\(address)' is not an IPv4 address")
        }
        let connected = withUnsafePointer(to: &peer) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure("cannot reach the console relay on \(address):\(port): \(reason)")
        }
        guard let greeting = Self.readLine(fd), greeting.hasPrefix(Self.greeting + " ") else {
            close(fd)
            throw Failure("\(address):\(port) is not a CleverVM console relay")
        }
        let nonce = String(greeting.dropFirst(Self.greeting.count + 1))
        ConsoleSession.writeAll(fd, Array("\(vm) \(Self.proof(key: key, nonce: nonce, vm: vm))\n".utf8)[...])
        guard let answer = Self.readLine(fd) else {
            close(fd)
            throw Failure("the console relay on \(address) closed the connection")
        }
        guard answer == "OK" else {
            close(fd)
            throw Failure("console relay on \(address): \(answer.hasPrefix("ERR ") ? String(answer.dropFirst(4)) : answer)")
        }
        return fd
    }

    /// The cluster key: the Corosync authkey every host has (root-only).
    public static func key(file: String = ConsoleRelay.defaultKeyFile) throws(Failure) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: file), !data.isEmpty else {
            throw Failure("cannot read the cluster key \(file) (root only)")
        }
        return Array(data)
    }
}
