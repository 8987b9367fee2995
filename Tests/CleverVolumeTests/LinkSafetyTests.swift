#if canImport(Glibc)
import Glibc
#endif
import CleverBytes
import CleverReplication
import CleverSystem
import CleverVolume
import Foundation
import Testing

/// The test plays a replication peer (with the shared secret, or without it) against a real volume process,
/// to send what a broken or hostile peer would.
final class FakePeer {
    let fd: Int32
    var machine: Replication.Handshake
    var sealer: Replication.FrameSealer?
    var opener: Replication.FrameSealer?
    var failure: String?

    init(address: String, node: String, peer: String, size: UInt64, secret: [UInt8]) throws {
        self.fd = try Sockets.connectTCP(address)
        Sockets.setReceiveTimeout(self.fd, seconds: 10)
        self.machine = Replication.Handshake(
            local: .init(volume: "vol0", node: node, peer: peer, volumeSize: size, policies: .init(), protocolMode: .C),
            secret: secret, challenge: Array(repeating: 0x42, count: 32))
    }

    deinit { close(self.fd) }

    func send(_ frame: Replication.Frame) -> Bool {
        guard var sealer = self.sealer else { return Sockets.writeFully(self.fd, Replication.Wire.encode(frame)) }
        let (type, payload) = Replication.Wire.encodePayload(frame)
        let header = Replication.Wire.header(type: type, length: payload.count, sealed: true)
        let tag = sealer.seal(header: header, payload: payload)
        self.sealer = sealer
        return Sockets.writeFully(self.fd, header + payload + tag)
    }

    func read() -> Replication.Frame? {
        guard let header = Sockets.readFully(self.fd, count: 12),
            case .success(let decoded) = Replication.Wire.decodeHeader(header),
            let payload = Sockets.readFully(self.fd, count: Int(decoded.length))
        else { return nil }
        if decoded.isSealed {
            guard let tag = Sockets.readFully(self.fd, count: 16), self.opener?.open(header: header, payload: payload, tag: tag) == true
            else { return nil }
        }
        guard case .success(let frame) = Replication.Wire.decode(header: decoded, payload: payload) else { return nil }
        return frame
    }

    /// Runs the handshake with `report`; true once established.
    func handshake(report: Replication.NodeReport, size: UInt64) -> Bool {
        var queue = self.machine.start()
        while true {
            while !queue.isEmpty {
                switch queue.removeFirst() {
                case .send(let frame): _ = self.send(frame)
                case .authenticated(let keys):
                    self.sealer = Replication.FrameSealer(key: keys.sending)
                    self.opener = Replication.FrameSealer(key: keys.receiving)
                    queue += self.machine.reportReady(Replication.Report(
                        node: report, volumeSize: size, policies: .init(), protocolMode: .C, allowTwoPrimaries: false))
                case .sendBitmap:
                    _ = self.send(.bitmapChunk(startWord: 0, words: Replication.DirtyBitmap(volumeSize: size).encoded))
                    _ = self.send(.bitmapDone)
                case .decided: break
                case .established: return true
                case .fail(let reason, _):
                    self.failure = reason
                    return false
                }
            }
            guard let frame = self.read() else {
                self.failure = "read failed"
                return false
            }
            queue = self.machine.receive(frame)
        }
    }
}

extension LiveVolumeTests {
    static let secretText = "shared-secret-for-tests-0123456789"

    /// Only beta runs (it listens: the greater name); the test is alpha.
    func startBetaAlone(_ name: String) throws -> VolumeLab {
        let lab = try VolumeLab(name)
        try lab.configure("beta")
        try lab.start("beta")
        return lab
    }

    func alphaReport(_ lab: VolumeLab) -> Replication.NodeReport {
        // Just created, like beta: no sync, both stay Inconsistent.
        Replication.NodeReport(name: "alpha", role: .secondary, disk: .inconsistent, generations: .init())
    }

    @Test(arguments: [
        Replication.Frame.resyncAck(offset: UInt64.max - 100, length: 4096),
        .resyncData(offset: UInt64.max - 10, data: pattern(1, 16)),
        .write(sequence: 1, offset: UInt64.max - 10, fua: false, data: pattern(2, 16)),
        .verifyDigests(startBlock: UInt64.max, digests: [1, 2]),
        .verifyRequest(startBlock: UInt64.max - 1, count: 4),
    ])
    func overflowingPeerOffsetsAreRefusedNotACrash(frame: Replication.Frame) throws {
        let lab = try self.startBetaAlone("overflow")
        defer { lab.teardown() }
        let peer = try FakePeer(address: "127.0.0.1:\(lab.ports["beta"]!)", node: "alpha", peer: "beta", size: lab.size,
            secret: Array(Self.secretText.utf8))
        #expect(peer.handshake(report: self.alphaReport(lab), size: lab.size), "handshake: \(peer.failure ?? "")")
        try lab.wait("beta", "connected to the fake peer") { $0.connection == "Connected" }
        #expect(peer.send(frame))
        Thread.sleep(forTimeInterval: 0.5)
        #expect(lab.processes["beta"]?.isRunning == true, "beta crashed on \(frame); log:\n\(lab.log("beta"))")
        let status = try lab.status("beta")
        print("after \(frame): \(status.line) (\(status.lastLinkError ?? "-"))")
        #expect(status.connection != "Connected")
        #expect(status.lastLinkError?.contains("outside the volume") == true)
    }

    @Test func aTamperedFrameAfterTheHandshakeEndsTheLink() throws {
        let lab = try self.startBetaAlone("tamper")
        defer { lab.teardown() }
        let peer = try FakePeer(address: "127.0.0.1:\(lab.ports["beta"]!)", node: "alpha", peer: "beta", size: lab.size,
            secret: Array(Self.secretText.utf8))
        #expect(peer.handshake(report: self.alphaReport(lab), size: lab.size))
        try lab.wait("beta", "connected to the fake peer") { $0.connection == "Connected" }
        // A role change with a tag for other bytes: what an attacker on the path could inject.
        let (type, payload) = Replication.Wire.encodePayload(.roleChanged(.primary))
        let header = Replication.Wire.header(type: type, length: payload.count, sealed: true)
        #expect(Sockets.writeFully(peer.fd, header + payload + Array(repeating: 0, count: 16)))
        try lab.wait("beta", "the tampered frame ended the link") { $0.connection != "Connected" }
        let status = try lab.status("beta")
        #expect(status.lastLinkError?.contains("integrity check") == true)
        #expect(status.peerRole != "Primary")
        // And an unsealed frame after the handshake is refused the same way.
        let second = try FakePeer(address: "127.0.0.1:\(lab.ports["beta"]!)", node: "alpha", peer: "beta", size: lab.size,
            secret: Array(Self.secretText.utf8))
        #expect(second.handshake(report: self.alphaReport(lab), size: lab.size))
        try lab.wait("beta", "reconnected") { $0.connection == "Connected" }
        #expect(Sockets.writeFully(second.fd, Replication.Wire.encode(.roleChanged(.primary))))
        try lab.wait("beta", "the unsealed frame ended the link") { $0.connection != "Connected" }
    }

    @Test func silentAndOversizedStrangersDoNotHoldUpThePeer() throws {
        let lab = try VolumeLab("preauth")
        defer { lab.teardown() }
        try lab.configure("alpha")
        try lab.configure("beta")
        try lab.start("beta")
        let address = "127.0.0.1:\(lab.ports["beta"]!)"
        // A stranger that connects and says nothing, and one that announces a 32 MiB hello.
        let silent = try Sockets.connectTCP(address)
        defer { close(silent) }
        let oversized = try Sockets.connectTCP(address)
        defer { close(oversized) }
        #expect(Sockets.writeFully(oversized, Replication.Wire.header(type: .hello, length: 32 << 20, sealed: false)))
        var closed = false
        do {
            Sockets.setReceiveTimeout(oversized, seconds: 3)
            var byte: UInt8 = 0
            while true {
                let got = Glibc.read(oversized, &byte, 1)
                if got <= 0 { closed = true; break }
            }
        }
        #expect(closed, "a 32 MiB frame before authentication must end the connection at once")
        let started = Date()
        try lab.start("alpha")
        try lab.wait("alpha", timeout: 8, "connected while a stranger holds a connection open") {
            $0.connection == "Connected"
        }
        print("connected \(String(format: "%.2f", Date().timeIntervalSince(started))) s after alpha started, "
            + "with a silent stranger connected")
    }

    @Test func aSecretFileOthersCanReadIsRefused() throws {
        let lab = try VolumeLab("secret-mode")
        defer { lab.teardown() }
        try lab.configure("beta")
        chmod(lab.path("secret"), 0o644)
        #expect(throws: (any Error).self) { try lab.start("beta") }
        #expect(lab.log("beta").contains("has mode 644: group or others may read or change it"))
    }

    @Test func aGeneratedBinarySecretLinksBothSides() throws {
        let lab = try VolumeLab("secret-binary")
        defer { lab.teardown() }
        try? FileManager.default.removeItem(atPath: lab.path("secret"))
        let (status, output) = run([volumeBinary, "secret", lab.path("secret")])
        #expect(status == 0, "\(output)")
        let bytes = AtomicFile.read(lab.path("secret")) ?? []
        #expect(bytes.count == 32)
        #expect(SecretFile.secret(from: bytes) == bytes)
        var info = stat()
        stat(lab.path("secret"), &info)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(run([volumeBinary, "secret", lab.path("secret")]).0 != 0, "an existing secret is never overwritten")
        try lab.startPair()
    }

    /// Issue 11: both sides' dry runs give the same numbers (those both sent at the last handshake), and one
    /// `resolve` on either host recovers both.
    @Test(arguments: ["alpha", "beta"])
    func oneResolveOnEitherHostRecoversBothAndDryRunsAgree(resolveOn: String) throws {
        let lab = try VolumeLab("resolve-\(resolveOn)")
        defer { lab.teardown() }
        try lab.startPair()
        try lab.control("alpha", .init(command: .disconnect))
        try lab.control("beta", .init(command: .disconnect))
        let alpha = try NBDClient(socket: lab.path("alpha.nbd"))
        for index in 0..<6 { try alpha.write(offset: UInt64(index) * 4096, pattern(0xAA)) }
        try lab.control("beta", .init(command: .promote, peerOutdated: true))
        let beta = try NBDClient(socket: lab.path("beta.nbd"))
        for index in 0..<3 { try beta.write(offset: UInt64(200 + index) * 4096, pattern(0xBB)) }
        beta.disconnect()
        Thread.sleep(forTimeInterval: 0.2)
        try lab.control("beta", .init(command: .demote))
        try lab.control("alpha", .init(command: .connect))
        try lab.control("beta", .init(command: .connect))
        try lab.wait("alpha", "split brain") { $0.splitBrain != nil }
        try lab.wait("beta", "split brain") { $0.splitBrain != nil }
        // Alpha is still primary and its guest goes on writing after the split brain was found.
        for index in 6..<10 { try alpha.write(offset: UInt64(index) * 4096, pattern(0xAA)) }
        try alpha.flush()
        alpha.disconnect()
        let expected = "alpha changed 10 blocks (40 KiB); beta changed 3 blocks (12 KiB)"
        var dryRuns: [String: String] = [:]
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            for node in lab.nodes {
                dryRuns[node] = try lab.control(node, .init(command: .resolve, discard: "beta", dryRun: true)).message
            }
            if dryRuns.values.allSatisfy({ $0.contains(expected) }) { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        print("dry runs: \(dryRuns)")
        #expect(dryRuns["alpha"]?.contains(expected) == true)
        #expect(dryRuns["beta"]?.contains(expected) == true)
        #expect(try lab.status("alpha").splitBrain == lab.status("beta").splitBrain)

        // One command, on one host only: on alpha the volume daemon's, on beta the operator's
        // `clevervm volume resolve --json`, whose output is one JSON document.
        if resolveOn == "alpha" {
            let (code, output) = run([volumeBinary, "resolve", "--socket", lab.path("\(resolveOn).ctl"), "--discard", "beta",
                "--timeout", "30"], timeout: 60)
            print("resolve on \(resolveOn): \(output)")
            #expect(code == 0)
            #expect(output.contains("resync finished"))
        } else {
            // `clevervm volume` finds the socket by volume name in its run directory.
            let runDirectory = lab.path("cli-\(resolveOn)")
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: runDirectory + "/vol0.ctl", withDestinationPath: lab.path("\(resolveOn).ctl"))
            let clevervm = URL(fileURLWithPath: volumeBinary).deletingLastPathComponent().appendingPathComponent("clevervm").path
            let process = Process()
            process.executableURL = URL(fileURLWithPath: clevervm)
            process.arguments = ["volume", "resolve", "vol0", "--run-directory", runDirectory, "--discard", "beta", "--timeout", "30", "--json"]
            let stdout = Pipe()
            process.standardOutput = stdout
            try process.run()
            let data = stdout.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            print("clevervm volume resolve --json on \(resolveOn): \(String(decoding: data, as: UTF8.self))")
            #expect(process.terminationStatus == 0)
            let document = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            #expect(document?["resyncFinished"] as? Bool == true, "one JSON document that says the resync finished")
            #expect((document?["reply"] as? [String: Any])?["ok"] as? Bool == true)
        }
        for node in lab.nodes {
            try lab.wait(node, timeout: 5, "both sides synced") {
                $0.connection == "Connected" && $0.disk == "UpToDate" && $0.peerDisk == "UpToDate" && $0.outOfSyncBlocks == 0
            }
        }
        #expect(lab.filesEqual("alpha.img", "beta.img"))
        let data = AtomicFile.read(lab.path("beta.img"))!
        #expect(data[9 * 4096] == 0xAA && data[200 * 4096] != 0xBB)
    }
}

extension LiveVolumeTests {
    /// Issue 11, replication fencing: with `fencing: resource-only`, a primary whose link broke acknowledges no
    /// write until the cluster says the peer is Outdated, and status says so meanwhile.
    @Test func fencedPrimaryHoldsWritesUntilThePeerIsOutdated() throws {
        let lab = try VolumeLab("fencing")
        defer { lab.teardown() }
        for node in lab.nodes {
            try lab.configure(node)
            var config = try VolumeConfig.load(path: lab.path("\(node).json"))
            config.fencing = .resourceOnly
            try JSONEncoder().encode(config).write(to: URL(fileURLWithPath: lab.path("\(node).json")))
        }
        for node in lab.nodes { try lab.start(node) }
        try lab.wait("alpha", "connected") { $0.connection == "Connected" }
        try lab.control("alpha", .init(command: .promote, force: true))
        try lab.wait("beta", "synced") { $0.disk == "UpToDate" && $0.connection == "Connected" }
        let client = try NBDClient(socket: lab.path("alpha.nbd"))
        try client.write(offset: 0, pattern(0x11))
        // The link breaks with the peer alive (its process stopped, as a hung host would look).
        kill(lab.processes["beta"]!.processIdentifier, SIGSTOP)
        defer { kill(lab.processes["beta"]!.processIdentifier, SIGCONT) }
        try lab.control("alpha", .init(command: .disconnect))
        let acknowledged = AckedEvents()
        Thread.detachNewThread {
            do {
                try client.write(offset: 4096, pattern(0x22))
                acknowledged.append("acked")
            } catch {
                acknowledged.append("failed: \(error)")
            }
        }
        Thread.sleep(forTimeInterval: 1.5)
        #expect(acknowledged.count == 0, "a write was acknowledged while the peer may be promoted on stale data")
        let held = try lab.status("alpha")
        print("while fenced: \(held.line)")
        #expect(held.writesHeld == true)
        #expect(held.line.contains("writes held"))
        #expect(try lab.control("alpha", .init(command: .markPeerOutdated)).ok)
        let deadline = Date().addingTimeInterval(5)
        while acknowledged.count == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(acknowledged.all == ["acked"])
        #expect(try lab.status("alpha").writesHeld == false)
        #expect(try lab.status("alpha").peerOutdated)
    }
}

extension LiveVolumeTests {
    /// Issue 11, disk errors: a full backing store on the primary says ENOSPC to the client, not EIO, also
    /// while replicating.
    @Test(.enabled(if: getuid() == 0)) func aFullBackingStoreSaysNoSpaceWhileReplicating() throws {
        let lab = try VolumeLab("enospc")
        let disk = try TinyFileSystem(kilobytes: 512)
        // The volume processes go before the file system they write to is unmounted.
        defer { withExtendedLifetime(disk) { lab.teardown() } }
        for node in lab.nodes {
            try lab.configure(node)
            if node == "alpha" {
                var config = try VolumeConfig.load(path: lab.path("alpha.json"))
                config.backing = disk.path + "/alpha.img"
                try JSONEncoder().encode(config).write(to: URL(fileURLWithPath: lab.path("alpha.json")))
            }
        }
        for node in lab.nodes { try lab.start(node) }
        try lab.wait("alpha", "connected") { $0.connection == "Connected" }
        try lab.control("alpha", .init(command: .promote, force: true))
        try lab.wait("beta", "synced") { $0.disk == "UpToDate" && $0.connection == "Connected" }
        let client = try NBDClient(socket: lab.path("alpha.nbd"))
        var failure: String?
        for block in 0..<256 {
            do {
                try client.write(offset: UInt64(block) * 4096, pattern(0x33))
            } catch {
                failure = "\(error)"
                break
            }
        }
        print("full backing store: \(failure ?? "no error")")
        #expect(failure?.contains("error 28") == true, "ENOSPC must reach the client as ENOSPC")
    }
}
