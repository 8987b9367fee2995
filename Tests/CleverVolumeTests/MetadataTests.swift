#if canImport(Glibc)
import Glibc
#endif
import CleverModel
import CleverReplication
import CleverSystem
import Foundation
import Testing

@testable import CleverVolume

func temporaryDirectory(_ name: String) -> String {
    var template = Array("/tmp/cvv-unit-\(name)-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

@Suite struct MetadataTests {
    @Test func activityLogRecordsNewestTransaction() throws {
        let directory = temporaryDirectory("al")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try ActivityLog(path: directory + "/al", capacity: 2)
        var plan = log.plan(offset: 0, length: 4096)
        #expect(plan.missing == [0])
        try log.commit(missing: plan.missing, evict: plan.evict)
        #expect(log.plan(offset: 100, length: 10).missing.isEmpty)
        plan = log.plan(offset: 5 * ActivityLog.extentSize, length: ActivityLog.extentSize + 1)
        #expect(plan.missing == [5, 6])
        #expect(plan.evict == [0])
        try log.commit(missing: plan.missing, evict: plan.evict)
        let reopened = try ActivityLog(path: directory + "/al", capacity: 2)
        #expect(reopened.recordedExtents().sorted() == [5, 6])
    }

    @Test func tornActivityLogSlotFallsBackToTheOlderOne() throws {
        let directory = temporaryDirectory("torn")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try ActivityLog(path: directory + "/al", capacity: 8)
        try log.commit(missing: [1], evict: [])  // sequence 1 -> slot 1
        try log.commit(missing: [2], evict: [])  // sequence 2 -> slot 0
        // Corrupt slot 0 (the newest).
        let fd = open(directory + "/al", O_RDWR)
        var garbage: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]
        pwrite(fd, &garbage, 4, 21)
        close(fd)
        #expect(try ActivityLog(path: directory + "/al", capacity: 8).recordedExtents() == [1])
    }

    @Test func bitmapFileRoundTripsAndRejectsCorruption() throws {
        let directory = temporaryDirectory("bm")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try MetadataStore(directory: directory)
        var bitmap = Replication.DirtyBitmap(volumeSize: 1 << 24)
        bitmap.set(3)
        bitmap.set(4000)
        try store.saveBitmap(bitmap)
        #expect(store.loadBitmap(volumeSize: 1 << 24) == bitmap)
        #expect(store.loadBitmap(volumeSize: 1 << 25) == nil)
        var bytes = AtomicFile.read(store.bitmapPath)!
        bytes[bytes.count - 1] ^= 0x40
        try AtomicFile.write(bytes, to: store.bitmapPath)
        #expect(store.loadBitmap(volumeSize: 1 << 24) == nil)
    }

    @Test func metadataRoundTripsAndChecksIdentity() throws {
        let directory = temporaryDirectory("meta")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try MetadataStore(directory: directory)
        var metadata = try store.loadMetadata(volume: "v", size: 4096)
        #expect(metadata.disk == .inconsistent)
        metadata.generations = Replication.GenerationIDs(current: 0x100, bitmap: 0x80)
        metadata.crashedPrimary = true
        try store.save(metadata)
        #expect(try store.loadMetadata(volume: "v", size: 4096) == metadata)
        #expect(throws: VolumeError.self) { try store.loadMetadata(volume: "other", size: 4096) }
        try AtomicFile.write(Array("{nope".utf8), to: store.metaPath)
        #expect(throws: VolumeError.self) { try store.loadMetadata(volume: "v", size: 4096) }
    }

    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }
}

@Suite struct VolumeConfigTests {
    @Test func mapsFromTheModelsVolumeSpec() {
        let spec = VolumeSpec(
            size: 1 << 30, backing: "/dev/vg/vm", protocolMode: .A, port: 7790,
            afterSplitBrain0: .discardLeastChanges, afterSplitBrain1: .consensus, secretFile: "/etc/clevervm/secret")
        let config = VolumeConfig(
            name: "vm1", node: "alpha", spec: spec, listenHost: "198.51.100.201", peer: ("beta", "198.51.100.202"))
        #expect(config.protocolMode == .A)
        #expect(config.listen == "198.51.100.201:7790")
        #expect(config.peer == VolumeConfig.Peer(name: "beta", address: "198.51.100.202:7790"))
        #expect(config.policies == Replication.SplitBrainPolicies(zeroPrimaries: .discardLeastChanges, onePrimary: .consensus))
        #expect(config.secretFile == "/etc/clevervm/secret")
        #expect(config.nbdSocket == "/run/clevervm/vm1.nbd")
        #expect((try? config.validate(path: "x")) != nil)
    }

    @Test func rejectsBadConfigsWithClearMessages() throws {
        let directory = temporaryDirectory("cfg")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func check(_ json: String, _ expected: String) {
            let path = directory + "/c.json"
            try? json.write(toFile: path, atomically: true, encoding: .utf8)
            do {
                _ = try VolumeConfig.load(path: path)
                Issue.record("accepted: \(json)")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
        let base = #""name":"v","node":"a","backing":"/b","metaDir":"/m","nbdSocket":"/n","controlSocket":"/c","protocolMode":"C","afterSplitBrain0":"disconnect","afterSplitBrain1":"disconnect","afterSplitBrain2":"disconnect","allowTwoPrimaries":false,"resyncRateMiB":10,"activityLogExtents":10"#
        check("{\(base),\"size\":1000}", "multiple of 4096")
        check("{\(base),\"size\":4096,\"peer\":{\"name\":\"b\",\"address\":\"1.2.3.4:1\"}}", "listen")
        check("{\(base),\"size\":4096,\"listen\":\"nonsense\"}", "HOST:PORT")
        check("{\(base)}", "size")
        check("not json", "config")
    }

    @Test func hmacProofsAreCheckedInConstantTimeShape() {
        let proof = Replication.authProof(secret: Array("k".utf8), transcript: Array("m".utf8))
        #expect(proof.count == 32)
        #expect(Replication.constantTimeEqual(proof, proof))
        var other = proof
        other[31] ^= 1
        #expect(!Replication.constantTimeEqual(proof, other))
        #expect(!Replication.constantTimeEqual(proof, Array(proof.prefix(31))))
    }
}

/// A tmpfs of `kilobytes` mounted for one test (root only): a backing file or log on it gets a real ENOSPC.
final class TinyFileSystem {
    let path: String

    init(kilobytes: Int) throws {
        var template = Array("/tmp/cvv-tinyfs-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw VolumeError("mkdtemp failed") }
        self.path = String(cString: made)
        let (status, output) = run(["mount", "-t", "tmpfs", "-o", "size=\(kilobytes)k", "tmpfs", self.path])
        guard status == 0 else {
            rmdir(self.path)
            throw VolumeError("mount tmpfs: \(output)")
        }
    }

    /// Fills the file system to the last byte.
    func fill() {
        let fd = open(self.path + "/filler", O_WRONLY | O_CREAT, 0o600)
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0, count: 4096)
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress!, $0.count) }) > 0 {}
    }

    deinit {
        run(["umount", self.path])
        rmdir(self.path)
    }
}

extension MetadataTests {
    @Test(.enabled(if: getuid() == 0)) func anExtentIsActiveOnlyOnceItsTransactionIsDurable() throws {
        let disk = try TinyFileSystem(kilobytes: 64)
        let log = try ActivityLog(path: disk.path + "/al", capacity: 8)
        disk.fill()
        let plan = log.plan(offset: 0, length: 4096)
        #expect(plan.missing == [0])
        #expect(throws: SystemError.self) { try log.commit(missing: plan.missing, evict: plan.evict) }
        #expect(log.activeExtents.isEmpty, "a failed transaction must not make its extent active")
        #expect(log.plan(offset: 0, length: 4096).missing == [0], "the next write must try the transaction again")
    }
}

/// The control socket's JSON is a written format: these bytes are what goes over the socket.
@Suite struct VolumeControlWireTests {
    func encoded(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    @Test func requestsHaveTheirWrittenBytes() throws {
        #expect(try self.encoded(VolumeControlRequest(command: .status)) == #"{"command":"status","version":1}"#)
        #expect(try self.encoded(VolumeControlRequest(command: .resolve, discard: "beta", dryRun: true))
            == #"{"command":"resolve","discard":"beta","dryRun":true,"version":1}"#)
        #expect(try self.encoded(VolumeControlRequest(command: .promote, peerOutdated: true, allowTwoPrimaries: false, force: false))
            == #"{"allowTwoPrimaries":false,"command":"promote","force":false,"peerOutdated":true,"version":1}"#)
        #expect(VolumeControlRequest.Command.allCases.map(\.rawValue) == [
            "status", "promote", "demote", "connect", "disconnect", "verify", "resolve", "outdate", "markPeerOutdated",
            "events",
        ])
        #expect(try self.encoded(VolumeControlReply(ok: false, message: "no")) == #"{"message":"no","ok":false,"version":1}"#)
    }

    @Test func aRequestWithoutVersionIsVersionOneAndAnUnknownVersionIsRefused() throws {
        let old = try JSONDecoder().decode(VolumeControlRequest.self, from: Data(#"{"command":"status"}"#.utf8))
        #expect(old.command == .status && old.version == 1)
        do {
            _ = try JSONDecoder().decode(VolumeControlRequest.self, from: Data(#"{"command":"status","version":2}"#.utf8))
            Issue.record("version 2 was accepted")
        } catch {
            #expect("\(error)".contains("control request version 2; this volume speaks 1"))
        }
        let server = ControlServer(volume: try Self.volume(), path: "/nonexistent")
        defer { try? FileManager.default.removeItem(atPath: (server.volume.config.backing as NSString).deletingLastPathComponent) }
        let reply = server.handle(Array(#"{"command":"promote","version":9}"#.utf8))
        #expect(!reply.ok && reply.message.contains("version 9"))
        #expect(reply.status == nil, "a refused request changes nothing and reports nothing")
    }

    static func volume() throws -> Volume {
        var template = Array("/tmp/cvv-wire-XXXXXX".utf8CString)
        let directory = String(cString: mkdtemp(&template)!)
        return try Volume(config: VolumeConfig(
            name: "vol0", node: "alpha", size: 1 << 20, backing: directory + "/img", metaDir: directory + "/meta",
            nbdSocket: directory + "/nbd", controlSocket: directory + "/ctl"))
    }
}
