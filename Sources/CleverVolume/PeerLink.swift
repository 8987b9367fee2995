#if canImport(Glibc)
import Glibc
#endif
import CleverBytes
import CleverReplication
import Foundation

/// One established, authenticated replication connection. Frames are sent under `sendLock`, in the order
/// the lock is taken, which is the write order the peer applies.
public final class PeerLink: @unchecked Sendable {
    /// A write, zero or flush sent to the peer and not yet acknowledged.
    final class Pending: @unchecked Sendable {
        let offset: UInt64
        let length: UInt64
        let isFlush: Bool
        var waitingLocal: Bool
        var waitingPeer: Bool
        var error: UInt32 = 0
        /// Set once the completion ran (guarded by the link's pendingLock): protocol A completes before the
        /// peer's ack, and a broken link drains entries that may be complete already.
        var completed = false
        let completion: @Sendable (UInt32) -> Void

        init(offset: UInt64, length: UInt64, isFlush: Bool, waitingLocal: Bool, waitingPeer: Bool,
            completion: @escaping @Sendable (UInt32) -> Void)
        {
            self.offset = offset
            self.length = length
            self.isFlush = isFlush
            self.waitingLocal = waitingLocal
            self.waitingPeer = waitingPeer
            self.completion = completion
        }
    }

    public let fd: Int32
    public let peerName: String
    /// Which connection this is (`Replication.LinkControl` names connections by it).
    let id: UInt64
    let sendLock = NSLock()
    let pendingLock = NSLock()
    private var nextSequence: UInt64 = 1
    private var pending: [UInt64: Pending] = [:]
    private(set) var broken = false
    /// Seals every frame this side sends (under `sendLock`, so tags follow the wire order).
    private var sealer: Replication.FrameSealer
    /// The peer's report from the handshake (set when the link is established).
    var peerReport: Replication.Report?

    init(fd: Int32, id: UInt64, peerName: String, keys: Replication.SessionKeys) {
        self.fd = fd
        self.id = id
        self.peerName = peerName
        self.sealer = Replication.FrameSealer(key: keys.sending)
    }

    /// Sends a control frame; false if the link is broken.
    @discardableResult
    func send(_ frame: Replication.Frame) -> Bool {
        self.sendLock.lock()
        defer { self.sendLock.unlock() }
        return self.sendLocked(frame)
    }

    /// With `sendLock` held.
    func sendLocked(_ frame: Replication.Frame) -> Bool {
        if self.broken { return false }
        let (type, payload) = Replication.Wire.encodePayload(frame)
        let header = Replication.Wire.header(type: type, length: payload.count, sealed: true)
        let tag = self.sealer.seal(header: header, payload: payload)
        if !Sockets.writeFully(self.fd, header + payload + tag) {
            self.broken = true
            return false
        }
        return true
    }

    /// Replicates a write (local write already done). Returns false if the link is broken (the caller marks
    /// the range dirty). `pending` describes what completes it.
    /// `inOrder` runs under the send lock just before the frame is sent (also when the link is broken), so
    /// the local work it does or queues is ordered exactly like the frames on the wire.
    func sendWrite(
        offset: UInt64, data: UnsafeRawBufferPointer, fua: Bool, pending: Pending, inOrder: () -> Void = {}
    ) -> Bool {
        self.sendLock.lock()
        defer { self.sendLock.unlock() }
        inOrder()
        if self.broken { return false }
        let sequence = self.register(pending)
        var fields = ByteWriter(capacity: Replication.FrameType.writeFieldsSize)
        fields.write(sequence)
        fields.write(offset)
        fields.write(UInt8(fua ? 1 : 0))
        // The data is hashed and sent where it lies: no copy of a 1 MiB write.
        let header = Replication.Wire.header(
            type: .write, length: Replication.FrameType.writeFieldsSize + data.count, sealed: true)
        let tag = self.sealer.seal(header: header, fields: fields.bytes, data: data)
        if !Sockets.writeFully(self.fd, header + fields.bytes, data) || !Sockets.writeFully(self.fd, tag) {
            self.broken = true
            // Left in `pending`: the peer-lost handler marks it dirty and completes it.
        }
        return true
    }

    /// The next frame's sequence number, with what completes it. Called under the send lock, so numbers follow
    /// the wire order.
    private func register(_ pending: Pending) -> UInt64 {
        let sequence = self.nextSequence
        self.nextSequence += 1
        self.pendingLock.lock()
        self.pending[sequence] = pending
        self.pendingLock.unlock()
        return sequence
    }

    /// Replicates a zero/trim or flush. Returns false if the link is broken before it was queued.
    func sendOperation(_ make: (UInt64) -> Replication.Frame, pending: Pending, inOrder: () -> Void = {}) -> Bool {
        self.sendLock.lock()
        defer { self.sendLock.unlock() }
        inOrder()
        if self.broken { return false }
        let sequence = self.register(pending)
        _ = self.sendLocked(make(sequence))
        return true
    }

    /// The peer acknowledged `sequence`: returns the pending entry if it is now complete.
    /// The peer's answer: the entry it answers (if still pending), and whether the caller must now complete it.
    func acknowledge(sequence: UInt64, error: UInt32) -> (entry: Pending?, complete: Bool) {
        self.pendingLock.lock()
        defer { self.pendingLock.unlock() }
        guard let entry = self.pending[sequence] else { return (nil, false) }
        entry.waitingPeer = false
        if error != 0 { entry.error = error }
        self.pending[sequence] = nil
        return (entry, Self.claimCompletion(entry))
    }

    /// With pendingLock held: true exactly once, when nothing is awaited any more.
    private static func claimCompletion(_ entry: Pending) -> Bool {
        guard !entry.completed, !entry.waitingLocal, !entry.waitingPeer else { return false }
        entry.completed = true
        return true
    }

    /// The local half finished: true if the caller must now run the completion.
    func localDone(_ entry: Pending, error: UInt32) -> Bool {
        self.pendingLock.lock()
        defer { self.pendingLock.unlock() }
        entry.waitingLocal = false
        if error != 0 { entry.error = error }
        return Self.claimCompletion(entry)
    }

    /// The peer will never answer (send failed): true if the caller must now run the completion.
    func peerGaveUp(_ entry: Pending) -> Bool {
        self.pendingLock.lock()
        defer { self.pendingLock.unlock() }
        entry.waitingPeer = false
        return Self.claimCompletion(entry)
    }

    /// The link broke: every unacknowledged entry (for the caller to mark dirty), and which of them the caller
    /// must now complete.
    func drainPending() -> (all: [Pending], toComplete: [Pending]) {
        self.sendLock.lock()
        self.broken = true
        self.sendLock.unlock()
        self.pendingLock.lock()
        defer { self.pendingLock.unlock() }
        let entries = Array(self.pending.values)
        self.pending = [:]
        var toComplete: [Pending] = []
        for entry in entries {
            entry.waitingPeer = false
            if Self.claimCompletion(entry) { toComplete.append(entry) }
        }
        return (entries, toComplete)
    }

    func shutdownSocket() {
        Glibc.shutdown(self.fd, Int32(SHUT_RDWR))
    }

    /// Reads one frame: unsealed (`opener` nil, during the handshake's authentication) or sealed and checked.
    /// A failure says why: closed, timed out, too large for `maxPayload`, malformed, or a bad tag.
    static func readFrame(
        _ fd: Int32, maxPayload: UInt32 = Replication.Wire.maxPayload, opener: inout Replication.FrameSealer?
    ) -> Result<Replication.Frame, Replication.FrameError> {
        guard let headerBytes = Sockets.readFully(fd, count: Replication.Wire.headerSize) else {
            return .failure(.init("connection closed or timed out"))
        }
        switch Replication.Wire.decodeHeader(headerBytes, maxPayload: maxPayload) {
        case .failure(let error): return .failure(error)
        case .success(let header):
            guard header.isSealed == (opener != nil) else {
                return .failure(.init("type \(header.type) frame is \(header.isSealed ? "" : "not ")sealed"
                    + " where it must\(header.isSealed ? " not" : "") be"))
            }
            guard let payload = Sockets.readFully(fd, count: Int(header.length)) else {
                return .failure(.init("connection closed inside a type \(header.type) frame"))
            }
            if opener != nil {
                guard let tag = Sockets.readFully(fd, count: Replication.Wire.tagSize) else {
                    return .failure(.init("connection closed inside a type \(header.type) frame's tag"))
                }
                guard opener!.open(header: headerBytes, payload: payload, tag: tag) else {
                    return .failure(.init("type \(header.type) frame failed its integrity check"))
                }
            }
            return Replication.Wire.decode(header: header, payload: payload)
        }
    }
}
