#if canImport(Glibc)
import Glibc
#endif
import CleverBytes
import CleverReplication
import Crypto
import Foundation
import Logging

/// The replication link's life: connect (the node with the smaller name dials, the other accepts), the
/// handshake (`Replication.Handshake` decides every step; this file sends, reads and applies), then one
/// receiver thread per link. Whether to connect at all, and which connection holds the link, is
/// `Replication.LinkControl`'s call.
extension Volume {
    /// A handshake must finish within this, or the connection is dropped: a slow or silent stranger cannot
    /// hold a connection slot.
    static let handshakeDeadline: Duration = .seconds(10)
    /// Connections in their handshake at once on the listening side; more are closed at once.
    static let maxConcurrentHandshakes = 4
    /// How often a split-brain volume exchanges reports with its peer (to keep both sides' counts current and
    /// to notice a `resolve` asked on the peer).
    static let splitBrainProbeInterval = 2.0

    /// Starts the connector thread (and the listener when a peer is configured) and the bitmap saver.
    public func startReplication() throws {
        Thread.detachNewThread { [self] in self.bitmapSaverLoop() }
        guard let peer = self.config.peer, let listen = self.config.listen else { return }
        let secret = try self.readSecret()
        if self.config.node < peer.name {
            Thread.detachNewThread { [self] in self.dialerLoop(secret: secret) }
        } else {
            let listener = try Sockets.listenTCP(listen)
            Thread.detachNewThread { [self] in self.acceptorLoop(listener: listener, secret: secret) }
        }
        Thread.detachNewThread { [self] in self.keepaliveLoop() }
    }

    func readSecret() throws -> [UInt8] {
        guard let path = self.config.secretFile else { throw VolumeError("volume \(self.config.name): no secretFile") }
        return try SecretFile.read(path: path, volume: self.config.name)
    }

    func bitmapSaverLoop() {
        while true {
            Thread.sleep(forTimeInterval: 0.5)
            self.lock.lock()
            self.saveBitmapLocked()
            let stop = self.linkControl.isStopping
            self.lock.unlock()
            if stop { return }
        }
    }

    func keepaliveLoop() {
        while true {
            Thread.sleep(forTimeInterval: 2)
            self.lock.lock()
            let link = self.link
            let stop = self.linkControl.isStopping
            self.lock.unlock()
            if stop { return }
            link?.send(.ping)
        }
    }

    /// The side with the smaller name: dial whenever the link control wants a connection.
    func dialerLoop(secret: [UInt8]) {
        guard let peer = self.config.peer else { return }
        while true {
            self.lock.lock()
            let stop = self.linkControl.isStopping
            let wanted = self.linkControl.wantsConnection
            let probing = self.linkControl.splitBrain != nil
            self.lock.unlock()
            if stop { return }
            guard wanted else {
                Thread.sleep(forTimeInterval: 0.2)
                continue
            }
            guard let fd = try? Sockets.connectTCP(peer.address) else {
                Thread.sleep(forTimeInterval: 0.5)
                continue
            }
            if !self.runHandshake(fd: fd, secret: secret) {
                Thread.sleep(forTimeInterval: probing ? Self.splitBrainProbeInterval : 1)
            }
        }
    }

    /// The side with the greater name: accept, and run each connection's handshake on a thread of its own,
    /// so a slow or hostile client cannot hold up the peer's reconnection.
    func acceptorLoop(listener: Int32, secret: [UInt8]) {
        while true {
            self.lock.lock()
            let stop = self.linkControl.isStopping
            self.lock.unlock()
            if stop { return }
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 200) > 0 else { continue }
            let fd = Sockets.acceptCloseOnExec(listener)
            guard fd >= 0 else { continue }
            self.lock.lock()
            let wanted = self.linkControl.wantsConnection
            let slot = wanted && self.handshakesInFlight < Self.maxConcurrentHandshakes
            if slot { self.handshakesInFlight += 1 }
            self.lock.unlock()
            guard slot else {
                if !wanted { Sockets.writeFully(fd, Replication.Wire.encode(.goodbye("not accepting connections now"))) }
                close(fd)
                continue
            }
            Sockets.tuneTCP(fd)
            Thread.detachNewThread { [self] in
                self.runHandshake(fd: fd, secret: secret)
                self.lock.lock()
                self.handshakesInFlight -= 1
                self.lock.unlock()
            }
        }
    }

    func setLinkError(_ message: String) {
        self.lock.lock()
        self.lastLinkError = message
        self.lock.unlock()
        self.logger.info("link: \(message)")
    }

    /// This side's report, taken under the lock together with the bitmap sent after it.
    func reportLocked(discard: Replication.Discard) -> Replication.Report {
        Replication.Report(
            node: Replication.NodeReport(
                name: self.config.node, role: self.role, disk: self.metadata.disk,
                generations: self.metadata.generations, crashedPrimary: self.metadata.crashedPrimary,
                dirtyBlocks: self.bitmap.setCount, discardMyData: discard == .local, discardPeerData: discard == .peer),
            volumeSize: self.config.size, policies: self.config.policies, protocolMode: self.config.protocolMode,
            allowTwoPrimaries: self.config.allowTwoPrimaries)
    }

    /// Runs `Replication.Handshake` on a fresh TCP connection: performs its actions in order and feeds it
    /// what arrives. Returns true when the link was established (the receiver then owns `fd`).
    @discardableResult
    func runHandshake(fd: Int32, secret: [UInt8]) -> Bool {
        guard let peer = self.config.peer else {
            close(fd)
            return false
        }
        let clock = ContinuousClock()
        let deadline = clock.now + Self.handshakeDeadline
        var challenge = [UInt8](repeating: 0, count: Replication.Wire.challengeSize)
        var generator = SystemRandomNumberGenerator()
        for index in challenge.indices { challenge[index] = UInt8.random(in: 0...255, using: &generator) }
        var machine = Replication.Handshake(
            local: Replication.Handshake.Local(
                volume: self.config.name, node: self.config.node, peer: peer.name, volumeSize: self.config.size,
                policies: self.config.policies, protocolMode: self.config.protocolMode),
            secret: secret, challenge: challenge)
        var link: PeerLink?
        var opener: Replication.FrameSealer?
        var connection: UInt64?
        var localBitmap: Replication.DirtyBitmap?
        let bitmapSent = DispatchSemaphore(value: 0)
        var sendingBitmap = false
        var queue = machine.start()

        func send(_ frame: Replication.Frame) -> Bool {
            if let link { return link.send(frame) }
            return Sockets.writeFully(fd, Replication.Wire.encode(frame))
        }
        /// The connection ends without a link: tell the link control, record why, close.
        func finishFailed(_ reason: String, tellPeer: Bool) {
            if tellPeer { _ = send(.goodbye(reason)) }
            if sendingBitmap {
                link?.shutdownSocket()
                bitmapSent.wait()
            }
            self.lock.lock()
            if let connection { self.linkControl.ended(connection) }
            self.refreshConnectionStateLocked()
            self.lock.unlock()
            close(fd)
            self.setLinkError(reason)
        }

        while true {
            while !queue.isEmpty {
                let action = queue.removeFirst()
                switch action {
                case .send(let frame):
                    if !send(frame) { queue = machine.readFailed("sending a \(Replication.Wire.encodePayload(frame).0) frame failed") }
                case .authenticated(let keys):
                    self.lock.lock()
                    self.connectionCounter += 1
                    let id = self.connectionCounter
                    switch self.linkControl.claim(id) {
                    case .granted(let discard, _):
                        connection = id
                        link = PeerLink(fd: fd, id: id, peerName: peer.name, keys: keys)
                        opener = Replication.FrameSealer(key: keys.receiving)
                        let report = self.reportLocked(discard: discard)
                        localBitmap = self.bitmap
                        self.refreshConnectionStateLocked()
                        self.lock.unlock()
                        queue += machine.reportReady(report)
                    case .refused(let reason):
                        self.lock.unlock()
                        queue += machine.abort(reason)
                    }
                case .sendBitmap:
                    guard let link, let bitmap = localBitmap else { continue }
                    sendingBitmap = true
                    Thread.detachNewThread {
                        Self.sendBitmap(bitmap, over: link)
                        bitmapSent.signal()
                    }
                case .decided(let decision, let local, let peerReport):
                    self.logger.info("""
                        connect to \(peer.name): \(decision) (local \(local.node.generations), peer \(peerReport.node.generations); \
                        changed blocks: \(local.node.name) \(local.node.dirtyBlocks), \(peerReport.node.name) \(peerReport.node.dirtyBlocks))
                        """, metadata: ["op": "connect"])
                    self.lock.lock()
                    self.lastPeerReport = peerReport.node
                    let verdict = connection.map {
                        self.linkControl.decided($0, decision, local: local.node, peer: peerReport.node)
                    } ?? (proceed: false, refusal: "connection superseded")
                    // Decided split brains end the connection as the handshake says; the link control may
                    // also stop one the handshake would go on with (a split brain nobody asked to resolve).
                    if !verdict.proceed { connection = nil }
                    self.refreshConnectionStateLocked()
                    self.lock.unlock()
                    if let refusal = verdict.refusal { queue += machine.abort(refusal) }
                case .established(let peerReport, let decision, let peerBitmap):
                    // Our bitmap must be out before any data frame follows it on this connection.
                    if sendingBitmap { bitmapSent.wait() }
                    sendingBitmap = false
                    guard let link, let connection, let opener else { continue }
                    link.peerReport = peerReport
                    if let startResync = self.install(link, connection: connection, peerReport: peerReport,
                        decision: decision, peerBitmap: peerBitmap)
                    {
                        self.releaseHeldWrites()
                        Sockets.setReceiveTimeout(fd, seconds: 10)
                        Thread.detachNewThread { [self] in self.receiverLoop(link, opener: opener) }
                        if startResync { Thread.detachNewThread { [self] in self.resyncSourceLoop(link) } }
                        return true
                    }
                    queue += machine.abort("connection superseded")
                case .fail(let reason, let tellPeer):
                    finishFailed(reason, tellPeer: tellPeer)
                    return false
                }
            }
            if machine.isFinished { break }
            let remaining = deadline - clock.now
            guard remaining > .zero else {
                queue = machine.readFailed("no answer within \(Self.handshakeDeadline)")
                continue
            }
            Sockets.setReceiveTimeout(fd, seconds: Double(max(1, remaining.components.seconds)))
            switch PeerLink.readFrame(fd, maxPayload: machine.maxPayload, opener: &opener) {
            case .success(let frame): queue = machine.receive(frame)
            case .failure(let error): queue = machine.readFailed(error.message)
            }
        }
        finishFailed("handshake ended", tellPeer: false)
        return false
    }

    /// Applies an established connection under the lock (`Replication.establish` says what changes). Nil
    /// when the link control no longer wants this connection; else whether this side starts a resync.
    func install(
        _ link: PeerLink, connection: UInt64, peerReport: Replication.Report, decision: Replication.SyncDecision,
        peerBitmap: Replication.DirtyBitmap
    ) -> Bool? {
        self.lock.lock()
        defer { self.lock.unlock() }
        guard self.linkControl.established(connection) else { return nil }
        let result = Replication.establish(
            self.diskData, role: self.role, peer: peerReport.node, decision: decision)
        self.diskData = result.data
        self.link = link
        self.connection = result.connection
        self.peerRole = peerReport.node.role
        self.peerDisk = result.peerDisk
        self.lastLinkError = nil
        switch result.bitmap {
        case .unchanged: break
        case .clear: self.bitmap.clearAll()
        case .mergePeer: self.bitmap.merge(peerBitmap)
        case .setAll:
            self.bitmap.merge(peerBitmap)
            self.bitmap.setAll()
        }
        if result.bitmap != .unchanged { self.bitmapChanged = true }
        if let resync = result.resync {
            self.resync = ResyncProgress(
                localIsSource: resync.localIsSource, totalBlocks: self.bitmap.setCount, startedAt: Date(),
                full: resync.full)
        }
        self.saveBitmapLocked()
        self.persistLocked()
        return result.resync?.localIsSource == true
    }

    static func sendBitmap(_ bitmap: Replication.DirtyBitmap, over link: PeerLink) {
        let bytes = bitmap.encoded
        let chunkWords = 8192
        var word = 0
        while word * 8 < bytes.count {
            let end = min(bytes.count, (word + chunkWords) * 8)
            let chunk = Array(bytes[(word * 8)..<end])
            guard link.send(.bitmapChunk(startWord: UInt64(word), words: chunk)) else { return }
            word += chunkWords
        }
        link.send(.bitmapDone)
    }

    /// The link broke or was closed: go on alone and record what the peer may lack.
    func peerLost(_ link: PeerLink, reason: String) {
        let (entries, toComplete) = link.drainPending()
        link.shutdownSocket()
        self.lock.lock()
        guard self.link === link else {
            self.lock.unlock()
            return
        }
        self.link = nil
        self.linkControl.ended(link.id)
        self.refreshConnectionStateLocked()
        for entry in entries where !entry.isFlush { self.markDirtyLocked(offset: entry.offset, length: entry.length) }
        self.peerRole = .unknown
        self.peerDisk = .unknown
        self.resync = nil
        if self.verify != nil && !(self.verify!.finished) { self.verify!.finished = true }
        self.diskData = Replication.linkLost(self.diskData, role: self.role, random: Self.randomGeneration())
        self.bitmapChanged = true
        self.saveBitmapLocked()
        self.persistLocked()
        self.lastLinkError = reason
        // Fencing: writes in flight are acknowledged only once the peer is known Outdated (or the link is back).
        let hold = self.writesHeldLocked
        if hold {
            if self.writesHeldSince == nil {
                self.writesHeldSince = Date()
                self.logger.warning("fencing: writes held until the peer is known Outdated or the link is back", metadata: ["op": "fence"])
            }
            self.heldCompletions += toComplete.map { entry in { entry.completion(entry.error) } }
        }
        self.lock.unlock()
        close(link.fd)
        self.logger.warning("peer \(link.peerName) lost: \(reason)")
        if !hold { for entry in toComplete { entry.completion(entry.error) } }
    }

    /// Random bits for a new generation identifier.
    static func randomGeneration() -> UInt64 { UInt64.random(in: 0x100...UInt64.max) }

    /// Performs the link control's actions (with the lock not held).
    func perform(_ actions: [Replication.LinkControl.Action]) {
        for action in actions {
            switch action {
            case .dropConnection(let id, let reason):
                self.lock.lock()
                let link = self.link?.id == id ? self.link : nil
                self.lock.unlock()
                if let link {
                    link.send(.goodbye(reason))
                    self.peerLost(link, reason: reason)
                }
            }
        }
    }

    public func connect(discard: Replication.Discard = .none) -> String {
        self.lock.lock()
        guard self.hasPeer else {
            self.lock.unlock()
            return "volume \(self.config.name) has no peer"
        }
        if let detached = self.detachedReason {
            self.lock.unlock()
            return "volume \(self.config.name) is not connecting: its backing store is detached (\(detached)); "
                + "restart the volume process once the disk is fixed (it then resyncs from the peer)"
        }
        let actions = self.linkControl.connect(discard: discard)
        self.refreshConnectionStateLocked()
        self.lock.unlock()
        self.perform(actions)
        return "volume \(self.config.name) connecting"
    }

    public func disconnect() -> String {
        self.lock.lock()
        let actions = self.linkControl.disconnect(reason: "disconnect requested on \(self.config.node)")
        self.refreshConnectionStateLocked()
        self.lock.unlock()
        self.perform(actions)
        return "volume \(self.config.name) disconnected"
    }

    /// `connection` follows the link control while no link carries data (the data path refines it after).
    func refreshConnectionStateLocked() {
        if self.link == nil { self.connection = self.linkControl.connectionState }
    }

    // MARK: Receiving

    /// Reads, checks and applies the peer's frames until the link breaks. `opener` checks each frame's tag
    /// (it continues the count from the handshake's frames).
    func receiverLoop(_ link: PeerLink, opener: Replication.FrameSealer) {
        var opener = opener
        var reason = "connection closed"
        // Replicated writes are read straight into one reusable buffer, checked and written from it: no
        // per-write allocation or copy on the secondary's hot path.
        var capacity = 1 << 20
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
        defer { buffer.deallocate() }
        let fields = Replication.FrameType.writeFieldsSize
        loop: while true {
            guard let headerBytes = Sockets.readFully(link.fd, count: Replication.Wire.headerSize) else {
                reason = "connection closed or timed out"
                break
            }
            let header: Replication.FrameHeader
            switch Replication.Wire.decodeHeader(headerBytes) {
            case .failure(let error):
                reason = error.message
                break loop
            case .success(let decoded):
                header = decoded
            }
            guard header.isSealed else {
                reason = "type \(header.type) frame is not sealed after the handshake"
                break
            }
            if header.frameType == .write && header.length >= fields {
                let length = Int(header.length)
                if length > capacity {
                    buffer.deallocate()
                    capacity = length
                    buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
                }
                guard Sockets.readFully(link.fd, into: buffer, count: length),
                    let tag = Sockets.readFully(link.fd, count: Replication.Wire.tagSize)
                else {
                    reason = "connection closed inside a write frame"
                    break
                }
                guard opener.open(header: headerBytes, payload: UnsafeRawBufferPointer(start: buffer, count: length), tag: tag)
                else {
                    reason = "write frame failed its integrity check"
                    break
                }
                var reader = ByteReader(Array(UnsafeRawBufferPointer(start: buffer, count: fields)))
                let sequence = reader.readUInt64()!
                let offset = reader.readUInt64()!
                let fua = reader.readUInt8()!
                let count = length - fields
                guard fua <= 1, Replication.rangeFits(offset: offset, length: UInt64(count), size: self.config.size) else {
                    reason = "write frame at \(offset)+\(count) is outside the volume or malformed"
                    break
                }
                // Never acknowledged if it cannot be written: the disk detaches and the link ends (Volume+DiskErrors).
                if let failure = self.applyReplicated("replicated write", {
                    try self.backing.write(offset: offset, buffer + fields, count: count)
                    if fua == 1 { try self.backing.sync() }
                }) {
                    reason = failure
                    break
                }
                guard link.send(.ack(sequence: sequence, error: 0)) else { break }
                continue
            }
            guard let payload = Sockets.readFully(link.fd, count: Int(header.length)),
                let tag = Sockets.readFully(link.fd, count: Replication.Wire.tagSize)
            else {
                reason = "connection closed inside a type \(header.type) frame"
                break
            }
            guard opener.open(header: headerBytes, payload: payload, tag: tag) else {
                reason = "type \(header.type) frame failed its integrity check"
                break
            }
            switch Replication.Wire.decode(header: header, payload: payload) {
            case .failure(let error):
                reason = error.message
                break loop
            case .success(let frame):
                if case .goodbye(let why) = frame {
                    reason = "peer said goodbye: \(why)"
                    break loop
                }
                if let failure = self.handle(frame, from: link) {
                    reason = failure
                    break loop
                }
            }
        }
        self.peerLost(link, reason: reason)
    }

    /// Applies one frame from the peer. Returns why the link must end (a local I/O error on a resync, or a
    /// frame whose offsets do not fit the volume: a peer that sends those is broken or hostile), else nil.
    func handle(_ frame: Replication.Frame, from link: PeerLink) -> String? {
        let size = self.config.size
        func sent(_ ok: Bool) -> String? { ok ? nil : "sending to the peer failed" }
        switch frame {
        case .write(let sequence, let offset, let fua, let data):
            guard Replication.rangeFits(offset: offset, length: UInt64(data.count), size: size) else {
                return sent(link.send(.ack(sequence: sequence, error: UInt32(EINVAL))))
            }
            // A write this host cannot make is never acknowledged: the disk detaches and the link ends, so the
            // primary marks it out of sync (Volume+DiskErrors).
            if let failure = self.applyReplicated("replicated write", {
                try self.backing.write(offset: offset, data)
                if fua { try self.backing.sync() }
            }) { return failure }
            return sent(link.send(.ack(sequence: sequence, error: 0)))
        case .zero(let sequence, let offset, let length, let trim, let fua):
            guard Replication.rangeFits(offset: offset, length: UInt64(length), size: size) else {
                return sent(link.send(.ack(sequence: sequence, error: UInt32(EINVAL))))
            }
            if let failure = self.applyReplicated(trim ? "replicated trim" : "replicated write zeroes", {
                if trim {
                    try self.backing.trim(offset: offset, length: UInt64(length))
                } else {
                    try self.backing.writeZeroes(offset: offset, length: UInt64(length))
                }
                if fua { try self.backing.sync() }
            }) { return failure }
            return sent(link.send(.ack(sequence: sequence, error: 0)))
        case .flush(let sequence):
            if let failure = self.applyReplicated("fdatasync", { try self.backing.sync() }) { return failure }
            return sent(link.send(.ack(sequence: sequence, error: 0)))
        case .ack(let sequence, let error):
            let (entry, complete) = link.acknowledge(sequence: sequence, error: error)
            // The peer could not write it (an older peer that acknowledges errors): it lacks the range.
            if error != 0, let entry, !entry.isFlush {
                self.lock.lock()
                self.markDirtyLocked(offset: entry.offset, length: entry.length)
                self.lock.unlock()
            }
            if complete, let entry { entry.completion(entry.error) }
            return nil
        case .resyncData(let offset, let data):
            guard Replication.rangeFits(offset: offset, length: UInt64(data.count), size: size) else {
                return "resync data at \(offset)+\(data.count) is outside the volume (\(size) bytes)"
            }
            return self.receiveResyncData(offset: offset, data: data, link: link)
                ? nil : "could not apply resync data (local I/O error)"
        case .resyncAck(let offset, let length):
            guard Replication.rangeFits(offset: offset, length: UInt64(length), size: size) else {
                return "resync acknowledgement at \(offset)+\(length) is outside the volume (\(size) bytes)"
            }
            self.resyncAcknowledged(offset: offset, length: length, link: link)
            return nil
        case .resyncDone:
            self.finishResyncTarget(link)
            return nil
        case .verifyRequest(let start, let count):
            guard Replication.blockRangeFits(start: start, count: UInt64(count), blockCount: self.blockCount) else {
                return "verify request for blocks \(start)+\(count) is outside the volume"
            }
            let digests = self.digests(startBlock: start, count: UInt64(count))
            return sent(link.send(.verifyDigests(startBlock: start, digests: digests)))
        case .verifyDigests(let start, let digests):
            guard Replication.blockRangeFits(
                start: start, count: UInt64(digests.count), blockCount: self.blockCount)
            else { return "verify digests for blocks \(start)+\(digests.count) are outside the volume" }
            self.compareDigests(startBlock: start, peerDigests: digests, link: link)
            return nil
        case .roleChanged(let role):
            self.lock.lock()
            self.peerRole = role
            self.lock.unlock()
            self.logger.info("peer is now \(role)")
            return nil
        case .ping:
            return sent(link.send(.pong))
        case .pong:
            return nil
        case .hello, .authProof, .authAccepted, .report, .bitmapChunk, .bitmapDone, .goodbye:
            return "unexpected \(Replication.Wire.encodePayload(frame).0) frame after the handshake"
        }
    }
}
