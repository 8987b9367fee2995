import CleverSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A VM's serial console: QEMU's socket chardev `RUN/VM.console` (one client at a time; QEMU logs the guest's output
/// to `RUN/VM.console.log` either way). `attach` is the interactive terminal of `clevervm console`; `Connection` is
/// the programmatic side for relays and the web console.
public enum ConsoleSession {
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var socket: String
        public var reason: String
        public var description: String { "console \(self.socket): \(self.reason)" }
    }

    public enum Ending: Hashable, Sendable {
        /// The user typed the detach key.
        case detached
        /// QEMU closed the console (the VM stopped or moved away) or the input ended.
        case closed
    }

    /// Ctrl-] detaches, as in telnet and virsh console.
    public static let detachKey: UInt8 = 0x1d

    /// Connects to the console socket (a blocking descriptor; the caller closes it).
    public static func connect(_ socket: String) throws(Failure) -> Int32 {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(socket: socket, reason: String(cString: strerror(errno))) }
        let address: UnixSocketAddress
        do { address = try UnixSocketAddress(path: socket) } catch {
            Glibc.close(fd)
            throw Failure(socket: socket, reason: "\(error)")
        }
        let connected = address.connect(fd)
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw Failure(socket: socket, reason: reason)
        }
        return fd
    }

    /// Copies `input` to the console and the console to `output` until the detach key, the end of `input`, or
    /// QEMU closing the console. With `rawTerminal`, `input` (a tty) is in raw mode meanwhile, so keys such as
    /// Ctrl-C reach the guest; the terminal is restored on every way out.
    public static func attach(socket: String, input: Int32, output: Int32, rawTerminal: Bool) throws(Failure) -> Ending {
        let fd = try Self.connect(socket)
        defer { Glibc.close(fd) }
        return try Self.attach(fd: fd, name: socket, input: input, output: output, rawTerminal: rawTerminal)
    }

    /// The same over an already connected console (a relay's connection from another host).
    public static func attach(fd: Int32, name: String, input: Int32, output: Int32, rawTerminal: Bool) throws(Failure) -> Ending {
        let socket = name
        var saved = termios()
        let restore = rawTerminal && tcgetattr(input, &saved) == 0
        if restore {
            var raw = saved
            cfmakeraw(&raw)
            tcsetattr(input, TCSANOW, &raw)
        }
        defer { if restore { tcsetattr(input, TCSANOW, &saved) } }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var fds = [pollfd(fd: input, events: Int16(POLLIN), revents: 0), pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        while true {
            guard poll(&fds, 2, -1) >= 0 else {
                if errno == EINTR { continue }
                throw Failure(socket: socket, reason: "poll: \(String(cString: strerror(errno)))")
            }
            if fds[1].revents != 0 {
                let count = read(fd, &buffer, buffer.count)
                if count <= 0 { return .closed }
                Self.writeAll(output, buffer[..<count])
            }
            if fds[0].revents != 0 {
                let count = read(input, &buffer, buffer.count)
                if count <= 0 { return .closed }
                let bytes = buffer[..<count]
                if let key = bytes.firstIndex(of: Self.detachKey) {
                    Self.writeAll(fd, bytes[..<key])
                    return .detached
                }
                Self.writeAll(fd, bytes)
            }
        }
    }

    /// Writes everything to a socket, pipe or terminal. On a socket whose peer went away the write fails with
    /// EPIPE, never a SIGPIPE (MSG_NOSIGNAL): the console relay's client thread writes to a socket pair whose
    /// other end the program may just have closed.
    static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) {
        var rest = bytes
        while !rest.isEmpty {
            let written = rest.withUnsafeBytes { buffer in
                let sent = send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
                return sent < 0 && errno == ENOTSOCK ? write(fd, buffer.baseAddress, buffer.count) : sent
            }
            if written > 0 {
                rest = rest.dropFirst(written)
            } else if written < 0, errno == EINTR || errno == EAGAIN {
                usleep(1000)
            } else {
                return
            }
        }
    }

    /// A console connection for programs (a relay between hosts, the web console): send keys, read output.
    public actor Connection {
        public let socket: String
        private var fd: Int32

        private init(socket: String, fd: Int32) {
            self.socket = socket
            self.fd = fd
        }

        public static func open(_ socket: String) throws(Failure) -> Connection {
            let fd = try ConsoleSession.connect(socket)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            return Connection(socket: socket, fd: fd)
        }

        public func send(_ text: String) throws(Failure) {
            guard self.fd >= 0 else { throw Failure(socket: self.socket, reason: "closed") }
            ConsoleSession.writeAll(self.fd, Array(text.utf8)[...])
        }

        /// What the console printed within `timeout` (at least until it goes quiet for 100 ms after output began).
        public func read(for timeout: Duration) async throws(Failure) -> String {
            guard self.fd >= 0 else { throw Failure(socket: self.socket, reason: "closed") }
            var collected: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                let count = Glibc.read(self.fd, &buffer, buffer.count)
                if count > 0 {
                    collected += buffer[..<count]
                    continue
                }
                if count == 0 { break }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return String(decoding: collected, as: UTF8.self)
        }

        public func close() {
            if self.fd >= 0 { Glibc.close(self.fd) }
            self.fd = -1
        }
    }
}

/// The VM's screen: QMP `screendump` (PNG) of its VGA card. The file is written by QEMU (same host), then moved.
public enum VMScreen {
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]

    /// Writes the PNG to `file`; returns its size in bytes.
    public static func screenshot(vm: String, runDirectory: String, to file: String) async throws -> Int {
        let paths = VMAgent.Paths(vm: vm, runDirectory: runDirectory, stateDirectory: "")
        guard FileManager.default.fileExists(atPath: paths.qmpSocket) else {
            throw Failure(description: "\(vm) does not run on this host (no QMP socket \(paths.qmpSocket))")
        }
        let qmp = try await QMPClient.connect(paths.qmpSocket)
        defer { Task { await qmp.close() } }
        let temporary = "\(runDirectory)/\(vm).screendump-\(getpid()).png"
        defer { unlink(temporary) }
        try await qmp.execute("screendump", ["filename": .string(temporary), "format": "png"], timeout: .seconds(30))
        guard let data = FileManager.default.contents(atPath: temporary), data.starts(with: Self.pngSignature) else {
            throw Failure(description: "QEMU's screendump of \(vm) is not a PNG")
        }
        do {
            try data.write(to: URL(fileURLWithPath: file))
        } catch {
            throw Failure(description: "cannot write \(file): \(error.localizedDescription)")
        }
        return data.count
    }
}
