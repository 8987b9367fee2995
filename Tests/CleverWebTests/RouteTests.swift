import CleverCluster
import CleverControl
import CleverModel
import CleverTesting
import CleverWeb
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// In-process route tests (Hummingbird's router test client) against a real control socket answered by the
/// in-memory replicated state machine.
@Suite(.serialized) struct RouteTests {
    static let operatorPassword = "operator-password-1"
    static let viewerPassword = "viewer-password-1"

    /// Every page and API route, with the least role it needs (what `AccessPolicy` must enforce).
    static let routes: [(HTTPRequest.Method, String, AccessPolicy.Requirement)] = [
        (.get, "/", .viewer), (.get, "/vm/mba7", .viewer), (.get, "/volumes", .viewer), (.get, "/events", .viewer),
        (.get, "/whatif", .viewer), (.get, "/explain/mba7", .viewer),
        (.get, "/api/v1/status", .viewer), (.get, "/api/v1/events", .viewer), (.get, "/api/v1/session", .viewer),
        (.get, "/api/v1/explain/mba7", .viewer), (.get, "/api/v1/volumes", .viewer), (.get, "/api/v1/volumes/disk0", .viewer),
        (.get, "/api/v1/stream", .viewer),
        (.post, "/api/v1/simulate", .viewer), (.post, "/api/v1/logout", .viewer), (.post, "/logout", .viewer),
        (.post, "/api/v1/forcestart/mba7", .operator), (.post, "/api/v1/forcestop/mba7", .operator),
        (.post, "/api/v1/standby/beta", .operator), (.post, "/api/v1/unstandby/beta", .operator),
        (.post, "/api/v1/cleanup", .operator), (.post, "/api/v1/migrate", .operator), (.post, "/api/v1/unmigrate", .operator),
        (.post, "/api/v1/volumes/disk0/verify", .operator), (.post, "/api/v1/volumes/disk0/resolve", .operator),
        (.get, "/login", .open), (.post, "/login", .login), (.post, "/api/v1/login", .login),
        (.get, "/api/v1/openapi.json", .open), (.get, "/static/app.js", .open), (.get, "/static/bootstrap.min.css", .open),
        // The VM's screen and serial console: operator even to watch (see ConsoleRouteTests).
        (.get, "/vm/mba7/screen", .operator), (.get, "/vm/mba7/serial", .operator),
        (.get, "/vm/mba7/screen/websocket", .operator), (.get, "/vm/mba7/serial/websocket", .operator),
        (.get, "/static/screen.js", .open), (.get, "/static/serial.js", .open), (.get, "/novnc/core/rfb.js", .open),
    ]

    struct Harness {
        let agent: TestAgent
        let console: WebConsole
        let clock: ManualClock
    }

    final class ManualClock: @unchecked Sendable {
        // Safety: guarded by `lock`.
        private let lock = NSLock()
        private var value = Duration.zero
        var now: Duration { self.lock.withLock { self.value } }
        func advance(_ by: Duration) { self.lock.withLock { self.value += by } }
    }

    static func harness(agentRunning: Bool = true, config: ClusterConfig = Fixtures.twoHost(), dialer: ConsoleDialer? = nil) async throws -> Harness {
        let agent = try TestAgent(config: config)
        let usersPath = agent.directory + "/users.json"
        var file = AccountFile(path: usersPath)
        try file.set(name: "olga", role: .operator, password: Self.operatorPassword, replace: false, cost: 4)
        try file.set(name: "victor", role: .viewer, password: Self.viewerPassword, replace: false, cost: 4)
        try file.save()
        var options = WebConsole.Options()
        options.accountsPath = usersPath
        options.link = AgentLink(socketPath: agentRunning ? agent.socketPath : agent.directory + "/no-agent.sock",
                                 runDirectory: agent.directory, timeout: 5)
        options.sessions = SessionTable(idleTimeout: .seconds(60), lifetime: .seconds(3600))
        if let dialer { options.console = dialer }
        let clock = ManualClock()
        let console = try await WebConsole(options: options, logger: Logger(label: "test"), now: { clock.now })
        await console.feed.refresh()
        return Harness(agent: agent, console: console, clock: clock)
    }

    struct Login { var cookie: String; var csrf: String }

    static func login(_ client: some TestClientProtocol, user: String, password: String) async throws -> Login {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let body = ByteBuffer(string: #"{"user":"\#(user)","password":"\#(password)"}"#)
        return try await client.execute(uri: "/api/v1/login", method: .post, headers: headers, body: body) { response in
            #expect(response.status == .ok)
            let setCookie = try #require(response.headers[.setCookie])
            #expect(setCookie.contains("HttpOnly"))
            #expect(setCookie.lowercased().contains("samesite=strict"))
            let token = try #require(setCookie.split(separator: ";").first.map(String.init))
            let json = try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]
            let csrf = try #require(json?["csrfToken"] as? String)
            return Login(cookie: token, csrf: csrf)
        }
    }

    static func headers(_ login: Login?, csrf: String? = nil, json: Bool = true) -> HTTPFields {
        var headers = HTTPFields()
        if let login { headers[.cookie] = login.cookie }
        if let csrf { headers[HTTPField.Name("X-CSRF-Token")!] = csrf }
        if json { headers[.contentType] = "application/json" }
        return headers
    }

    // MARK: - Access

    @Test func thePolicyTableMatchesEveryRoute() {
        for (method, path, requirement) in Self.routes {
            #expect(AccessPolicy.requirement(method: method, path: path) == requirement, "\(method) \(path)")
        }
    }

    @Test func nothingWithoutLogin() async throws {
        let harness = try await Self.harness()
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            for (method, path, requirement) in Self.routes where requirement == .viewer || requirement == .operator {
                try await client.execute(uri: path, method: method, headers: Self.headers(nil), body: ByteBuffer(string: "{}")) { response in
                    if path.hasPrefix("/api/") || method == .post || AccessPolicy.isWebSocket(path) {
                        #expect(response.status == .unauthorized, "\(method) \(path)")
                    } else {
                        #expect(response.status == .found || response.status == .seeOther, "\(method) \(path)")
                        #expect(response.headers[.location]?.hasPrefix("/login?next=") == true, "\(path)")
                    }
                }
            }
        }
        #expect(harness.agent.recordedIntents.isEmpty)
    }

    @Test func wrongPasswordIsRefusedAndNotLogged() async throws {
        let harness = try await Self.harness()
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            try await client.execute(uri: "/api/v1/login", method: .post, headers: headers,
                                     body: ByteBuffer(string: #"{"user":"olga","password":"guess-guess-guess"}"#)) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.setCookie] == nil)
            }
            try await client.execute(uri: "/api/v1/login", method: .post, headers: headers,
                                     body: ByteBuffer(string: #"{"user":"nobody","password":"guess-guess-guess"}"#)) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test func loginFormNeedsItsOwnCookie() async throws {
        let harness = try await Self.harness()
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            let loginCookie = try await client.execute(uri: "/login", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("name=\"password\""))
                #expect(response.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
                return try #require(response.headers[.setCookie]?.split(separator: ";").first.map(String.init))
            }
            let value = String(loginCookie.split(separator: "=", maxSplits: 1)[1])
            var headers = HTTPFields()
            headers[.contentType] = "application/x-www-form-urlencoded"
            let form = "user=olga&password=\(Self.operatorPassword)&csrf=\(value)&next=%2Fvm%2Fmba7"
            // A cross-site form has no login cookie: refused.
            try await client.execute(uri: "/login", method: .post, headers: headers, body: ByteBuffer(string: form)) { response in
                #expect(response.status == .forbidden)
            }
            headers[.cookie] = loginCookie
            try await client.execute(uri: "/login", method: .post, headers: headers, body: ByteBuffer(string: form)) { response in
                #expect(response.status == .found || response.status == .seeOther)
                #expect(response.headers[.location] == "/vm/mba7")
                #expect(response.headers[.setCookie]?.contains("clevervm_session=") == true)
            }
        }
    }

    @Test func forgedCSRFTokenIsRefused() async throws {
        let harness = try await Self.harness()
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            let login = try await Self.login(client, user: "olga", password: Self.operatorPassword)
            // The real token with its last character changed (to one it is not: a fixed "A" equals it one time in 64).
            let altered = String(login.csrf.dropLast()) + (login.csrf.last == "A" ? "B" : "A")
            for csrf in [nil, "forged", altered] {
                try await client.execute(uri: "/api/v1/forcestop/mba7", method: .post, headers: Self.headers(login, csrf: csrf), body: ByteBuffer(string: "{}")) { response in
                    #expect(response.status == .forbidden)
                }
            }
            // A form post with a forged field, as a cross-site page would send.
            var headers = Self.headers(login, json: false)
            headers[.contentType] = "application/x-www-form-urlencoded"
            try await client.execute(uri: "/logout", method: .post, headers: headers, body: ByteBuffer(string: "csrf=forged")) { response in
                #expect(response.status == .forbidden)
            }
        }
        #expect(harness.agent.recordedIntents.isEmpty)
        #expect(harness.agent.running("mba7") == ["alpha"])
    }

    @Test func aViewerSeesAndSimulatesButCannotAct() async throws {
        let harness = try await Self.harness()
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            let login = try await Self.login(client, user: "victor", password: Self.viewerPassword)
            try await client.execute(uri: "/", method: .get, headers: Self.headers(login)) { response in
                #expect(response.status == .ok)
                let html = String(buffer: response.body)
                #expect(html.contains("mba7"))
                #expect(html.contains("victor (viewer)"))
            }
            for (method, path, requirement) in Self.routes where requirement == .operator {
                try await client.execute(uri: path, method: method, headers: Self.headers(login, csrf: login.csrf),
                                         body: ByteBuffer(string: #"{"node":"alpha","discard":"beta"}"#)) { response in
                    #expect(response.status == .forbidden, "\(path)")
                    #expect(String(buffer: response.body).contains("operator role"))
                }
            }
            try await client.execute(uri: "/api/v1/simulate", method: .post, headers: Self.headers(login, csrf: login.csrf),
                                     body: ByteBuffer(string: #"{"events":["node-down alpha"]}"#)) { response in
                #expect(response.status == .ok)
                let report = try JSONDecoder().decode(SimulationReport.self, from: Data(String(buffer: response.body).utf8))
                #expect(report.placement.contains { $0.resource == "mba7" && $0.node == "beta" })
                #expect(report.command == "clevervm simulate --event 'node-down alpha'")
            }
        }
        #expect(harness.agent.recordedIntents.isEmpty)
        #expect(harness.agent.running("mba7") == ["alpha"])
    }

    @Test func anOperatorMigratesAndTheConsoleFollows() async throws {
        let harness = try await Self.harness()
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            let login = try await Self.login(client, user: "olga", password: Self.operatorPassword)
            try await client.execute(uri: "/api/v1/migrate", method: .post, headers: Self.headers(login, csrf: login.csrf),
                                     body: ByteBuffer(string: #"{"node":"alpha","to":"beta"}"#)) { response in
                #expect(response.status == .ok)
                let body = String(buffer: response.body)
                #expect(body.contains("\"command\" : \"clevervm migrate --node alpha --to beta\""))
            }
            #expect(harness.agent.recordedIntents == [.migrate(node: "alpha", to: "beta", expires: nil)])
            #expect(harness.agent.running("mba7") == ["beta"])
            try await client.execute(uri: "/vm/mba7", method: .get, headers: Self.headers(login)) { response in
                let html = String(buffer: response.body)
                #expect(html.contains("id=\"vm-host\">beta<"))
                #expect(html.contains("alpha is marked unfit"))
            }
            try await client.execute(uri: "/api/v1/status", method: .get, headers: Self.headers(login)) { response in
                let status = try JSONDecoder().decode(StatusReport.self, from: Data(String(buffer: response.body).utf8))
                #expect(status.resources.first { $0.id == "mba7" }?.roles == ["beta": "Started"])
            }
            try await client.execute(uri: "/api/v1/migrate", method: .post, headers: Self.headers(login, csrf: login.csrf),
                                     body: ByteBuffer(string: #"{"node":"beta","lifetime":"soon"}"#)) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("lifetime: 'soon' is not a duration"))
            }
        }
    }

    @Test func repeatedFailuresAreThrottledWithAClearMessage() async throws {
        let harness = try await Self.harness()
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            let wrong = ByteBuffer(string: #"{"user":"olga","password":"guess-guess-guess"}"#)
            for _ in 0..<LoginThrottle.Policy().perAccount {
                try await client.execute(uri: "/api/v1/login", method: .post, headers: headers, body: wrong) { #expect($0.status == .unauthorized) }
            }
            // Now even the right password is not tried: 429, with when to come back.
            let right = ByteBuffer(string: #"{"user":"olga","password":"\#(Self.operatorPassword)"}"#)
            try await client.execute(uri: "/api/v1/login", method: .post, headers: headers, body: right) { response in
                #expect(response.status == .tooManyRequests)
                #expect(response.headers[.retryAfter] == "30")
                #expect(String(buffer: response.body).contains("Too many failed logins for this account: try again in 30 s"))
                #expect(response.headers[.setCookie] == nil)
            }
            // The login form says the same.
            let cookie = try await client.execute(uri: "/login", method: .get) { response in
                try #require(response.headers[.setCookie]?.split(separator: ";").first.map(String.init))
            }
            var form = HTTPFields()
            form[.contentType] = "application/x-www-form-urlencoded"
            form[.cookie] = cookie
            let csrf = String(cookie.split(separator: "=", maxSplits: 1)[1])
            try await client.execute(uri: "/login", method: .post, headers: form,
                                     body: ByteBuffer(string: "user=olga&password=x&csrf=\(csrf)")) { response in
                #expect(response.status == .tooManyRequests)
                #expect(String(buffer: response.body).contains("Too many failed logins for this account"))
            }
            // Another account is not held back, and the block ends by itself.
            _ = try await Self.login(client, user: "victor", password: Self.viewerPassword)
            harness.clock.advance(.seconds(30))
            _ = try await Self.login(client, user: "olga", password: Self.operatorPassword)
        }
    }

    @Test func sessionsExpireWhenIdle() async throws {
        let harness = try await Self.harness()
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            let login = try await Self.login(client, user: "olga", password: Self.operatorPassword)
            try await client.execute(uri: "/api/v1/session", method: .get, headers: Self.headers(login)) { #expect($0.status == .ok) }
            harness.clock.advance(.seconds(59))
            try await client.execute(uri: "/api/v1/session", method: .get, headers: Self.headers(login)) { #expect($0.status == .ok) }
            harness.clock.advance(.seconds(60))
            try await client.execute(uri: "/api/v1/session", method: .get, headers: Self.headers(login)) { #expect($0.status == .unauthorized) }
        }
    }

    @Test func logoutEndsTheSession() async throws {
        let harness = try await Self.harness()
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            let login = try await Self.login(client, user: "olga", password: Self.operatorPassword)
            try await client.execute(uri: "/api/v1/logout", method: .post, headers: Self.headers(login, csrf: login.csrf), body: ByteBuffer(string: "{}")) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/api/v1/status", method: .get, headers: Self.headers(login)) { #expect($0.status == .unauthorized) }
        }
    }

    // MARK: - Pages and API

    @Test func pagesShowTheClusterAndTheirCommands() async throws {
        let harness = try await Self.harness()
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            let login = try await Self.login(client, user: "olga", password: Self.operatorPassword)
            let pages: [(String, [String])] = [
                ("/", ["Cluster mba7", "quorate", "qdevice via qnetd on 198.51.100.1", "data-resource=\"mba7\"", "href=\"/vm/mba7\""]),
                ("/vm/mba7", ["VM mba7", "id=\"vm-host\">alpha<", "clevervm forcestop mba7", "clevervm cleanup mba7", "disk0", "href=\"/vm/mba7/serial\""]),
                ("/volumes", ["disk0", "clevervm volume resolve NAME --discard HOST --dry-run"]),
                ("/events?vm=mba7", ["started mba7 on alpha", "href=\"/explain/mba7\""]),
                ("/whatif", ["node-down", "ping loss"]),
                ("/explain/mba7", ["clevervm explain mba7", "alpha"]),
            ]
            for (path, expected) in pages {
                try await client.execute(uri: path, method: .get, headers: Self.headers(login)) { response in
                    #expect(response.status == .ok, "\(path)")
                    let html = String(buffer: response.body)
                    for text in expected { #expect(html.contains(text), "\(path) shows \(text)") }
                    #expect(response.headers[.contentSecurityPolicy]?.contains("default-src 'self'") == true)
                }
            }
            try await client.execute(uri: "/events?vm=mba7", method: .get, headers: Self.headers(login)) { response in
                #expect(!String(buffer: response.body).contains("gw-ping started"))
            }
            // The live fragment: the page's changing part alone.
            var headers = Self.headers(login)
            headers[HTTPField.Name("X-Fragment")!] = "1"
            try await client.execute(uri: "/", method: .get, headers: headers) { response in
                let html = String(buffer: response.body)
                #expect(html.contains("data-resource=\"mba7\""))
                #expect(!html.contains("<nav"))
            }
            try await client.execute(uri: "/vm/nope", method: .get, headers: Self.headers(login)) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/api/v1/explain/nope", method: .get, headers: Self.headers(login)) { response in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body).contains("no resource named 'nope'"))
            }
            try await client.execute(uri: "/api/v1/simulate", method: .post, headers: Self.headers(login, csrf: login.csrf),
                                     body: ByteBuffer(string: #"{"events":["node-down gamma"]}"#)) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("gamma"))
            }
            try await client.execute(uri: "/api/v1/events?last=0", method: .get, headers: Self.headers(login)) { #expect($0.status == .badRequest) }
        }
    }

    @Test func theOpenAPIDocumentDescribesEveryAPIRoute() async throws {
        let harness = try await Self.harness()
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/v1/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                let document = try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any])
                let paths = try #require(document["paths"] as? [String: [String: Any]])
                for (method, path, _) in Self.routes where path.hasPrefix("/api/v1/") {
                    let templated = path.replacingOccurrences(of: "/mba7", with: "/{resource}").replacingOccurrences(of: "/beta", with: "/{node}")
                        .replacingOccurrences(of: "volumes/disk0", with: "volumes/{name}")
                    #expect(paths[templated]?[method.rawValue.lowercased()] != nil, "\(method) \(templated) is documented")
                }
            }
        }
    }

    @Test func theStreamResumesAfterLastEventID() async throws {
        let harness = try await Self.harness()
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            let login = try await Self.login(client, user: "olga", password: Self.operatorPassword)
            var headers = Self.headers(login)
            let first = await harness.console.feed.frame.events[0]
            headers[HTTPField.Name("Last-Event-ID")!] = String(first.streamID)
            let feed = harness.console.feed
            Task {
                try await Task.sleep(for: .milliseconds(300))
                await feed.finishSubscribers()
            }
            try await client.execute(uri: "/api/v1/stream", method: .get, headers: headers) { response in
                #expect(response.headers[.contentType] == "text/event-stream")
                let text = String(buffer: response.body)
                #expect(!text.contains("started mba7 on alpha"))
                #expect(text.contains("event: history\ndata: {\"at\":1800000001"))
                #expect(text.contains("gw-ping started on beta"))
                #expect(text.contains("event: status\ndata: {\"status\":{"))
            }
        }
    }

    @Test func theConsoleSaysWhenTheAgentIsDown() async throws {
        let harness = try await Self.harness(agentRunning: false)
        let app = Application(router: harness.console.router())
        try await app.test(.router) { client in
            let login = try await Self.login(client, user: "olga", password: Self.operatorPassword)
            try await client.execute(uri: "/", method: .get, headers: Self.headers(login)) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("The clevervm agent on this host is not answering"))
            }
            try await client.execute(uri: "/api/v1/status", method: .get, headers: Self.headers(login)) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("not running on this host"))
            }
        }
        let metrics = Application(router: harness.console.metricsRouter())
        try await metrics.test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(String(buffer: response.body).contains("clevervm_agent_up 0.0"))
            }
        }
    }

    @Test func metricsFollowAMove() async throws {
        let harness = try await Self.harness()
        let metrics = Application(router: harness.console.metricsRouter())
        let before = try await metrics.test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
        }
        #expect(before.contains(#"clevervm_vm_host{vm="mba7",node="alpha"} 1.0"#))
        #expect(before.contains("ha_cluster_corosync_quorate 1.0"))
        #expect(before.contains(#"ha_cluster_pacemaker_resources{node="alpha",resource="mba7",role="started",managed="true",status="active",agent="vm"} 1.0"#))
        _ = harness.agent.answer(.intent(.migrate(node: "alpha", to: "beta", expires: nil)))
        let after = try await metrics.test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
        }
        #expect(after.contains(#"clevervm_vm_host{vm="mba7",node="beta"} 1.0"#))
        #expect(!after.contains(#"clevervm_vm_host{vm="mba7",node="alpha"}"#))
        #expect(after.contains(#"clevervm_node_unfit{node="alpha"} 1.0"#))
        #expect(after.contains(#"clevervm_qdevice_configured{qnetd_host="198.51.100.1"} 1.0"#))
    }
}
