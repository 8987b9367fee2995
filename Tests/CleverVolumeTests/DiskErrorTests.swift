#if canImport(Glibc)
import Glibc
#endif
import CleverNBD
import CleverReplication
import Foundation
import Testing

@testable import CleverVolume

/// A backing file that fails chosen operations on demand: the file layer's fault injection.
final class FaultyBackingStore: BackingStore, @unchecked Sendable {
    enum Operation: Hashable { case read, write, sync }
    private let faults = NSLock()
    private var failing: [Operation: Int32] = [:]

    func fail(_ operation: Operation, errno code: Int32 = EIO) {
        self.faults.lock()
        self.failing[operation] = code
        self.faults.unlock()
    }

    func heal() {
        self.faults.lock()
        self.failing = [:]
        self.faults.unlock()
    }

    private func check(_ operation: Operation, _ what: String) throws {
        self.faults.lock()
        let code = self.failing[operation]
        self.faults.unlock()
        if let code { throw SystemError(what, self.path, code: code) }
    }

    override func read(offset: UInt64, into pointer: UnsafeMutableRawPointer, count: Int) throws {
        try self.check(.read, "pread \(count) bytes at \(offset)")
        try super.read(offset: offset, into: pointer, count: count)
    }

    override func write(offset: UInt64, _ pointer: UnsafeRawPointer, count: Int) throws {
        try self.check(.write, "pwrite \(count) bytes at \(offset)")
        try super.write(offset: offset, pointer, count: count)
    }

    override func sync() throws {
        try self.check(.sync, "fdatasync")
        try super.sync()
    }
}

/// DRBD's `on-io-error detach`, an fdatasync failure never carried on from, metadata failures that stop role
/// changes, and the promise that nothing acknowledged is lost — with faults injected at the file layer.
@Suite(.serialized) struct DiskErrorTests {
    static let size: UInt64 = 4 << 20

    final class Pair: @unchecked Sendable {
        let directory = temporaryDirectory("diskerr")
        var volumes: [String: Volume] = [:]
        var stores: [String: FaultyBackingStore] = [:]

        func make(_ node: String, peer: String?, ports: (Int, Int)? = nil) throws -> Volume {
            let secret = self.directory + "/secret"
            if !FileManager.default.fileExists(atPath: secret) {
                try Data("disk-error-test-secret-0123456789".utf8).write(to: URL(fileURLWithPath: secret))
                chmod(secret, 0o600)
            }
            let mine = node == "alpha" ? ports?.0 : ports?.1
            let theirs = node == "alpha" ? ports?.1 : ports?.0
            let config = VolumeConfig(
                name: "vol0", node: node, size: DiskErrorTests.size, backing: "\(self.directory)/\(node).img",
                metaDir: "\(self.directory)/\(node).meta", nbdSocket: "\(self.directory)/\(node).nbd",
                controlSocket: "\(self.directory)/\(node).ctl",
                listen: mine.map { "127.0.0.1:\($0)" }, peer: peer.flatMap { name in theirs.map { VolumeConfig.Peer(name: name, address: "127.0.0.1:\($0)") } },
                secretFile: peer == nil ? nil : secret)
            let store = try FaultyBackingStore(path: config.backing, size: config.size)
            let volume = try Volume(config: config, backing: store)
            self.volumes[node] = volume
            self.stores[node] = store
            return volume
        }

        /// Two replicas on loopback, alpha Primary, both UpToDate.
        static func connected() throws -> Pair {
            let pair = Pair()
            let ports = Ports.pair()
            let alpha = try pair.make("alpha", peer: "beta", ports: ports)
            let beta = try pair.make("beta", peer: "alpha", ports: ports)
            try alpha.startReplication()
            try beta.startReplication()
            try pair.waitFor("connected") { alpha.status().connection == "Connected" && beta.status().connection == "Connected" }
            _ = alpha.promote(Replication.PromotionRequest(force: true))
            try pair.waitFor("UpToDate/UpToDate") {
                let status = alpha.status()
                return status.role == "Primary" && status.disk == "UpToDate" && status.peerDisk == "UpToDate" && status.connection == "Connected"
            }
            return pair
        }

        func waitFor(_ what: String, seconds: Double = 20, _ condition: () -> Bool) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if condition() { return }
                Thread.sleep(forTimeInterval: 0.05)
            }
            throw VolumeError("timed out waiting for \(what): " + self.volumes.keys.sorted().map { "\($0): \(self.volumes[$0]!.status().line)" }.joined(separator: "; "))
        }

        func close() {
            for volume in self.volumes.values { volume.shutdown() }
            try? FileManager.default.removeItem(atPath: self.directory)
        }
    }

    /// One 4 KiB record, numbered: what an acknowledged write must still read back as.
    static func record(_ number: Int) -> [UInt8] {
        (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ number &* 131) }
    }

    static func write(_ volume: Volume, _ number: Int, fua: Bool = false) -> NBD.ErrorCode {
        let done = DispatchSemaphore(value: 0)
        let result = Box()
        Self.record(number).withUnsafeBytes { bytes in
            volume.write(offset: UInt64(number) * 4096, data: bytes, fua: fua) { code in
                result.code = code
                done.signal()
            }
            done.wait()
        }
        return result.code
    }

    static func flush(_ volume: Volume) -> NBD.ErrorCode {
        let done = DispatchSemaphore(value: 0)
        let result = Box()
        volume.flush { code in
            result.code = code
            done.signal()
        }
        done.wait()
        return result.code
    }

    static func read(_ volume: Volume, _ number: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let code = buffer.withUnsafeMutableBytes { volume.read(offset: UInt64(number) * 4096, into: $0.baseAddress!, count: 4096) }
        return code == .none ? buffer : nil
    }

    final class Box: @unchecked Sendable { var code: NBD.ErrorCode = .none }

    @Test func aFailingSecondaryDetachesAndThePrimaryGoesOnWithTheBlocksMarkedDirty() throws {
        let pair = try Pair.connected()
        defer { pair.close() }
        let alpha = pair.volumes["alpha"]!, beta = pair.volumes["beta"]!
        var acknowledged: [Int] = []
        for number in 0..<40 {
            if number == 20 { pair.stores["beta"]!.fail(.write) }
            if Self.write(alpha, number) == .none { acknowledged.append(number) }
        }
        // Every write was acknowledged: the primary's copy is good, the failed peer's is not needed for it.
        #expect(acknowledged == Array(0..<40))
        let betaStatus = beta.status()
        #expect(betaStatus.disk == "Failed")
        #expect(betaStatus.detached?.contains("replicated write on") == true)
        #expect(betaStatus.connection == "StandAlone", "a detached secondary does not reconnect by itself")
        try pair.waitFor("alpha alone") { alpha.status().connection != "Connected" }
        let alphaStatus = alpha.status()
        #expect(alphaStatus.disk == "UpToDate")
        #expect(alphaStatus.outOfSyncBlocks >= 20, "the blocks the peer lacks are marked dirty (\(alphaStatus.line))")
        for number in acknowledged { #expect(Self.read(alpha, number) == Self.record(number), "record \(number)") }
        // A detached disk is never promoted.
        if case .success = beta.promote(Replication.PromotionRequest(peerFencedOrOutdated: true)) { Issue.record("a Failed disk was promoted") }
    }

    @Test func aFailedFdatasyncStopsAcknowledgingAndDetaches() throws {
        let pair = Pair()
        defer { pair.close() }
        let solo = try pair.make("alpha", peer: nil)
        _ = solo.promote(Replication.PromotionRequest(force: true))
        #expect(Self.write(solo, 1) == .none)
        pair.stores["alpha"]!.fail(.sync)
        #expect(Self.flush(solo) == .io)
        // The disk may have dropped the pages: a later sync that succeeds proves nothing, so nothing is
        // acknowledged any more, even once the store works again.
        pair.stores["alpha"]!.heal()
        #expect(Self.write(solo, 2) == .io)
        #expect(Self.flush(solo) == .io)
        #expect(Self.read(solo, 1) == nil)
        let status = solo.status()
        #expect(status.disk == "Failed")
        #expect(status.detached?.contains("fdatasync") == true)
        #expect(status.line.contains("detached: fdatasync"))
    }

    @Test func aFailingPrimaryWriteDetachesButEnospcStaysEnospc() throws {
        let pair = Pair()
        defer { pair.close() }
        let solo = try pair.make("alpha", peer: nil)
        _ = solo.promote(Replication.PromotionRequest(force: true))
        pair.stores["alpha"]!.fail(.write, errno: ENOSPC)
        #expect(Self.write(solo, 1) == .noSpace)
        pair.stores["alpha"]!.heal()
        #expect(Self.write(solo, 1) == .none, "a full file system is not a failing disk")
        pair.stores["alpha"]!.fail(.write)
        #expect(Self.write(solo, 2) == .io)
        pair.stores["alpha"]!.heal()
        #expect(Self.write(solo, 3) == .io, "detached: nothing is acknowledged any more")
        #expect(solo.status().disk == "Failed")
    }

    @Test func aBitmapThatCannotBeSavedStopsRoleChanges() throws {
        let pair = Pair()
        defer { pair.close() }
        let alpha = try pair.make("alpha", peer: "beta", ports: Ports.pair())
        // The bitmap's path becomes a non-empty directory: its atomic replace (rename) fails, meta.json still saves.
        let bitmap = alpha.config.metaDir + "/bitmap"
        try? FileManager.default.removeItem(atPath: bitmap)
        try FileManager.default.createDirectory(atPath: bitmap + "/blocker", withIntermediateDirectories: true)
        alpha.lock.lock()
        alpha.markDirtyLocked(offset: 0, length: 4096)
        alpha.saveBitmapLocked()
        alpha.lock.unlock()
        guard case .failure(let refusal) = alpha.promote(Replication.PromotionRequest(peerFencedOrOutdated: true, force: true)) else {
            Issue.record("promoted although its bitmap cannot be saved")
            return
        }
        #expect(refusal.message.contains("not promoted: saving the bitmap"))
        #expect(alpha.status().line.contains("metadata errors (role changes refused): bitmap"))
        // Fixed: the next role change saves it first and goes ahead.
        try FileManager.default.removeItem(atPath: bitmap)
        guard case .success = alpha.promote(Replication.PromotionRequest(peerFencedOrOutdated: true, force: true)) else {
            Issue.record("not promoted once the bitmap could be saved again")
            return
        }
        #expect(alpha.status().metadataErrors == nil)
    }
}
