import CleverQEMU
import Foundation
import HummingbirdWebSocket
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Copies bytes both ways between a browser's websocket and an open console channel (a VM's socket, or the relay
/// client's end of its socket pair) until either side closes. The channel's bytes go to the browser as binary
/// messages (RFB for noVNC, terminal output for the serial page); every message from the browser, binary or text,
/// goes to the channel as it is.
enum ConsoleBridge {
    /// Bytes read from the channel at a time: below the websocket's largest frame (16 KiB by default).
    static let chunk = 8192
    /// The largest message taken from the browser: keys, pointer events, pasted text.
    static let maxMessage = 1 << 20

    static func run(fd: Int32, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let reader = Reader(fd: fd)
        defer { reader.stop() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await bytes in reader.stream { try await outbound.write(.binary(ByteBuffer(bytes: bytes))) }
                // The channel closed (the VM stopped or moved away): tell the browser now, so its page opens the
                // console again wherever the VM runs; its answer ends the inbound side.
                try? await outbound.close(.goingAway, reason: "the VM's console closed")
            }
            group.addTask {
                for try await message in inbound.messages(maxSize: Self.maxMessage) {
                    switch message {
                    case .binary(let buffer): Self.write(fd, Array(buffer.readableBytesView))
                    case .text(let text): Self.write(fd, Array(text.utf8))
                    }
                }
            }
            // Either side ended: the channel closed (the VM stopped or moved away) or the browser left.
            try await group.next()
            group.cancelAll()
        }
    }

    /// A blocking write to the channel: small (input events) and into a local socket, so it does not wait long.
    static func write(_ fd: Int32, _ bytes: [UInt8]) {
        var rest = bytes[...]
        while !rest.isEmpty {
            let sent = rest.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 {
                rest = rest.dropFirst(sent)
            } else if sent < 0, errno == EINTR {
                continue
            } else {
                return
            }
        }
    }

    /// A thread that reads the channel (a blocking descriptor) into an async stream. The descriptor is closed once
    /// both the thread and the bridge are done with it, never earlier: a closed number could be reused by another
    /// open file while the bridge still writes.
    final class Reader: @unchecked Sendable {
        // Safety: `users` is guarded by `lock`; `fd` and `stream` are set once in init.
        let stream: AsyncStream<[UInt8]>
        private let fd: Int32
        private let lock = NSLock()
        private var users = 2

        init(fd: Int32) {
            self.fd = fd
            let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self)
            self.stream = stream
            let thread = Thread { [self] in
                var buffer = [UInt8](repeating: 0, count: ConsoleBridge.chunk)
                while true {
                    let count = read(fd, &buffer, buffer.count)
                    if count < 0, errno == EINTR { continue }
                    if count <= 0 { break }
                    continuation.yield(Array(buffer[..<count]))
                }
                continuation.finish()
                self.release()
            }
            thread.name = "clevervm-web.console"
            thread.start()
        }

        /// The bridge is done: wakes the reading thread (its read returns 0).
        func stop() {
            shutdown(self.fd, Int32(SHUT_RDWR))
            self.release()
        }

        private func release() {
            let last = self.lock.withLock {
                self.users -= 1
                return self.users == 0
            }
            if last { close(self.fd) }
        }
    }
}
