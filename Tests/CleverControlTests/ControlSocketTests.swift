import CleverControl
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The control socket in this process: a CLI that goes away before its answer must not take the agent with it.
@Suite struct ControlSocketTests {
    static func socketPath() -> String {
        "/tmp/clevervm-control-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))/agent.sock"
    }

    @Test func aClientThatHangsUpBeforeTheAnswerDoesNotKillTheServer() async throws {
        // The default disposition: a write to a closed socket would end this process, as it ended the agent.
        signal(SIGPIPE, SIG_DFL)
        let path = Self.socketPath()
        defer {
            unlink(path)
            rmdir((path as NSString).deletingLastPathComponent)
        }
        try ControlSocket.serve(path: path) { request in
            if case .events = request { try? await Task.sleep(for: .milliseconds(300)) }
            // Big enough that the write does not fit the socket buffer of a closed peer in one go.
            return .done(String(repeating: "x", count: 1 << 20))
        }
        // A client sends a request and hangs up at once.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(connected == 0)
        let line = Array(#"{"kind":"events","limit":1,"v":1}"#.utf8) + [0x0A]
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        // The server answers into the closed socket; then serves the next caller.
        try await Task.sleep(for: .milliseconds(600))
        let answer = try ControlSocket.call(.status, path: path, timeout: 10)
        #expect(answer == .done(String(repeating: "x", count: 1 << 20)))
    }

    @Test func aRequestOfAnotherVersionGetsAnAnswerSayingSo() throws {
        let path = Self.socketPath()
        defer {
            unlink(path)
            rmdir((path as NSString).deletingLastPathComponent)
        }
        try ControlSocket.serve(path: path) { _ in .done("ok") }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let line = Array(#"{"kind":"status","v":9}"#.utf8) + [0x0A]
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        let answer = try ControlWire.decodeResponse(Array(buffer[..<max(0, count - 1)]))
        #expect(answer == .failure("refused the request: control protocol version 9 is not supported (this side speaks 1); use the clevervm of the agent's release"))
    }
}
