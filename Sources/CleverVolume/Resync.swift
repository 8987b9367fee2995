#if canImport(Glibc)
import Glibc
#endif
import CleverReplication
import Crypto
import Foundation
import Logging

/// Resync (moving the blocks marked in the bitmap from source to target, rate-limited, resumable because both
/// bitmaps are saved as it goes) and online verify.
extension Volume {
    static let resyncRunBlocks: UInt64 = 64
    static let resyncStepSeconds = 0.1

    /// Runs of `resyncRunBlocks` unacknowledged at most: a memory bound above the controller's fill target.
    var resyncWindow: Int {
        let runBytes = Self.resyncRunBlocks * Replication.DirtyBitmap.blockSize
        let fill = self.config.resyncControllerSettings.fillTarget
        return Int(max(32, (2 * fill + runBytes - 1) / runBytes))
    }

    /// Sends the blocks marked in the bitmap, as fast as `Replication.ResyncController` allows: every 100 ms
    /// it gets what the peer acknowledged, what is in flight and how much application I/O there was, and
    /// returns a byte budget for the next step.
    func resyncSourceLoop(_ link: PeerLink) {
        let blockSize = Replication.DirtyBitmap.blockSize
        var controller = Replication.ResyncController(
            settings: self.config.resyncControllerSettings, stepSeconds: Self.resyncStepSeconds)
        let clock = ContinuousClock()
        let started = clock.now
        func seconds() -> Double {
            let elapsed = clock.now - started
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        }
        var budget: Int64 = 0
        var nextStep = 0.0
        self.lock.lock()
        var lastAcknowledged = self.resyncBytesMoved
        var lastApplicationIO = self.applicationIOBytes
        self.lock.unlock()
        var cursor: UInt64 = 0
        // The window is keyed by the link's identity; a dead link's object may be reused at the same address
        // by the next connection, which must not inherit its unacknowledged count (the resync then waited
        // for acks that never come).
        Self.resyncCondition.lock()
        Self.resyncInflight[ObjectIdentifier(link)] = 0
        Self.resyncInflightBytes[ObjectIdentifier(link)] = 0
        Self.resyncCondition.unlock()
        while true {
            let now = seconds()
            if now >= nextStep {
                self.lock.lock()
                let acknowledged = self.resyncBytesMoved
                let applicationIO = self.applicationIOBytes
                self.lock.unlock()
                let observation = Replication.ResyncController.Observation(
                    acknowledged: acknowledged &- lastAcknowledged, inFlight: self.resyncBytesInFlight(link),
                    applicationIO: applicationIO &- lastApplicationIO)
                lastAcknowledged = acknowledged
                lastApplicationIO = applicationIO
                let decision = controller.onStep(now: now, observation)
                // A run that overshot the last budget is paid back; an unspent budget is not hoarded.
                budget = min(budget, 0) + Int64(decision.bytes)
                self.lock.lock()
                self.resync?.decision = decision
                self.lock.unlock()
                nextStep = max(nextStep + Self.resyncStepSeconds, now)
            }
            if budget <= 0 {
                Thread.sleep(forTimeInterval: max(nextStep - seconds(), 0.001))
                continue
            }
            self.lock.lock()
            if self.link !== link || self.linkControl.isStopping || link.broken {
                self.lock.unlock()
                return
            }
            guard let first = self.bitmap.nextSet(from: cursor) else {
                self.lock.unlock()
                // End of a pass: wait for the acknowledgements, then look again from the start.
                guard self.waitResyncDrained(link) else { return }
                self.lock.lock()
                let remaining = self.bitmap.setCount
                self.lock.unlock()
                if remaining == 0 { break }
                cursor = 0
                continue
            }
            var count: UInt64 = 1
            while count < Self.resyncRunBlocks && self.bitmap.isSet(first + count) { count += 1 }
            self.lock.unlock()

            let offset = first * blockSize
            let length = Int(min(count * blockSize, self.config.size - offset))
            guard self.acquireResyncSlot(link, bytes: length) else { return }
            // Read and send under the send lock, so an application write to the same blocks is either read
            // here (and sent after) or sent before this data: the peer never ends with older data.
            link.sendLock.lock()
            // Local halves of writes already sent must be on disk before the read (see `Volume.write`).
            self.localWrites.sync {}
            let data: [UInt8]
            do {
                data = try self.backing.read(offset: offset, count: length)
            } catch {
                link.sendLock.unlock()
                self.detach("resync read", error)
                link.shutdownSocket()
                return
            }
            let ok = link.sendLocked(.resyncData(offset: offset, data: data))
            link.sendLock.unlock()
            if !ok { return }
            budget -= Int64(length)
            cursor = first + count
        }
        link.send(.resyncDone)
        self.lock.lock()
        if self.link === link {
            self.diskData = Replication.resyncSourceFinished(self.diskData, role: self.role)
            self.connection = .connected
            self.peerDisk = .upToDate
            if let resync = self.resync {
                let seconds = String(format: "%.2f", Date().timeIntervalSince(resync.startedAt))
                self.logger.info("resync done as source: \(resync.bytesMoved) bytes moved in \(seconds) s", metadata: ["op": "resync"])
            }
            self.resync = nil
            self.bitmapChanged = true
            self.saveBitmapLocked()
            self.persistLocked()
        }
        self.lock.unlock()
    }

    // A small counting window so the source does not run ahead of the target by more than a few MiB.
    private static let resyncCondition = NSCondition()
    nonisolated(unsafe) private static var resyncInflight: [ObjectIdentifier: Int] = [:]
    nonisolated(unsafe) private static var resyncInflightBytes: [ObjectIdentifier: UInt64] = [:]

    func acquireResyncSlot(_ link: PeerLink, bytes: Int) -> Bool {
        let key = ObjectIdentifier(link)
        let window = self.resyncWindow
        Self.resyncCondition.lock()
        defer { Self.resyncCondition.unlock() }
        while Self.resyncInflight[key, default: 0] >= window {
            if link.broken { return false }
            _ = Self.resyncCondition.wait(until: Date().addingTimeInterval(0.2))
        }
        Self.resyncInflight[key, default: 0] += 1
        Self.resyncInflightBytes[key, default: 0] += UInt64(bytes)
        return !link.broken
    }

    func releaseResyncSlot(_ link: PeerLink, bytes: UInt32) {
        let key = ObjectIdentifier(link)
        Self.resyncCondition.lock()
        // An acknowledgement nobody waits for (a confused or hostile peer) frees nothing.
        guard Self.resyncInflight[key, default: 0] > 0 else {
            Self.resyncCondition.unlock()
            return
        }
        Self.resyncInflight[key, default: 1] -= 1
        let inFlight = Self.resyncInflightBytes[key, default: 0]
        Self.resyncInflightBytes[key] = inFlight - min(inFlight, UInt64(bytes))
        Self.resyncCondition.broadcast()
        Self.resyncCondition.unlock()
    }

    func resyncBytesInFlight(_ link: PeerLink) -> UInt64 {
        Self.resyncCondition.lock()
        defer { Self.resyncCondition.unlock() }
        return Self.resyncInflightBytes[ObjectIdentifier(link), default: 0]
    }

    func waitResyncDrained(_ link: PeerLink) -> Bool {
        let key = ObjectIdentifier(link)
        Self.resyncCondition.lock()
        defer { Self.resyncCondition.unlock() }
        while Self.resyncInflight[key, default: 0] > 0 {
            if link.broken { return false }
            _ = Self.resyncCondition.wait(until: Date().addingTimeInterval(0.2))
        }
        return true
    }

    /// The peer acknowledged resync data (its range was checked against the volume by the caller).
    func resyncAcknowledged(offset: UInt64, length: UInt32, link: PeerLink) {
        self.lock.lock()
        guard self.link === link else {
            self.lock.unlock()
            return
        }
        for block in Replication.DirtyBitmap.blocks(offset: offset, length: UInt64(length)) { self.bitmap.clear(block) }
        self.bitmapChanged = true
        self.resync?.bytesMoved += UInt64(length)
        self.resyncBytesMoved += UInt64(length)
        self.lock.unlock()
        self.releaseResyncSlot(link, bytes: length)
    }

    func receiveResyncData(offset: UInt64, data: [UInt8], link: PeerLink) -> Bool {
        if self.applyReplicated("resync write", { try self.backing.write(offset: offset, data) }) != nil { return false }
        self.lock.lock()
        for block in Replication.DirtyBitmap.blocks(offset: offset, length: UInt64(data.count)) { self.bitmap.clear(block) }
        self.bitmapChanged = true
        self.resync?.bytesMoved += UInt64(data.count)
        self.resyncBytesMoved += UInt64(data.count)
        self.lock.unlock()
        return link.send(.resyncAck(offset: offset, length: UInt32(data.count)))
    }

    func finishResyncTarget(_ link: PeerLink) {
        // The target is UpToDate only once the resynced data is durable; a failed sync detaches it instead.
        if self.applyReplicated("fdatasync after the resync", { try self.backing.sync() }) != nil { return }
        self.lock.lock()
        defer { self.lock.unlock() }
        guard self.link === link, let peerReport = link.peerReport else { return }
        self.diskData = Replication.resyncTargetFinished(self.diskData, source: peerReport.node.generations)
        self.bitmap.clearAll()
        self.bitmapChanged = true
        self.saveBitmapLocked()
        self.connection = .connected
        self.peerDisk = .upToDate
        if let resync = self.resync {
            self.logger.info("resync done as target: \(resync.bytesMoved) bytes received", metadata: ["op": "resync"])
        }
        self.resync = nil
        self.persistLocked()
    }

    // MARK: Verify

    static let verifyChunkBlocks: UInt64 = 256

    /// 64-bit digest per 4 KiB block (the first 8 bytes of SHA-256).
    func digests(startBlock: UInt64, count: UInt64) -> [UInt64] {
        let blockSize = Replication.DirtyBitmap.blockSize
        let total = self.bitmap.blockCount
        guard startBlock < total else { return [] }
        let blocks = min(count, total - startBlock)
        guard let data = try? self.backing.read(offset: startBlock * blockSize, count: Int(blocks * blockSize)) else {
            return Array(repeating: 0, count: Int(blocks))
        }
        var result: [UInt64] = []
        result.reserveCapacity(Int(blocks))
        for index in 0..<Int(blocks) {
            let slice = data[(index * Int(blockSize))..<((index + 1) * Int(blockSize))]
            let digest = SHA256.hash(data: slice)
            var value: UInt64 = 0
            for byte in digest.prefix(8) { value = value << 8 | UInt64(byte) }
            result.append(value)
        }
        return result
    }

    public func startVerify() -> Result<String, VolumeError> {
        self.lock.lock()
        guard let link = self.link, self.connection == .connected else {
            self.lock.unlock()
            return .failure(VolumeError("volume \(self.config.name): verify needs a Connected peer (now \(self.connection))"))
        }
        let total = self.bitmap.blockCount
        self.verify = VerifyProgress(totalBlocks: total, startedAt: Date())
        self.connection = .verifySource
        self.lock.unlock()
        Thread.detachNewThread { [self] in
            var start: UInt64 = 0
            while start < total {
                // Keep at most 16 chunks outstanding.
                while true {
                    self.lock.lock()
                    let outstanding = (self.verify?.requestedBlocks ?? 0) - (self.verify?.checkedBlocks ?? 0)
                    let alive = self.link === link
                    self.lock.unlock()
                    if !alive { return }
                    if outstanding < 16 * Self.verifyChunkBlocks { break }
                    Thread.sleep(forTimeInterval: 0.001)
                }
                let count = min(Self.verifyChunkBlocks, total - start)
                self.lock.lock()
                self.verify?.requestedBlocks += count
                self.lock.unlock()
                guard link.send(.verifyRequest(startBlock: start, count: UInt32(count))) else { return }
                start += count
            }
        }
        return .success("volume \(self.config.name): verify started over \(total) blocks")
    }

    func compareDigests(startBlock: UInt64, peerDigests: [UInt64], link: PeerLink) {
        let local = self.digests(startBlock: startBlock, count: UInt64(peerDigests.count))
        self.lock.lock()
        guard self.verify != nil else {
            self.lock.unlock()
            return
        }
        for (index, digest) in peerDigests.enumerated() where index < local.count && local[index] != digest {
            let block = startBlock + UInt64(index)
            self.verify!.differingCount += 1
            // The status lists the first blocks only; all of them are marked for resync.
            if self.verify!.differing.count < VerifyProgress.listedLimit { self.verify!.differing.append(block) }
            self.bitmap.set(block)
            self.bitmapChanged = true
        }
        self.verify!.checkedBlocks += UInt64(peerDigests.count)
        var startResync = false
        if self.verify!.checkedBlocks >= self.verify!.totalBlocks && !self.verify!.finished {
            self.verify!.finished = true
            let differing = self.verify!.differingCount
            self.logger.info("verify done: \(differing) differing block(s)", metadata: ["op": "verify"])
            self.connection = .connected
            // Differing blocks are marked; resync them now from this side when it holds the good data.
            if differing > 0 && self.metadata.disk == .upToDate && self.peerRole != .primary {
                self.connection = .syncSource
                self.resync = ResyncProgress(
                    localIsSource: true, totalBlocks: self.bitmap.setCount, startedAt: Date(), full: false)
                startResync = true
            }
        }
        self.lock.unlock()
        if startResync { Thread.detachNewThread { [self] in self.resyncSourceLoop(link) } }
    }
}
