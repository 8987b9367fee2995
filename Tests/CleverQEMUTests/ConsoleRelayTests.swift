import CleverReplication
import CleverTesting
import Foundation
import Testing

@testable import CleverQEMU

#if canImport(Glibc)
import Glibc
#endif

/// The console relay without a VM: a unix socket that answers like a console ("console got: <line>"), a relay in
/// front of it, and the client. What travels on TCP is encrypted; a changed frame ends the session.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ConsoleRelayTests {
    static let key = Array("the cluster key of this test".utf8)

    @Test func consoleBytesArriveAndComeBackButNeverCrossTheNetworkInTheClear() throws {
        let console = try EchoSocket(prefix: "console got: ")
        defer { console.stop() }
        let relay = try ConsoleRelay.Server(address: "127.0.0.1", port: 0, key: Self.key) { channel, vm in vm == "vm1" && channel == .serial ? console.path : nil }
        defer { relay.stop() }
        // A recording proxy between client and relay: what an eavesdropper on the cluster network sees.
        let proxy = try RecordingProxy(to: relay.port)
        defer { proxy.stop() }
        let fd = try ConsoleRelay.connect(address: "127.0.0.1", port: proxy.port, vm: "vm1", key: Self.key)
        defer { close(fd) }
        ConsoleSession.writeAll(fd, Array("secret-password-42\n".utf8)[...])
        let answer = Self.read(fd, until: "console got: secret-password-42")
        #expect(answer.contains("console got: secret-password-42"), "\(answer)")
        let wire = proxy.recorded
        #expect(wire.count > 40, "the proxy saw the session")
        #expect(!Self.contains(wire, "secret-password-42"), "the console's bytes cross the network encrypted")
        #expect(!Self.contains(wire, "console got"), "in both directions")
        #expect(Self.contains(wire, "CLEVERVM-CONSOLE 3 "), "the handshake is plain text")
        #expect(Self.contains(wire, "serial vm1 "), "and names its channel")
    }

    @Test func aChangedOrReplayedFrameEndsTheSession() throws {
        let console = try EchoSocket(prefix: "console got: ")
        defer { console.stop() }
        let relay = try ConsoleRelay.Server(address: "127.0.0.1", port: 0, key: Self.key) { channel, vm in vm == "vm1" && channel == .serial ? console.path : nil }
        defer { relay.stop() }
        for tamper in ["flip a ciphertext bit", "flip a tag bit", "replay the first frame", "claim a longer frame"] {
            let (fd, keys) = try ConsoleRelay.handshake(address: "127.0.0.1", port: relay.port, vm: "vm1", key: Self.key)
            defer { close(fd) }
            var sender = Replication.FrameSealer(key: keys.sending)
            var reader = ConsoleRelay.FrameReader(opener: Replication.FrameSealer(key: keys.receiving))
            let first = ConsoleRelay.frame(Array("hello\n".utf8), &sender)
            ConsoleSession.writeAll(fd, first[...])
            #expect(Self.readFrames(fd, &reader, until: "console got: hello").contains("console got: hello"), "\(tamper): a good frame passes")
            var bad = ConsoleRelay.frame(Array("rm -rf /\n".utf8), &sender)
            switch tamper {
            case "flip a ciphertext bit": bad[5] ^= 0x01
            case "flip a tag bit": bad[bad.count - 1] ^= 0x80
            case "replay the first frame": bad = first
            default: bad[0] = 0x7f
            }
            ConsoleSession.writeAll(fd, bad[...])
            #expect(Self.closed(fd), "\(tamper): the relay ends the session")
            #expect(!console.received.contains("rm -rf"), "\(tamper): nothing of the bad frame reaches the console")
        }
        // A frame the relay sent, changed on its way, ends the client's session too.
        var reader = ConsoleRelay.FrameReader(opener: Replication.FrameSealer(key: Array(repeating: 7, count: 32)))
        var sealer = Replication.FrameSealer(key: Array(repeating: 7, count: 32))
        var frame = ConsoleRelay.frame(Array("console output".utf8), &sealer)
        frame[6] ^= 0x20
        reader.append(frame[...])
        #expect(reader.next() == .broken)
    }

    @Test func aWrongKeyGetsNoConsole() throws {
        let console = try EchoSocket(prefix: "console got: ")
        defer { console.stop() }
        let relay = try ConsoleRelay.Server(address: "127.0.0.1", port: 0, key: Self.key) { channel, vm in vm == "vm1" && channel == .serial ? console.path : nil }
        defer { relay.stop() }
        #expect(throws: ConsoleRelay.Failure("console relay on 127.0.0.1: not authenticated")) {
            try ConsoleRelay.connect(address: "127.0.0.1", port: relay.port, vm: "vm1", key: Array("wrong".utf8))
        }
        #expect(throws: ConsoleRelay.Failure("console relay on 127.0.0.1: vm2 does not run on this host")) {
            try ConsoleRelay.connect(address: "127.0.0.1", port: relay.port, vm: "vm2", key: Self.key)
        }
    }

    @Test func theVNCChannelReachesTheDisplaySocketAndNotTheConsole() throws {
        let console = try EchoSocket(prefix: "console got: ")
        defer { console.stop() }
        let display = try EchoSocket(prefix: "console got: ")
        defer { display.stop() }
        let relay = try ConsoleRelay.Server(address: "127.0.0.1", port: 0, key: Self.key) { channel, vm in
            guard vm == "vm1" else { return nil }
            return channel == .vnc ? display.path : console.path
        }
        defer { relay.stop() }
        let fd = try ConsoleRelay.connect(address: "127.0.0.1", port: relay.port, channel: .vnc, vm: "vm1", key: Self.key)
        defer { close(fd) }
        ConsoleSession.writeAll(fd, Array("RFB 003.008\n".utf8)[...])
        #expect(Self.read(fd, until: "console got: RFB 003.008").contains("console got: RFB 003.008"))
        #expect(display.received.contains("RFB 003.008"))
        #expect(!console.received.contains("RFB"), "the serial console got nothing of the VNC session")
        // A VM without a display is refused on the vnc channel, and says so.
        let noDisplay = try ConsoleRelay.Server(address: "127.0.0.1", port: 0, key: Self.key) { channel, vm in
            channel == .serial && vm == "vm1" ? console.path : nil
        }
        defer { noDisplay.stop() }
        #expect(throws: ConsoleRelay.Failure("console relay on 127.0.0.1: vm1 does not run on this host with a VNC display")) {
            try ConsoleRelay.connect(address: "127.0.0.1", port: noDisplay.port, channel: .vnc, vm: "vm1", key: Self.key)
        }
    }

    /// The handshake's bytes, pinned: a change to them is a protocol change (bump `ConsoleRelay.version`).
    @Test func theHandshakeIsVersion3WithTheChannelInTheProof() {
        #expect(ConsoleRelay.greeting == "CLEVERVM-CONSOLE 3")
        let serverNonce = String(repeating: "ab", count: 16)
        let clientNonce = String(repeating: "cd", count: 16)
        let serial = ConsoleRelay.proof(key: Self.key, serverNonce: serverNonce, clientNonce: clientNonce, channel: .serial, vm: "vm1")
        let vnc = ConsoleRelay.proof(key: Self.key, serverNonce: serverNonce, clientNonce: clientNonce, channel: .vnc, vm: "vm1")
        #expect(serial == Replication.authProof(secret: Self.key, transcript: Array("\(serverNonce) \(clientNonce) serial vm1".utf8)))
        #expect(serial != vnc, "a proof for the console is no proof for the display")
        let keys = { (channel: ConsoleRelay.Channel) in
            ConsoleRelay.keys(key: Self.key, channel: channel, vm: "vm1", server: true, serverNonce: Array(repeating: 1, count: 16),
                              clientNonce: Array(repeating: 2, count: 16))
        }
        #expect(keys(.serial).sending != keys(.vnc).sending, "each channel has keys of its own")
        let client = ConsoleRelay.keys(key: Self.key, channel: .vnc, vm: "vm1", server: false, serverNonce: Array(repeating: 1, count: 16),
                                       clientNonce: Array(repeating: 2, count: 16))
        #expect(client.sending == keys(.vnc).receiving && client.receiving == keys(.vnc).sending)
    }

    @Test func aVersion2RelayIsToldApart() throws {
        let listener = try RecordingProxy.listenOnce(greeting: "CLEVERVM-CONSOLE 2 " + String(repeating: "0", count: 32) + "\n")
        #expect(throws: ConsoleRelay.Failure("the console relay on 127.0.0.1:\(listener) speaks another version (2, this host 3): update both hosts")) {
            try ConsoleRelay.connect(address: "127.0.0.1", port: listener, vm: "vm1", key: Self.key)
        }
    }

    // MARK: Helpers

    static func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
        let bytes = Array(needle.utf8)
        guard haystack.count >= bytes.count else { return false }
        return (0...(haystack.count - bytes.count)).contains { Array(haystack[$0..<$0 + bytes.count]) == bytes }
    }

    /// Reads plain bytes for up to 5 s until `expected` is among them.
    static func read(_ fd: Int32, until expected: String) -> String {
        var seen = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = Date().addingTimeInterval(5)
        while !seen.contains(expected), Date() < deadline {
            guard poll(&poller, 1, 100) > 0 else { continue }
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            seen += String(decoding: buffer[..<count], as: UTF8.self)
        }
        return seen
    }

    /// Reads frames from the relay for up to 5 s until their bytes contain `expected`.
    static func readFrames(_ fd: Int32, _ reader: inout ConsoleRelay.FrameReader, until expected: String) -> String {
        var seen = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = Date().addingTimeInterval(5)
        while !seen.contains(expected), Date() < deadline {
            guard poll(&poller, 1, 100) > 0 else { continue }
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            reader.append(buffer[..<count])
            while case .bytes(let bytes)? = reader.next() { seen += String(decoding: bytes, as: UTF8.self) }
        }
        return seen
    }

    /// Whether the peer closes `fd` within 5 s.
    static func closed(_ fd: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            guard poll(&poller, 1, 100) > 0 else { continue }
            if Glibc.read(fd, &buffer, buffer.count) <= 0 { return true }
        }
        return false
    }
}


extension RecordingProxy {
    /// A listener on 127.0.0.1 that sends `greeting` to its one client and closes: a relay of another version.
    static func listenOnce(greeting: String) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 1) == 0 else { throw LabError("cannot listen") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        Thread {
            let client = accept(fd, nil, nil)
            ConsoleSession.writeAll(client, Array(greeting.utf8)[...])
            usleep(200_000)
            close(client)
            close(fd)
        }.start()
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A TCP proxy on 127.0.0.1 that forwards one connection at a time to `port` and records every byte both ways.
final class RecordingProxy: @unchecked Sendable {
    // Safety: `bytes` is guarded by `lock`; the listener is closed once in stop.
    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var bytes: [UInt8] = []

    var recorded: [UInt8] { self.lock.withLock { self.bytes } }

    init(to target: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 4) == 0 else { throw LabError("the proxy cannot listen") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.port = Int(UInt16(bigEndian: address.sin_port))
        self.listener = fd
        Thread { [self] in
            while true {
                let client = accept(self.listener, nil, nil)
                if client < 0 { return }
                let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var peer = sockaddr_in()
                peer.sin_family = sa_family_t(AF_INET)
                peer.sin_port = in_port_t(UInt16(target).bigEndian)
                peer.sin_addr.s_addr = inet_addr("127.0.0.1")
                _ = withUnsafePointer(to: &peer) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                Thread { [self] in self.forward(client, upstream) }.start()
            }
        }.start()
    }

    private func forward(_ one: Int32, _ other: Int32) {
        defer {
            close(one)
            close(other)
        }
        var fds = [pollfd(fd: one, events: Int16(POLLIN), revents: 0), pollfd(fd: other, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 4096)
        while poll(&fds, 2, -1) > 0 {
            for (from, to) in [(0, 1), (1, 0)] where fds[from].revents != 0 {
                let count = read(fds[from].fd, &buffer, buffer.count)
                if count <= 0 { return }
                self.lock.withLock { self.bytes += buffer[..<count] }
                ConsoleSession.writeAll(fds[to].fd, buffer[..<count])
            }
        }
    }

    func stop() {
        shutdown(self.listener, Int32(SHUT_RDWR))
        close(self.listener)
    }
}
