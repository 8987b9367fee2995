import CleverReplication
import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Relays a VM's serial console or its VNC display between hosts: the host that runs the VM listens on its cluster
/// address; `clevervm console` and the web console on any host connect there. A session names its channel
/// (`serial`: the console socket `RUN/VM.console`; `vnc`: the display socket `RUN/VM.vnc`) and proves it holds the
/// cluster's key (every host's root-only Corosync authkey) by an HMAC-SHA256 over both sides' fresh nonces, the
/// channel and the VM's name; then the channel's bytes flow both ways, encrypted, between the TCP connection and the
/// VM's socket until either side closes.
///
///     server: CLEVERVM-CONSOLE 3 <server nonce, 32 hex>\n
///     client: <channel> <vm> <client nonce, 32 hex> <hex HMAC-SHA256(key, "<server nonce> <client nonce> <channel> <vm>")>\n
///     server: OK\n  |  ERR <reason>\n (and closes)
///     then, each way: frames of <UInt32 length, big-endian> <ciphertext> <16-byte tag>
///
/// Frames are the replication link's (`Replication.FrameSealer.encrypt`, AES-256-GCM, numbered per direction), with
/// keys derived per session from the cluster key and both nonces (`SessionKeys.derive`, purpose
/// "clevervm-console-v3", the channel and the VM as subject). A frame that fails its check (changed, dropped,
/// replayed, reordered, longer than `frameLimit`) ends the session. Version 2 had no channel (serial only); a
/// version 2 peer is told the versions differ.
public enum ConsoleRelay {
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// What a session carries: the VM's serial console, or its VNC display (RFB, spoken by noVNC in the browser).
    public enum Channel: String, CaseIterable, Hashable, Sendable {
        case serial
        case vnc
    }

    public static let defaultPort = 7788
    public static let defaultKeyFile = "/etc/corosync/authkey"
    static let greetingWord = "CLEVERVM-CONSOLE"
    static let version = 3
    static let greeting = "\(greetingWord) \(version)"
    /// The most bytes in one frame; a longer frame is not ours. 16 KiB: a VNC screen update fills many.
    static let frameLimit = 16384
    static let tagSize = 16

    static func proof(key: [UInt8], serverNonce: String, clientNonce: String, channel: Channel, vm: String) -> [UInt8] {
        Replication.authProof(secret: key, transcript: Array("\(serverNonce) \(clientNonce) \(channel.rawValue) \(vm)".utf8))
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    static func freshNonce() -> [UInt8] { (0..<16).map { _ in UInt8.random(in: 0...255) } }

    /// The session's keys, one per direction; the server is "relay", the client "client".
    static func keys(key: [UInt8], channel: Channel, vm: String, server: Bool, serverNonce: [UInt8], clientNonce: [UInt8]) -> Replication.SessionKeys {
        Replication.SessionKeys.derive(secret: key, purpose: "clevervm-console-v3", subject: "\(channel.rawValue) \(vm)",
                                       localNode: server ? "relay" : "client", peerNode: server ? "client" : "relay",
                                       localChallenge: server ? serverNonce : clientNonce,
                                       peerChallenge: server ? clientNonce : serverNonce)
    }

    /// The relay's listening side: one thread accepts, one thread per session. `socket` maps a channel and a VM to
    /// the VM's socket on this host (nil: it does not run here, or has no such channel).
    public final class Server: @unchecked Sendable {
        // Safety: `listener` is set once in init and closed once in stop; sessions own their file descriptors.
        public let port: Int
        private let listener: Int32
        private let key: [UInt8]
        private let socket: @Sendable (Channel, String) -> String?

        public init(address: String, port: Int, key: [UInt8], socket: @escaping @Sendable (Channel, String) -> String?) throws {
            guard !key.isEmpty else { throw Failure("the console relay needs a non-empty key") }
            self.key = key
            self.socket = socket
            let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
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
            let nonce = ConsoleRelay.freshNonce()
            ConsoleSession.writeAll(client, Array("\(ConsoleRelay.greeting) \(ConsoleRelay.hex(nonce))\n".utf8)[...])
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            guard let line = ConsoleRelay.readLine(client) else { return }
            let words = line.split(separator: " ").map(String.init)
            guard words.count == 4, let channel = Channel(rawValue: words[0]), let clientNonce = ConsoleRelay.bytes(hex: words[2]),
                clientNonce.count == 16, let proof = ConsoleRelay.bytes(hex: words[3]),
                Replication.constantTimeEqual(
                    proof,
                    ConsoleRelay.proof(key: self.key, serverNonce: ConsoleRelay.hex(nonce), clientNonce: words[2], channel: channel, vm: words[1]))
            else {
                ConsoleSession.writeAll(client, Array("ERR not authenticated\n".utf8)[...])
                return
            }
            let vm = words[1]
            timeout = timeval(tv_sec: 0, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            // A VM id names a file in the run directory: nothing that could point elsewhere.
            guard !vm.contains("/"), !vm.hasPrefix("."), let path = self.socket(channel, vm) else {
                ConsoleSession.writeAll(client, Array("ERR \(vm) does not run on this host\(channel == .vnc ? " with a VNC display" : "")\n".utf8)[...])
                return
            }
            guard let target = try? ConsoleSession.connect(path) else {
                ConsoleSession.writeAll(client, Array("ERR \(vm)'s \(channel == .vnc ? "VNC display" : "console") does not answer\n".utf8)[...])
                return
            }
            defer { close(target) }
            ConsoleSession.writeAll(client, Array("OK\n".utf8)[...])
            ConsoleRelay.pump(sealed: client, plain: target,
                              keys: ConsoleRelay.keys(key: self.key, channel: channel, vm: vm, server: true, serverNonce: nonce, clientNonce: clientNonce))
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

    /// Copies both ways until either side closes or a frame fails its check: bytes read from `plain` go out on
    /// `sealed` as encrypted frames, frames read from `sealed` are opened and written to `plain`.
    static func pump(sealed: Int32, plain: Int32, keys: Replication.SessionKeys) {
        var sender = Replication.FrameSealer(key: keys.sending)
        var receiver = FrameReader(opener: Replication.FrameSealer(key: keys.receiving))
        var fds = [pollfd(fd: sealed, events: Int16(POLLIN), revents: 0), pollfd(fd: plain, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: Self.frameLimit)
        while true {
            guard poll(&fds, 2, -1) >= 0 else {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 {
                let count = read(plain, &buffer, buffer.count)
                if count <= 0 { return }
                ConsoleSession.writeAll(sealed, Self.frame(Array(buffer[..<count]), &sender)[...])
            }
            if fds[0].revents != 0 {
                let count = read(sealed, &buffer, buffer.count)
                if count <= 0 { return }
                receiver.append(buffer[..<count])
                while let next = receiver.next() {
                    guard case .bytes(let bytes) = next else { return }
                    ConsoleSession.writeAll(plain, bytes[...])
                }
            }
        }
    }

    /// One frame on the wire: length, ciphertext, tag; the length is the associated data.
    static func frame(_ payload: [UInt8], _ sealer: inout Replication.FrameSealer) -> [UInt8] {
        let length = UInt32(payload.count)
        let header = (0..<4).map { UInt8(truncatingIfNeeded: length >> (24 - 8 * $0)) }
        let (ciphertext, tag) = sealer.encrypt(header: header, payload: payload)
        return header + ciphertext + tag
    }

    /// Cuts the bytes received into frames and opens each in order.
    struct FrameReader {
        var opener: Replication.FrameSealer
        var pending: [UInt8] = []

        enum Next: Equatable {
            case bytes([UInt8])
            /// A frame failed its check, or its length is no frame's: the session ends.
            case broken
        }

        mutating func append(_ bytes: ArraySlice<UInt8>) { self.pending += bytes }

        /// The next whole frame's console bytes; nil until one has arrived.
        mutating func next() -> Next? {
            guard self.pending.count >= 4 else { return nil }
            let length = self.pending[0..<4].reduce(0) { $0 << 8 | Int($1) }
            guard length <= ConsoleRelay.frameLimit else { return .broken }
            let total = 4 + length + ConsoleRelay.tagSize
            guard self.pending.count >= total else { return nil }
            let header = Array(self.pending[0..<4])
            let ciphertext = Array(self.pending[4..<4 + length])
            let tag = Array(self.pending[4 + length..<total])
            self.pending.removeFirst(total)
            guard let plain = self.opener.decrypt(header: header, ciphertext: ciphertext, tag: tag) else { return .broken }
            return .bytes(plain)
        }
    }

    /// The client side: a file descriptor whose bytes are `vm`'s channel (its console, or its VNC display's RFB),
    /// in plain. It is one end of a socket pair; a thread of its own encrypts and decrypts between the other end and
    /// the authenticated TCP connection, and closes both when either side closes or a frame fails its check.
    public static func connect(address: String, port: Int, channel: Channel = .serial, vm: String, key: [UInt8]) throws(Failure) -> Int32 {
        let (fd, keys) = try Self.handshake(address: address, port: port, channel: channel, vm: vm, key: key)
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else {
            close(fd)
            throw Failure("socketpair: \(String(cString: strerror(errno)))")
        }
        let (local, inner) = (pair[0], pair[1])
        let thread = Thread {
            Self.pump(sealed: fd, plain: inner, keys: keys)
            close(fd)
            close(inner)
        }
        thread.name = "console-relay-client"
        thread.start()
        return local
    }

    /// Connects and authenticates; the TCP connection and the session's keys.
    static func handshake(address: String, port: Int, channel: Channel = .serial, vm: String, key: [UInt8]) throws(Failure)
        -> (Int32, Replication.SessionKeys)
    {
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
        guard let greeting = Self.readLine(fd), greeting.hasPrefix(Self.greetingWord + " ") else {
            close(fd)
            throw Failure("\(address):\(port) is not a CleverVM console relay")
        }
        guard greeting.hasPrefix(Self.greeting + " ") else {
            close(fd)
            throw Failure("the console relay on \(address):\(port) speaks another version (\(greeting.split(separator: " ").dropFirst().first ?? "?"), this host \(Self.version)): update both hosts")
        }
        let serverHex = String(greeting.dropFirst(Self.greeting.count + 1))
        guard let serverNonce = Self.bytes(hex: serverHex), serverNonce.count == 16 else {
            close(fd)
            throw Failure("\(address):\(port) sent no valid nonce")
        }
        let clientNonce = Self.freshNonce()
        let clientHex = Self.hex(clientNonce)
        ConsoleSession.writeAll(
            fd,
            Array(
                "\(channel.rawValue) \(vm) \(clientHex) \(Self.hex(Self.proof(key: key, serverNonce: serverHex, clientNonce: clientHex, channel: channel, vm: vm)))\n"
                    .utf8)[...])
        guard let answer = Self.readLine(fd) else {
            close(fd)
            throw Failure("the console relay on \(address) closed the connection")
        }
        guard answer == "OK" else {
            close(fd)
            throw Failure("console relay on \(address): \(answer.hasPrefix("ERR ") ? String(answer.dropFirst(4)) : answer)")
        }
        return (fd, Self.keys(key: key, channel: channel, vm: vm, server: false, serverNonce: serverNonce, clientNonce: clientNonce))
    }

    /// The cluster key: the Corosync authkey every host has (root-only).
    public static func key(file: String = ConsoleRelay.defaultKeyFile) throws(Failure) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: file), !data.isEmpty else {
            throw Failure("cannot read the cluster key \(file) (root only)")
        }
        return Array(data)
    }
}
