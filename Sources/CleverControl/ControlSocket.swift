import CleverSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Line-framed JSON over a unix stream socket: the CLI side and the agent side.
public enum ControlSocket {
    public static let defaultPath = "/run/clevervm/agent.sock"
    public static let maximumLine = 8 << 20

    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    static func address(_ path: String) throws(Failure) -> UnixSocketAddress {
        do { return try UnixSocketAddress(path: path) } catch { throw Failure("\(error)") }
    }

    /// Sends one request and waits for the response (the CLI side).
    public static func call(_ request: ControlRequest, path: String = Self.defaultPath, timeout: Double = 120) throws(Failure) -> ControlResponse {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard try Self.address(path).connect(fd) == 0 else {
            switch errno {
            case ENOENT, ECONNREFUSED:
                throw Failure("the clevervm agent is not running on this host (nothing listens on \(path)); start it with `clevervm agent` or `service clevervm start`")
            case EACCES, EPERM:
                throw Failure("permission denied on \(path): the control socket is root-only; run as root")
            default:
                throw Failure("cannot connect to \(path): \(String(cString: strerror(errno)))")
            }
        }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        try Self.writeAll(fd, ControlWire.encode(request) + [0x0A])
        guard let line = try Self.readLine(fd) else { throw Failure("the agent closed the connection without answering") }
        do {
            return try ControlWire.decodeResponse(line)
        } catch {
            throw Failure("the agent's answer: \(error)")
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw Failure("write to the control socket: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    static func readLine(_ fd: Int32) throws(Failure) -> [UInt8]? {
        var line: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { throw Failure("the agent did not answer in time") }
                throw Failure("read from the control socket: \(String(cString: strerror(errno)))")
            }
            if count == 0 { return line.isEmpty ? nil : line }
            if let newline = buffer[..<count].firstIndex(of: 0x0A) {
                line += buffer[..<newline]
                return line
            }
            line += buffer[..<count]
            guard line.count <= Self.maximumLine else { throw Failure("request larger than \(Self.maximumLine) bytes") }
        }
    }

    /// Serves requests on `path` (the agent side): one thread accepts, one thread per connection.
    /// The socket's directory is made root-only (0700) and the socket 0600.
    public static func serve(path: String, handler: @escaping @Sendable (ControlRequest) async -> ControlResponse) throws(Failure) {
        let directory = (path as NSString).deletingLastPathComponent
        mkdir(directory, 0o700)
        chmod(directory, 0o700)
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket: \(String(cString: strerror(errno)))") }
        guard try Self.address(path).bind(fd) == 0 else { throw Failure("bind \(path): \(String(cString: strerror(errno)))") }
        chmod(path, 0o600)
        guard listen(fd, 16) == 0 else { throw Failure("listen \(path): \(String(cString: strerror(errno)))") }
        let acceptor = Thread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { if errno == EINTR { continue }; return }
                let worker = Thread {
                    defer { close(client) }
                    guard let line = try? Self.readLine(client) else { return }
                    let response: ControlResponse
                    switch Result(catching: { () throws(ControlWire.Refusal) in try ControlWire.decodeRequest(line) }) {
                    case .success(let request):
                        let box = ResponseBox()
                        let done = DispatchSemaphore(value: 0)
                        Task {
                            box.response = await handler(request)
                            done.signal()
                        }
                        done.wait()
                        response = box.response ?? .failure("no answer")
                    case .failure(let refusal):
                        response = .failure("refused the request: \(refusal)")
                    }
                    // The CLI may have gone away meanwhile: the write fails with EPIPE, never a SIGPIPE (MSG_NOSIGNAL).
                    try? Self.writeAll(client, ControlWire.encode(response) + [0x0A])
                }
                worker.start()
            }
        }
        acceptor.start()
    }

    private final class ResponseBox: @unchecked Sendable {
        // Safety: written by the task before `done` is signalled, read after waiting on it.
        var response: ControlResponse?
    }
}
