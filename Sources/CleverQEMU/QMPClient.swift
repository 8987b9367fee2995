import CleverSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A QMP connection over QEMU's unix socket: greeting, capabilities negotiation, commands with ids, events.
/// The socket is non-blocking and waits are `Task.sleep`s, so no cooperative thread ever blocks.
public actor QMPClient {
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var socket: String
        public var command: String
        public var reason: String
        public var description: String { "QMP \(self.command) on \(self.socket): \(self.reason)" }
    }

    public let socketPath: String
    private var fd: Int32
    private var lines = QMP.LineBuffer()
    private var pendingMessages: [QMP.Message] = []
    private var serial = 0
    /// Events seen so far, in order (name, data).
    public private(set) var events: [(name: String, data: JSONValue)] = []

    private init(socketPath: String, fd: Int32) {
        self.socketPath = socketPath
        self.fd = fd
    }

    /// Connects, reads the greeting and leaves capabilities negotiation mode. `greeting: false` is for
    /// qemu-guest-agent's channel, which speaks the same JSON commands without a greeting.
    public static func connect(_ socketPath: String, timeout: Duration = .seconds(5), greeting: Bool = true) async throws(Failure) -> QMPClient {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(socket: socketPath, command: "connect", reason: String(cString: strerror(errno))) }
        let address: UnixSocketAddress
        do { address = try UnixSocketAddress(path: socketPath) } catch {
            Glibc.close(fd)
            throw Failure(socket: socketPath, command: "connect", reason: "\(error)")
        }
        let connected = address.connect(fd)
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw Failure(socket: socketPath, command: "connect", reason: reason)
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        let client = QMPClient(socketPath: socketPath, fd: fd)
        if greeting { try await client.handshake(timeout: timeout) }
        return client
    }

    private func handshake(timeout: Duration) async throws(Failure) {
        let deadline = ContinuousClock.now + timeout
        while true {
            let message = try await self.nextMessage(deadline: deadline, command: "greeting")
            if case .greeting = message { break }
        }
        _ = try await self.execute("qmp_capabilities", timeout: timeout)
    }

    /// Sends a command and waits for the reply with its id; events that arrive meanwhile are kept.
    @discardableResult
    public func execute(_ name: String, _ arguments: JSONValue? = nil, timeout: Duration = .seconds(10)) async throws(Failure) -> JSONValue {
        guard self.fd >= 0 else { throw Failure(socket: self.socketPath, command: name, reason: "connection closed") }
        self.serial += 1
        let id = "clevervm-\(self.serial)"
        try await self.send(QMP.command(name, arguments: arguments, id: id), command: name)
        let deadline = ContinuousClock.now + timeout
        while true {
            let message = try await self.nextMessage(deadline: deadline, command: name)
            switch message {
            case .success(let replyID, let value) where replyID == id: return value
            case .failure(let replyID, let errorClass, let description) where replyID == id:
                throw Failure(socket: self.socketPath, command: name, reason: "\(errorClass): \(description)")
            default: continue
            }
        }
    }

    /// Sends a command that never replies on success (qemu-guest-agent's `guest-shutdown`).
    public func post(_ name: String, _ arguments: JSONValue? = nil) async throws(Failure) {
        guard self.fd >= 0 else { throw Failure(socket: self.socketPath, command: name, reason: "connection closed") }
        self.serial += 1
        try await self.send(QMP.command(name, arguments: arguments, id: "clevervm-\(self.serial)"), command: name)
    }

    /// Waits until an event named `name` arrives (or was already seen since `since`), returns its data.
    public func waitForEvent(_ name: String, since index: Int = 0, timeout: Duration) async throws(Failure) -> JSONValue {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let found = self.events[min(index, self.events.count)...].first(where: { $0.name == name }) { return found.data }
            _ = try await self.nextMessage(deadline: deadline, command: "wait for \(name)")
        }
    }

    public func close() {
        if self.fd >= 0 { Glibc.close(self.fd) }
        self.fd = -1
    }

    // MARK: - I/O

    private func send(_ text: String, command: String) async throws(Failure) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(self.fd, $0.baseAddress, $0.count) }
            if written > 0 {
                bytes = bytes.dropFirst(written)
            } else if written < 0, errno == EAGAIN || errno == EINTR {
                try? await Task.sleep(for: .milliseconds(2))
            } else {
                throw Failure(socket: self.socketPath, command: command, reason: "write: \(String(cString: strerror(errno)))")
            }
        }
    }

    private func nextMessage(deadline: ContinuousClock.Instant, command: String) async throws(Failure) -> QMP.Message {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while self.pendingMessages.isEmpty {
            guard self.fd >= 0 else { throw Failure(socket: self.socketPath, command: command, reason: "connection closed") }
            let count = buffer.withUnsafeMutableBytes { Glibc.read(self.fd, $0.baseAddress, $0.count) }
            if count > 0 {
                for line in self.lines.append(buffer[..<count]) {
                    do {
                        let message = try QMP.parse(line: line)
                        if case .event(let name, let data) = message { self.events.append((name, data)) }
                        self.pendingMessages.append(message)
                    } catch {
                        throw Failure(socket: self.socketPath, command: command, reason: "\(error)")
                    }
                }
            } else if count == 0 {
                self.close()
                throw Failure(socket: self.socketPath, command: command, reason: "QEMU closed the connection")
            } else if errno == EAGAIN || errno == EINTR {
                guard ContinuousClock.now < deadline else {
                    throw Failure(socket: self.socketPath, command: command, reason: "no reply in time")
                }
                try? await Task.sleep(for: .milliseconds(2))
            } else {
                throw Failure(socket: self.socketPath, command: command, reason: "read: \(String(cString: strerror(errno)))")
            }
        }
        return self.pendingMessages.removeFirst()
    }
}
