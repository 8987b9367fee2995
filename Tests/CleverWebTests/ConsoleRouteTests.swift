import CleverModel
import CleverQEMU
import CleverTesting
import CleverWeb
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The VM's screen and serial console: who may open them (login, operator, same origin), and the bytes crossing
/// websocket → console relay → the VM's socket, against a real relay in front of stand-in sockets.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ConsoleRouteTests {
    static let key = Array("the cluster key of the console route test".utf8)

    /// mba7 with `display: vnc`.
    static func configWithScreen() -> ClusterConfig {
        var config = Fixtures.twoHost()
        for index in config.resources.indices where config.resources[index].id == "mba7" {
            if case .vm(var spec) = config.resources[index].kind {
                spec.display = .vnc
                config.resources[index].kind = .vm(spec)
            }
        }
        return config
    }

    static func headers(_ login: RouteTests.Login?, origin: String?) -> HTTPFields {
        var headers = HTTPFields()
        if let login { headers[.cookie] = login.cookie }
        if let origin { headers[.origin] = origin }
        return headers
    }

    @Test func anUpgradeNeedsALoginAnOperatorAndThisConsolesOrigin() async throws {
        let harness = try await RouteTests.harness(config: Self.configWithScreen())
        let pages = Application(router: harness.console.router())
        let operatorLogin = try await pages.test(.router) { try await RouteTests.login($0, user: "olga", password: RouteTests.operatorPassword) }
        let viewerLogin = try await pages.test(.router) { try await RouteTests.login($0, user: "victor", password: RouteTests.viewerPassword) }
        // The router that decides upgrades: 200 is "upgrade", anything else refuses it.
        let upgrades = Application(router: harness.console.webSocketRouter())
        try await upgrades.test(.router) { client in
            for path in ["/vm/mba7/serial/websocket", "/vm/mba7/screen/websocket"] {
                let cases: [(RouteTests.Login?, String?, HTTPResponse.Status, String)] = [
                    (nil, "http://localhost", .unauthorized, "no login"),
                    (viewerLogin, "http://localhost", .forbidden, "a viewer"),
                    (operatorLogin, nil, .forbidden, "no Origin"),
                    (operatorLogin, "https://evil.example", .forbidden, "another site's page"),
                    (operatorLogin, "https://localhost", .forbidden, "another scheme"),
                    (operatorLogin, "http://localhost.evil.example", .forbidden, "a look-alike"),
                    (operatorLogin, "http://localhost", .ok, "an operator on this console's page"),
                ]
                for (login, origin, status, what) in cases {
                    try await client.execute(uri: path, method: .get, headers: Self.headers(login, origin: origin)) { response in
                        #expect(response.status == status, "\(path), \(what)")
                    }
                }
            }
        }
        // The same path asked without an upgrade (as a person would, to see why) goes to the pages' router, which says
        // why; a refused upgrade itself is answered 400 and closed by NIO's upgrader (the live test below).
        try await pages.test(.router) { client in
            try await client.execute(uri: "/vm/mba7/serial/websocket", method: .get, headers: Self.headers(nil, origin: "http://localhost")) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/vm/mba7/serial/websocket", method: .get, headers: Self.headers(viewerLogin, origin: "http://localhost")) { response in
                #expect(response.status == .forbidden)
                #expect(String(buffer: response.body).contains("operator role"))
            }
            try await client.execute(uri: "/vm/mba7/serial/websocket", method: .get, headers: Self.headers(operatorLogin, origin: "https://evil.example")) { response in
                #expect(response.status == .forbidden)
                #expect(String(buffer: response.body).contains("Origin https://evil.example"))
            }
            try await client.execute(uri: "/vm/mba7/serial/websocket", method: .get, headers: Self.headers(operatorLogin, origin: "http://localhost")) { response in
                #expect(response.status.code == 426, "a plain GET of a websocket path")
            }
        }
    }

    @Test func thePagesAreForOperatorsAndTheScreenOnlyForAVMWithADisplay() async throws {
        let harness = try await RouteTests.harness(config: Self.configWithScreen())
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            let viewer = try await RouteTests.login(client, user: "victor", password: RouteTests.viewerPassword)
            for path in ["/vm/mba7/screen", "/vm/mba7/serial"] {
                try await client.execute(uri: path, method: .get, headers: Self.headers(viewer, origin: nil)) { response in
                    #expect(response.status == .forbidden, "\(path)")
                }
            }
            try await client.execute(uri: "/vm/mba7", method: .get, headers: Self.headers(viewer, origin: nil)) { response in
                let html = String(buffer: response.body)
                #expect(html.contains("href=\"/vm/mba7/screen\""), "the VM page links its screen")
                #expect(html.contains("need the operator role"))
            }
            let login = try await RouteTests.login(client, user: "olga", password: RouteTests.operatorPassword)
            try await client.execute(uri: "/vm/mba7/screen", method: .get, headers: Self.headers(login, origin: nil)) { response in
                #expect(response.status == .ok)
                let html = String(buffer: response.body)
                #expect(html.contains("data-websocket=\"/vm/mba7/screen/websocket\""))
                #expect(html.contains("<script type=\"module\" src=\"/static/screen.js\">"))
                #expect(response.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            }
            try await client.execute(uri: "/vm/mba7/serial", method: .get, headers: Self.headers(login, origin: nil)) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("data-websocket=\"/vm/mba7/serial/websocket\""))
            }
            try await client.execute(uri: "/static/screen.js", method: .get) { response in
                #expect(String(buffer: response.body).contains("import RFB from \"/novnc/core/rfb.js\""))
            }
            if FileManager.default.fileExists(atPath: "/usr/share/novnc/core/rfb.js") {
                try await client.execute(uri: "/novnc/core/rfb.js", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType]?.hasPrefix("text/javascript") == true, "a module needs a script type")
                }
            }
            for path in ["/novnc/vnc.html", "/novnc/core/..%2F..%2F..%2Fetc%2Fpasswd", "/novnc/utils/novnc_proxy", "/novnc/core/.hidden.js"] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .notFound, "\(path): only noVNC's modules")
                }
            }
        }
        // Without `display: vnc` there is no screen to show, and the page says how to get one.
        let plain = try await RouteTests.harness()
        try await Application(router: plain.console.router()).test(.router) { client in
            let login = try await RouteTests.login(client, user: "olga", password: RouteTests.operatorPassword)
            try await client.execute(uri: "/vm/mba7/screen", method: .get, headers: Self.headers(login, origin: nil)) { response in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body).contains("display: vnc"))
            }
            try await client.execute(uri: "/vm/gw-ping/serial", method: .get, headers: Self.headers(login, origin: nil)) { response in
                #expect(response.status == .notFound, "not a VM")
            }
        }
    }

    /// The whole path, live: a browser's websocket (a plain client, `RawWebSocket`) → this console → the console relay of
    /// the VM's host (a real `ConsoleRelay.Server`, cluster key, AES-GCM frames) → the VM's console or VNC socket.
    @Test func bytesCrossWebSocketAndRelayToTheVMsSockets() async throws {
        let console = try EchoSocket(prefix: "console got: ")
        defer { console.stop() }
        let display = try EchoSocket(prefix: "display got: ")
        defer { display.stop() }
        let relay = try ConsoleRelay.Server(address: "127.0.0.1", port: 0, key: Self.key) { channel, vm in
            vm == "mba7" ? (channel == .vnc ? display.path : console.path) : nil
        }
        defer { relay.stop() }
        let keyFile = NSTemporaryDirectory() + "cvw-key-\(UUID().uuidString.prefix(8))"
        try Data(Self.key).write(to: URL(fileURLWithPath: keyFile))
        defer { unlink(keyFile) }
        // No socket in this run directory: the VM runs "elsewhere", so the console goes through the relay.
        let dialer = ConsoleDialer(runDirectory: NSTemporaryDirectory() + "cvw-empty", keyFile: keyFile, relayPort: relay.port,
                                   relayAddress: { _ in "127.0.0.1" })
        let harness = try await RouteTests.harness(config: Self.configWithScreen(), dialer: dialer)
        let app = Application(router: harness.console.router(), server: harness.console.httpServer(),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let login = try await RouteTests.login(client, user: "olga", password: RouteTests.operatorPassword)
            let port = try #require(client.port)
            for (path, expected) in [("/vm/mba7/serial/websocket", "console got: echo hi"), ("/vm/mba7/screen/websocket", "display got: echo hi")] {
                // As a browser on this console's page sends it: the session cookie and this console's Origin.
                let answer = try await RawWebSocket.exchange(port: port, path: path, cookie: login.cookie, origin: "http://127.0.0.1:\(port)",
                                                             send: "echo hi\n", until: expected)
                #expect(answer.status == 101, "\(path): \(answer.response)")
                #expect(answer.received.contains(expected), "\(path): \(answer.received)")
            }
            #expect(console.received.contains("echo hi") && display.received.contains("echo hi"))
            // A page of another site gets no websocket: the upgrade is refused, nothing reaches the console.
            let before = console.received
            let refused = try await RawWebSocket.exchange(port: port, path: "/vm/mba7/serial/websocket", cookie: login.cookie,
                                                          origin: "https://evil.example", send: "rm -rf /\n", until: "never")
            #expect(refused.status == 400, "no 101, the connection closed (NIO's upgrader answers a refused upgrade): \(refused.response)")
            #expect(console.received == before)
        }
    }
}

/// The client side of a websocket as a browser speaks it (RFC 6455), over a plain socket: the upgrade request with
/// exactly the headers given (Hummingbird's client adds an Origin of its own), one masked binary message, then the
/// server's binary messages until `until` is among them (5 s at most).
enum RawWebSocket {
    struct Answer: Sendable { var status: Int; var response: String; var received: String }

    static func exchange(port: Int, path: String, cookie: String, origin: String, send text: String, until expected: String) async throws -> Answer {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do { continuation.resume(returning: try Self.run(port: port, path: path, cookie: cookie, origin: origin, text: text, expected: expected)) } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    static func run(port: Int, path: String, cookie: String, origin: String, text: String, expected: String) throws -> Answer {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var peer = sockaddr_in()
        peer.sin_family = sa_family_t(AF_INET)
        peer.sin_port = in_port_t(UInt16(port).bigEndian)
        peer.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &peer) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw WebError(.internalServerError, "cannot connect to 127.0.0.1:\(port)") }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: \(origin)\r\nCookie: \(cookie)\r\n\r\n"
        Self.write(fd, Array(request.utf8))
        var pending: [UInt8] = []
        let deadline = Date().addingTimeInterval(5)
        var headerEnd: Int?
        while headerEnd == nil, Date() < deadline {
            guard let more = Self.read(fd) else { break }
            pending += more
            headerEnd = Self.find([13, 10, 13, 10], in: pending)
        }
        guard let end = headerEnd else { return Answer(status: 0, response: String(decoding: pending, as: UTF8.self), received: "") }
        let response = String(decoding: pending[..<end], as: UTF8.self)
        let status = Int(response.split(separator: " ").dropFirst().first ?? "") ?? 0
        pending.removeFirst(end + 4)
        guard status == 101 else { return Answer(status: status, response: response, received: "") }
        // One binary message, masked as a client must.
        let payload = Array(text.utf8)
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        Self.write(fd, [0x82, 0x80 | UInt8(payload.count)] + mask + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
        var received = ""
        while !received.contains(expected), Date() < deadline {
            while let (message, used) = Self.frame(pending) {
                received += String(decoding: message, as: UTF8.self)
                pending.removeFirst(used)
            }
            if received.contains(expected) { break }
            if let more = Self.read(fd) { pending += more }
        }
        return Answer(status: status, response: response, received: received)
    }

    /// A whole unmasked server frame at the start of `bytes`: its payload and its length on the wire.
    static func frame(_ bytes: [UInt8]) -> ([UInt8], Int)? {
        guard bytes.count >= 2 else { return nil }
        var length = Int(bytes[1] & 0x7f)
        var offset = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        guard bytes.count >= offset + length else { return nil }
        return (Array(bytes[offset..<offset + length]), offset + length)
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        return (0...(haystack.count - needle.count)).first { Array(haystack[$0..<$0 + needle.count]) == needle }
    }

    static func read(_ fd: Int32) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = Glibc.read(fd, &buffer, buffer.count)
        return count > 0 ? Array(buffer[..<count]) : (count < 0 && errno == EAGAIN ? [] : nil)
    }

    static func write(_ fd: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}

