import CleverSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A unix socket that stands in for a VM's console or VNC socket in tests: every line received comes back as
/// "<prefix><line>", and everything received is kept (`received`) to check what reached the "VM".
public final class EchoSocket: @unchecked Sendable {
    // Safety: `log` is guarded by `lock`; the listener is closed once, in stop.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let path: String
    private let listener: Int32
    private let lock = NSLock()
    private var log: [UInt8] = []

    public var received: String { self.lock.withLock { String(decoding: self.log, as: UTF8.self) } }

    public init(prefix: String) throws {
        let path = NSTemporaryDirectory() + "clevervm-echo-\(UUID().uuidString.prefix(8)).sock"
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0, try UnixSocketAddress(path: path).bind(fd) == 0, listen(fd, 4) == 0 else {
            if fd >= 0 { close(fd) }
            throw Failure(description: "cannot listen on \(path)")
        }
        self.listener = fd
        Thread { [self] in
            while true {
                let client = accept(self.listener, nil, nil)
                if client < 0 { return }
                Thread { [self] in self.serve(client, prefix: Array(prefix.utf8)) }.start()
            }
        }.start()
    }

    private func serve(_ client: Int32, prefix: [UInt8]) {
        defer { close(client) }
        var line: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(client, &buffer, buffer.count)
            if count <= 0 { return }
            self.lock.withLock { self.log += buffer[..<count] }
            for byte in buffer[..<count] {
                if byte == 10 {
                    let answer = prefix + line + [10]
                    _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    line = []
                } else {
                    line.append(byte)
                }
            }
        }
    }

    public func stop() {
        shutdown(self.listener, Int32(SHUT_RDWR))
        close(self.listener)
        unlink(self.path)
    }
}
