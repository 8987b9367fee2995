#if canImport(Glibc)
import Glibc
#endif
import CleverNBD
import Foundation
import Logging

/// The NBD server on a unix socket: one thread per client connection reads requests in order; replies go out
/// as each request completes (reads at once, replicated writes when the peer acknowledges), so several
/// requests are in flight and replies come out of order.
public final class NBDServer: @unchecked Sendable {
    let volume: Volume
    let path: String
    private var listener: Int32 = -1

    public init(volume: Volume, path: String) {
        self.volume = volume
        self.path = path
    }

    public func start() throws {
        self.listener = try Sockets.listenUnix(path: self.path, mode: 0o600)
        let listener = self.listener
        Thread.detachNewThread { [self] in
            while true {
                let fd = Sockets.acceptCloseOnExec(listener)
                if fd < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return
                }
                let connection = NBDConnection(fd: fd, volume: self.volume)
                Thread.detachNewThread { connection.run() }
            }
        }
    }
}

final class NBDConnection: @unchecked Sendable {
    let fd: Int32
    let volume: Volume
    private let replyLock = NSLock()
    let writeBuffers = WriteBuffers(limit: 8)
    private let inflight = NSCondition()
    private var inflightCount = 0
    private var aborted = false
    private var buffer: UnsafeMutableRawPointer
    private var bufferSize: Int

    init(fd: Int32, volume: Volume) {
        self.fd = fd
        self.volume = volume
        self.bufferSize = 1 << 20
        self.buffer = UnsafeMutableRawPointer.allocate(byteCount: self.bufferSize, alignment: 4096)
    }

    deinit { self.buffer.deallocate() }

    func log(_ message: String) { self.volume.logger.info("nbd client: \(message)") }

    /// Ends the connection now (forced demote, shutdown).
    func abort() {
        self.replyLock.lock()
        self.aborted = true
        self.replyLock.unlock()
        shutdown(self.fd, Int32(SHUT_RDWR))
    }

    private func ensureBuffer(_ size: Int) {
        guard size > self.bufferSize else { return }
        self.buffer.deallocate()
        self.bufferSize = size
        self.buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
    }

    func run() {
        // Counted from the first byte, so a demote can't slip between the handshake's last reply and the first
        // request.
        self.volume.clientConnected(self)
        defer {
            self.waitIdle()
            self.volume.clientGone(self)
            close(self.fd)
        }
        var handshake = NBD.ServerHandshake(exports: self.volume.currentExports)
        guard Sockets.writeFully(self.fd, handshake.greeting) else { return }
        var export: NBD.Export?
        var leftover: [UInt8] = []
        handshakeLoop: while export == nil {
            guard let bytes = Sockets.readSome(self.fd, max: max(handshake.bytesWanted, 1)) else { return }
            for directive in handshake.receive(bytes) {
                switch directive {
                case .send(let reply):
                    guard Sockets.writeFully(self.fd, reply) else { return }
                case .close(let reason):
                    self.log("handshake ended: \(reason)")
                    return
                case .startTransmission(let chosen, let rest):
                    export = chosen
                    leftover = rest
                    break handshakeLoop
                }
            }
        }
        guard let export else { return }
        self.transmission(export: export, leftover: leftover)
    }

    private func readExactly(_ count: Int, leftover: inout [UInt8]) -> [UInt8]? {
        if leftover.isEmpty { return Sockets.readFully(self.fd, count: count) }
        let take = min(count, leftover.count)
        var result = Array(leftover.prefix(take))
        leftover.removeFirst(take)
        if result.count < count {
            guard let rest = Sockets.readFully(self.fd, count: count - result.count) else { return nil }
            result += rest
        }
        return result
    }

    private func readPayload(_ count: Int, leftover: inout [UInt8]) -> Bool {
        self.ensureBuffer(count)
        return self.readPayload(count, into: self.buffer, leftover: &leftover)
    }

    private func readPayload(_ count: Int, into buffer: UnsafeMutableRawPointer, leftover: inout [UInt8]) -> Bool {
        var filled = 0
        if !leftover.isEmpty {
            let take = min(count, leftover.count)
            leftover.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: take) }
            leftover.removeFirst(take)
            filled = take
        }
        return Sockets.readFully(self.fd, into: buffer + filled, count: count - filled)
    }

    private func transmission(export: NBD.Export, leftover initial: [UInt8]) {
        var leftover = initial
        while true {
            guard let header = self.readExactly(NBD.requestHeaderSize, leftover: &leftover) else { return }
            switch NBD.decideRequest(header: header, export: export) {
            case .disconnect(let reason):
                self.log("closing: \(reason)")
                return
            case .reject(let cookie, let error, let discard, let reason):
                self.log("rejected request: \(reason)")
                if discard > 0 && !self.readPayload(Int(discard), leftover: &leftover) { return }
                self.begin()
                self.reply(cookie: cookie, error: error)
            case .execute(let request):
                if request.command == .disconnect { return }
                if request.command == .write {
                    // Each write gets its own buffer (a small pool), so the local write can run while this
                    // thread reads the next request.
                    let buffer = self.writeBuffers.take(Int(request.length))
                    guard self.readPayload(Int(request.length), into: buffer.pointer, leftover: &leftover) else {
                        self.writeBuffers.give(buffer)
                        return
                    }
                    self.executeWrite(request, buffer: buffer)
                    continue
                }
                self.execute(request)
            }
        }
    }

    /// Counts a request in flight; returns how many are in flight now, this one included.
    @discardableResult
    private func begin() -> Int {
        self.inflight.lock()
        defer { self.inflight.unlock() }
        self.inflightCount += 1
        return self.inflightCount
    }

    private func waitIdle() {
        self.inflight.lock()
        while self.inflightCount > 0 { self.inflight.wait() }
        self.inflight.unlock()
    }

    /// Sends a reply (and READ data) and ends the request's in-flight count.
    private func reply(cookie: UInt64, error: NBD.ErrorCode, data: UnsafeRawBufferPointer? = nil) {
        let header = NBD.simpleReplyHeader(cookie: cookie, error: error)
        self.replyLock.lock()
        if !self.aborted {
            let ok: Bool
            if let data, error == .none {
                ok = Sockets.writeFully(self.fd, header, data)
            } else {
                ok = Sockets.writeFully(self.fd, header)
            }
            if !ok { shutdown(self.fd, Int32(SHUT_RDWR)) }
        }
        self.replyLock.unlock()
        self.inflight.lock()
        self.inflightCount -= 1
        self.inflight.broadcast()
        self.inflight.unlock()
    }

    private func executeWrite(_ request: NBD.Request, buffer: WriteBuffers.Buffer) {
        let alone = self.begin() == 1
        let cookie = request.cookie
        let pool = self.writeBuffers
        let write: @Sendable () -> Void = { [self] in
            self.volume.write(
                offset: request.offset, data: UnsafeRawBufferPointer(start: buffer.pointer, count: Int(request.length)),
                fua: request.flags.contains(.fua), release: { pool.give(buffer) },
                done: { [self] error in self.reply(cookie: cookie, error: error) })
        }
        // Local-only writes with others in flight run in parallel, like reads. Replicated writes stay on this
        // thread so they reach the peer in the order the client sent them.
        if !alone && !self.volume.isReplicating {
            DispatchQueue.global().async(execute: write)
        } else {
            write()
        }
    }

    private func execute(_ request: NBD.Request) {
        let alone = self.begin() == 1
        let cookie = request.cookie
        let fua = request.flags.contains(.fua)
        switch request.command {
        case .read:
            let count = Int(request.length)
            if alone {
                // Nothing else in flight: answer inline, no thread hop.
                self.ensureBuffer(count)
                let error = self.volume.read(offset: request.offset, into: self.buffer, count: count)
                self.reply(cookie: cookie, error: error, data: UnsafeRawBufferPointer(start: self.buffer, count: count))
            } else {
                // Several requests in flight: read in parallel and reply in completion order.
                DispatchQueue.global().async { [self] in
                    let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 4096)
                    defer { buffer.deallocate() }
                    let error = self.volume.read(offset: request.offset, into: buffer, count: count)
                    self.reply(cookie: cookie, error: error, data: UnsafeRawBufferPointer(start: buffer, count: count))
                }
            }
        case .write:
            preconditionFailure("WRITE is executed by executeWrite(_:buffer:)")
        case .flush:
            self.volume.flush(done: { [self] error in self.reply(cookie: cookie, error: error) })
        case .trim, .writeZeroes:
            self.volume.zero(
                offset: request.offset, length: request.length, trim: request.command == .trim, fua: fua,
                done: { [self] error in self.reply(cookie: cookie, error: error) })
        case .disconnect, .cache, .blockStatus:
            self.reply(cookie: cookie, error: .invalid)
        }
    }
}

/// A small pool of write buffers for one connection; `take` waits when all are in use.
final class WriteBuffers: @unchecked Sendable {
    struct Buffer: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
        let size: Int
    }

    private let condition = NSCondition()
    private var free: [Buffer] = []
    private var outstanding = 0
    private let limit: Int

    init(limit: Int) { self.limit = limit }

    deinit { for buffer in self.free { buffer.pointer.deallocate() } }

    func take(_ size: Int) -> Buffer {
        self.condition.lock()
        defer { self.condition.unlock() }
        while self.outstanding >= self.limit { self.condition.wait() }
        self.outstanding += 1
        if let index = self.free.firstIndex(where: { $0.size >= size }) { return self.free.remove(at: index) }
        return Buffer(pointer: UnsafeMutableRawPointer.allocate(byteCount: max(size, 1 << 20), alignment: 4096),
            size: max(size, 1 << 20))
    }

    func give(_ buffer: Buffer) {
        self.condition.lock()
        self.outstanding -= 1
        if self.free.count < self.limit {
            self.free.append(buffer)
        } else {
            buffer.pointer.deallocate()
        }
        self.condition.signal()
        self.condition.unlock()
    }
}
