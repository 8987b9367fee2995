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
    let sendLock = NSLock()
    let pendingLock = NSLock()
    private var nextSequence: UInt64 = 1
    private var pending: [UInt64: Pending] = [:]
    private(set) var broken = false
    /// The peer's report from the handshake.
    let peerReport: Replication.Report

    init(fd: Int32, peerName: String, peerReport: Replication.Report) {
        self.fd = fd
        self.peerName = peerName
        self.peerReport = peerReport
    }

    /// Sends a control frame; false if the link is broken.
    @discardableResult
    func send(_ frame: Replication.Frame) -> Bool {
        let bytes = Replication.Wire.encode(frame)
        self.sendLock.lock()
        defer { self.sendLock.unlock() }
        return self.sendLocked(bytes)
    }

    /// With `sendLock` held.
    func sendLocked(_ bytes: [UInt8]) -> Bool {
        if self.broken { return false }
        if !Sockets.writeFully(self.fd, bytes) {
            self.broken = true
            return false
        }
        return true
    }

    /// Header of a write frame (type 10) whose data follows separately, so 1 MiB writes are not copied.
    static func writeFrameHeader(sequence: UInt64, offset: UInt64, fua: Bool, dataCount: Int) -> [UInt8] {
        var writer = ByteWriter(capacity: 29)
        writer.write(Replication.Wire.magic)
        writer.write(Replication.Wire.version)
        writer.write(UInt8(10))
        writer.write(UInt16(0))
        writer.write(UInt32(17 + dataCount))
        writer.write(sequence)
        writer.write(offset)
        writer.write(UInt8(fua ? 1 : 0))
        return writer.bytes
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
        let header = Self.writeFrameHeader(sequence: sequence, offset: offset, fua: fua, dataCount: data.count)
        if !Sockets.writeFully(self.fd, header, data) {
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
        if !Sockets.writeFully(self.fd, Replication.Wire.encode(make(sequence))) { self.broken = true }
        return true
    }

    /// The peer acknowledged `sequence`: returns the pending entry if it is now complete.
    func acknowledge(sequence: UInt64, error: UInt32) -> Pending? {
        self.pendingLock.lock()
        defer { self.pendingLock.unlock() }
        guard let entry = self.pending[sequence] else { return nil }
        entry.waitingPeer = false
        if error != 0 { entry.error = error }
        self.pending[sequence] = nil
        return Self.claimCompletion(entry) ? entry : nil
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

    /// Reads one frame; nil with a reason on EOF, timeout or a malformed frame.
    static func readFrame(_ fd: Int32) -> Result<Replication.Frame, Replication.FrameError> {
        guard let headerBytes = Sockets.readFully(fd, count: Replication.Wire.headerSize) else {
            return .failure(.init("connection closed or timed out"))
        }
        switch Replication.Wire.decodeHeader(headerBytes) {
        case .failure(let error): return .failure(error)
        case .success(let header):
            guard let payload = Sockets.readFully(fd, count: Int(header.length)) else {
                return .failure(.init("connection closed inside a type \(header.type) frame"))
            }
            return Replication.Wire.decode(header: header, payload: payload)
        }
    }
}
