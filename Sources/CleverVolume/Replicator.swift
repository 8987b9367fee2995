#if canImport(Glibc)
import Glibc
#endif
import CleverBytes
import CleverReplication
import Crypto
import Foundation

/// The replication link's life: connect (the node with the smaller name dials, the other accepts), the
/// authenticated handshake, the sync decision, then one receiver thread per link.
extension Volume {
    static let protocolVersion: UInt16 = 1

    /// Starts the connector thread (and the listener when a peer is configured) and the bitmap saver.
    public func startReplication() throws {
        Thread.detachNewThread { [self] in self.bitmapSaverLoop() }
        guard let peer = self.config.peer, let listen = self.config.listen else { return }
        let secret = try self.readSecret()
        let dials = self.config.node < peer.name
        let listener = dials ? -1 : try Sockets.listenTCP(listen)
        Thread.detachNewThread { [self] in self.connectorLoop(dials: dials, listener: listener, secret: secret) }
        Thread.detachNewThread { [self] in self.keepaliveLoop() }
    }

    func readSecret() throws -> [UInt8] {
        guard let path = self.config.secretFile else { throw VolumeError("volume \(self.config.name): no secretFile") }
        guard let bytes = DurableFile.read(path: path) else {
            throw VolumeError("volume \(self.config.name): secret file \(path) cannot be read")
        }
        let trimmed = Array(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        guard trimmed.count >= 16 else {
            throw VolumeError("volume \(self.config.name): secret in \(path) is shorter than 16 bytes")
        }
        return trimmed
    }

    func bitmapSaverLoop() {
        while true {
            Thread.sleep(forTimeInterval: 0.5)
            self.lock.lock()
            self.saveBitmapLocked()
            let stop = self.stopping
            self.lock.unlock()
            if stop { return }
        }
    }

    func keepaliveLoop() {
        while true {
            Thread.sleep(forTimeInterval: 2)
            self.lock.lock()
            let link = self.link
            let stop = self.stopping
            self.lock.unlock()
            if stop { return }
            link?.send(.ping)
        }
    }

    func connectorLoop(dials: Bool, listener: Int32, secret: [UInt8]) {
        guard let peer = self.config.peer else { return }
        while true {
            self.lock.lock()
            let idle = self.link != nil || !self.wantConnected
            let stop = self.stopping
            self.lock.unlock()
            if stop { return }
            if dials {
                if idle {
                    Thread.sleep(forTimeInterval: 0.2)
                    continue
                }
                guard let fd = try? Sockets.connectTCP(peer.address) else {
                    Thread.sleep(forTimeInterval: 0.5)
                    continue
                }
                self.establish(fd: fd, secret: secret)
                self.lock.lock()
                let connected = self.link != nil
                self.lock.unlock()
                if !connected { Thread.sleep(forTimeInterval: 1) }
            } else {
                var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 200) > 0 else { continue }
                let fd = Sockets.acceptCloseOnExec(listener)
                guard fd >= 0 else { continue }
                if idle {
                    Sockets.writeFully(fd, Replication.Wire.encode(.goodbye("not accepting connections now")))
                    close(fd)
                    continue
                }
                Sockets.tuneTCP(fd)
                self.establish(fd: fd, secret: secret)
            }
        }
    }

    func setLinkError(_ message: String) {
        self.lock.lock()
        self.lastLinkError = message
        self.lock.unlock()
        self.log("link: \(message)")
    }

    static func hmac(secret: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    /// The handshake on a fresh TCP connection. On success installs the link and starts its receiver.
    func establish(fd: Int32, secret: [UInt8]) {
        guard let peer = self.config.peer else { return }
        Sockets.setReceiveTimeout(fd, seconds: 10)
        func fail(_ message: String, tellPeer: Bool = true) {
            if tellPeer { Sockets.writeFully(fd, Replication.Wire.encode(.goodbye(message))) }
            close(fd)
            self.setLinkError(message)
        }
        func expect(_ what: String) -> Replication.Frame? {
            switch PeerLink.readFrame(fd) {
            case .success(.goodbye(let reason)):
                fail("peer closed the connection during \(what): \(reason)", tellPeer: false)
                return nil
            case .success(let frame): return frame
            case .failure(let error):
                fail("handshake (\(what)) failed: \(error)", tellPeer: false)
                return nil
            }
        }
        // 1. Hello with a fresh challenge.
        var challenge = [UInt8](repeating: 0, count: Replication.Wire.challengeSize)
        var generator = SystemRandomNumberGenerator()
        for index in challenge.indices { challenge[index] = UInt8.random(in: 0...255, using: &generator) }
        let hello = Replication.Hello(
            protocolVersion: Self.protocolVersion, node: self.config.node, volume: self.config.name,
            challenge: challenge)
        guard Sockets.writeFully(fd, Replication.Wire.encode(.hello(hello))) else { return fail("send hello failed") }
        guard case .hello(let peerHello)? = expect("hello") else { return }
        guard peerHello.protocolVersion == Self.protocolVersion else {
            return fail("peer speaks protocol \(peerHello.protocolVersion), we speak \(Self.protocolVersion)")
        }
        guard peerHello.volume == self.config.name else {
            return fail("peer serves volume '\(peerHello.volume)', expected '\(self.config.name)'")
        }
        guard peerHello.node == peer.name else {
            return fail("peer says it is node '\(peerHello.node)', expected '\(peer.name)'")
        }
        // 2. Prove knowledge of the secret over the peer's challenge; check the peer's proof over ours.
        let proof = Self.hmac(secret: secret, Replication.authTranscript(
            volume: self.config.name, proverNode: self.config.node, verifierNode: peer.name,
            verifierChallenge: peerHello.challenge, proverChallenge: challenge))
        guard Sockets.writeFully(fd, Replication.Wire.encode(.authProof(proof))) else { return fail("send proof failed") }
        guard case .authProof(let peerProof)? = expect("authentication") else { return }
        let expected = Self.hmac(secret: secret, Replication.authTranscript(
            volume: self.config.name, proverNode: peer.name, verifierNode: self.config.node,
            verifierChallenge: challenge, proverChallenge: peerHello.challenge))
        guard Self.constantTimeEqual(peerProof, expected) else {
            return fail("authentication failed: peer \(peer.name) does not know the shared secret")
        }
        guard Sockets.writeFully(fd, Replication.Wire.encode(.authAccepted)) else { return fail("send accept failed") }
        guard case .authAccepted? = expect("authentication result") else { return }

        // 3. Reports and bitmaps.
        self.lock.lock()
        let myReport = Replication.Report(
            node: Replication.NodeReport(
                name: self.config.node, role: self.role, disk: self.metadata.disk,
                generations: self.metadata.generations, crashedPrimary: self.metadata.crashedPrimary,
                dirtyBlocks: self.bitmap.setCount, discardMyData: self.discardMyDataOnConnect,
                discardPeerData: self.discardPeerDataOnConnect),
            volumeSize: self.config.size, policies: self.config.policies, protocolMode: self.config.protocolMode,
            allowTwoPrimaries: self.config.allowTwoPrimaries)
        let myBitmap = self.bitmap
        self.lock.unlock()
        guard Sockets.writeFully(fd, Replication.Wire.encode(.report(myReport))) else { return fail("send report failed") }
        let sender = Thread { Self.sendBitmap(myBitmap, fd: fd) }
        sender.start()
        guard case .report(let peerReport)? = expect("state report") else { return }
        guard peerReport.volumeSize == self.config.size else {
            return fail("peer volume is \(peerReport.volumeSize) bytes, ours \(self.config.size)")
        }
        guard peerReport.policies == self.config.policies else {
            return fail("after-split-brain policies differ between \(self.config.node) and \(peer.name)")
        }
        guard peerReport.protocolMode == self.config.protocolMode else {
            return fail("protocol \(peerReport.protocolMode.rawValue) on \(peer.name), \(self.config.protocolMode.rawValue) here")
        }
        // 4. Decide (both sides compute the same answer, mirrored) before the bitmaps, so a refusal is seen
        // by both sides whatever the timing of the goodbye.
        let decision = Replication.decide(local: myReport.node, peer: peerReport.node, policies: self.config.policies)
        self.log("connect to \(peer.name): \(decision) (local \(myReport.node.generations), "
            + "peer \(peerReport.node.generations))")
        self.lock.lock()
        self.lastPeerReport = peerReport.node
        switch decision {
        case .splitBrain(let reason):
            self.splitBrainReason = reason
            self.wantConnected = false
            self.connection = .standAlone
            self.lock.unlock()
            return fail("split brain detected: \(reason)")
        case .unrelatedData:
            self.splitBrainReason = "unrelated data"
            self.wantConnected = false
            self.connection = .standAlone
            self.lock.unlock()
            return fail("unrelated data: the disks share no generation history")
        case .bitmapSync(false) where self.role == .primary, .fullSync(false) where self.role == .primary:
            self.lock.unlock()
            return fail("refusing to become sync target while Primary")
        default: break
        }
        self.lock.unlock()

        var peerBitmap = Replication.DirtyBitmap(volumeSize: self.config.size)
        var words: [UInt8] = []
        while true {
            guard let frame = expect("bitmap") else { return }
            if case .bitmapDone = frame { break }
            guard case .bitmapChunk(let start, let chunk) = frame, start == UInt64(words.count / 8) else {
                return fail("unexpected frame during bitmap exchange")
            }
            words += chunk
            guard words.count <= peerBitmap.words.count * 8 else { return fail("peer bitmap too large") }
        }
        guard let decoded = Replication.DirtyBitmap.decode(blockCount: peerBitmap.blockCount, bytes: words) else {
            return fail("peer bitmap has \(words.count) bytes, expected \(peerBitmap.words.count * 8)")
        }
        peerBitmap = decoded

        self.lock.lock()
        Sockets.setReceiveTimeout(fd, seconds: 10)
        let link = PeerLink(fd: fd, peerName: peer.name, peerReport: peerReport)
        self.link = link
        self.peerRole = peerReport.node.role
        self.peerDisk = peerReport.node.disk
        self.splitBrainReason = nil
        self.lastLinkError = nil
        self.discardMyDataOnConnect = false
        self.discardPeerDataOnConnect = false
        var startResync = false
        switch decision {
        case .noSync:
            if self.metadata.disk > .inconsistent && peerReport.node.disk > .inconsistent {
                self.metadata.generations.clearBitmap()
                self.metadata.disk = .upToDate
                self.peerDisk = .upToDate
                self.bitmap.clearAll()
                self.bitmapChanged = true
                if self.role == .secondary { self.metadata.crashedPrimary = false }
            }
            self.connection = .connected
            self.metadata.peerOutdated = false
        case .bitmapSync(let source), .fullSync(let source):
            var full = false
            if case .fullSync = decision { full = true }
            self.bitmap.merge(peerBitmap)
            if full { self.bitmap.setAll() }
            self.bitmapChanged = true
            self.resync = ResyncProgress(
                localIsSource: source, totalBlocks: self.bitmap.setCount, startedAt: Date(), full: full)
            if source {
                self.connection = .syncSource
                self.peerDisk = .inconsistent
                startResync = true
            } else {
                self.connection = .syncTarget
                self.metadata.disk = .inconsistent
            }
        case .splitBrain, .unrelatedData:
            break
        }
        self.saveBitmapLocked()
        self.persistLocked()
        self.lock.unlock()
        sender.cancel()
        Thread.detachNewThread { [self] in self.receiverLoop(link) }
        if startResync { Thread.detachNewThread { [self] in self.resyncSourceLoop(link) } }
    }

    static func sendBitmap(_ bitmap: Replication.DirtyBitmap, fd: Int32) {
        let bytes = bitmap.encoded
        let chunkWords = 8192
        var word = 0
        while word * 8 < bytes.count {
            let end = min(bytes.count, (word + chunkWords) * 8)
            let chunk = Array(bytes[(word * 8)..<end])
            guard Sockets.writeFully(fd, Replication.Wire.encode(.bitmapChunk(startWord: UInt64(word), words: chunk)))
            else { return }
            word += chunkWords
        }
        Sockets.writeFully(fd, Replication.Wire.encode(.bitmapDone))
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
        for entry in entries where !entry.isFlush { self.markDirtyLocked(offset: entry.offset, length: entry.length) }
        self.connection = self.wantConnected ? .connecting : .standAlone
        self.peerRole = .unknown
        self.peerDisk = .unknown
        self.resync = nil
        if self.verify != nil && !(self.verify!.finished) { self.verify!.finished = true }
        if self.role == .primary && self.metadata.generations.bitmap == 0 {
            self.metadata.generations.startNewGeneration(random: UInt64.random(in: 0x100...UInt64.max), asPrimary: true)
        }
        self.bitmapChanged = true
        self.saveBitmapLocked()
        self.persistLocked()
        self.lastLinkError = reason
        self.lock.unlock()
        close(link.fd)
        self.log("peer \(link.peerName) lost: \(reason)")
        for entry in toComplete { entry.completion(entry.error) }
    }

    public func connect(discardMyData: Bool = false, discardPeerData: Bool = false) -> String {
        self.lock.lock()
        defer { self.lock.unlock() }
        guard self.hasPeer else { return "volume \(self.config.name) has no peer" }
        self.wantConnected = true
        self.discardMyDataOnConnect = discardMyData
        self.discardPeerDataOnConnect = discardPeerData
        if self.link == nil { self.connection = .connecting }
        return "volume \(self.config.name) connecting"
    }

    public func disconnect() -> String {
        self.lock.lock()
        self.wantConnected = false
        let link = self.link
        if link == nil { self.connection = .standAlone }
        self.lock.unlock()
        if let link {
            link.send(.goodbye("disconnect requested on \(self.config.node)"))
            self.peerLost(link, reason: "disconnect requested")
        }
        return "volume \(self.config.name) disconnected"
    }

    // MARK: Receiving

    func receiverLoop(_ link: PeerLink) {
        var reason = "connection closed"
        // Replicated writes are read straight into one reusable buffer and written from it: no per-write
        // allocation or copy on the secondary's hot path.
        var capacity = 1 << 20
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
        defer { buffer.deallocate() }
        let splicer = Splicer()
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
            if header.type == 10 && header.length >= 17 {
                guard let fixed = Sockets.readFully(link.fd, count: 17) else { break }
                var reader = ByteReader(fixed)
                let sequence = reader.readUInt64()!
                let offset = reader.readUInt64()!
                let fua = reader.readUInt8()!
                let count = Int(header.length) - 17
                guard fua <= 1, offset.addingReportingOverflow(UInt64(count)).partialValue <= self.config.size else {
                    reason = "write frame at \(offset)+\(count) is outside the volume or malformed"
                    break
                }
                var error: UInt32 = 0
                if let splicer {
                    // Socket -> pipe -> backing file: the data never enters user space.
                    switch splicer.move(from: link.fd, count: count, to: self.backing.fd, at: offset) {
                    case .done: break
                    case .socketClosed:
                        reason = "connection closed inside a write frame"
                        break loop
                    case .fileError(let code):
                        self.log("ERROR splice to \(self.config.backing): errno \(code)")
                        error = UInt32(EIO)
                    }
                    if fua == 1 && error == 0 { error = self.ackError { try self.backing.sync() } }
                } else {
                    if count > capacity {
                        buffer.deallocate()
                        capacity = count
                        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
                    }
                    guard Sockets.readFully(link.fd, into: buffer, count: count) else { break }
                    error = self.ackError {
                        try self.backing.write(offset: offset, buffer, count: count)
                        if fua == 1 { try self.backing.sync() }
                    }
                }
                guard link.send(.ack(sequence: sequence, error: error)) else { break }
                continue
            }
            guard let payload = Sockets.readFully(link.fd, count: Int(header.length)) else {
                reason = "connection closed inside a type \(header.type) frame"
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
                if !self.handle(frame, from: link) {
                    reason = "could not handle a type \(header.type) frame (local I/O error)"
                    break loop
                }
            }
        }
        self.peerLost(link, reason: reason)
    }

    func ackError(_ body: () throws -> Void) -> UInt32 {
        do {
            try body()
            return 0
        } catch {
            self.log("ERROR applying replicated operation: \(error)")
            return UInt32(EIO)
        }
    }

    func handle(_ frame: Replication.Frame, from link: PeerLink) -> Bool {
        switch frame {
        case .write(let sequence, let offset, let fua, let data):
            guard offset.addingReportingOverflow(UInt64(data.count)).partialValue <= self.config.size else {
                return link.send(.ack(sequence: sequence, error: UInt32(EINVAL)))
            }
            let error = self.ackError {
                try self.backing.write(offset: offset, data)
                if fua { try self.backing.sync() }
            }
            return link.send(.ack(sequence: sequence, error: error))
        case .zero(let sequence, let offset, let length, let trim, let fua):
            guard offset.addingReportingOverflow(UInt64(length)).partialValue <= self.config.size else {
                return link.send(.ack(sequence: sequence, error: UInt32(EINVAL)))
            }
            let error = self.ackError {
                if trim {
                    try self.backing.trim(offset: offset, length: UInt64(length))
                } else {
                    try self.backing.writeZeroes(offset: offset, length: UInt64(length))
                }
                if fua { try self.backing.sync() }
            }
            return link.send(.ack(sequence: sequence, error: error))
        case .flush(let sequence):
            let error = self.ackError { try self.backing.sync() }
            return link.send(.ack(sequence: sequence, error: error))
        case .ack(let sequence, let error):
            if let entry = link.acknowledge(sequence: sequence, error: error) { entry.completion(entry.error) }
            return true
        case .resyncData(let offset, let data):
            return self.receiveResyncData(offset: offset, data: data, link: link)
        case .resyncAck(let offset, let length):
            self.resyncAcknowledged(offset: offset, length: length)
            return true
        case .resyncDone:
            self.finishResyncTarget(link)
            return true
        case .verifyRequest(let start, let count):
            let digests = self.digests(startBlock: start, count: UInt64(count))
            return link.send(.verifyDigests(startBlock: start, digests: digests))
        case .verifyDigests(let start, let digests):
            self.compareDigests(startBlock: start, peerDigests: digests, link: link)
            return true
        case .roleChanged(let role):
            self.lock.lock()
            self.peerRole = role
            self.lock.unlock()
            self.log("peer is now \(role)")
            return true
        case .ping:
            return link.send(.pong)
        case .pong:
            return true
        case .hello, .authProof, .authAccepted, .report, .bitmapChunk, .bitmapDone, .goodbye:
            self.log("unexpected \(frame) after the handshake")
            return false
        }
    }
}
