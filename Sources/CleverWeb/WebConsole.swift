import CleverControl
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import NIOSSL
import Logging

/// The console process: the HTTPS application (pages + API), the plain-HTTP metrics application, and the
/// poller they share. It holds no cluster state of its own beyond the last frame: a console fault never
/// touches the agent.
public struct WebConsole: Sendable {
    public struct Options: Sendable {
        public var bind = "0.0.0.0"
        public var port = 7443
        public var metricsBind = "0.0.0.0"
        public var metricsPort = 9664
        /// nil: plain HTTP (tests only; `serve` always gives a certificate).
        public var tls: TLSFiles?
        public var accountsPath = AccountFile.defaultPath
        public var link = AgentLink()
        public var pollInterval = Duration.seconds(1)
        public var sessions = SessionTable()
        public var loginThrottle = LoginThrottle.Policy()
        /// How the screen and serial console reach a VM (its socket here, or its host's console relay).
        public var console = ConsoleDialer()

        public init() {}
    }

    public struct TLSFiles: Sendable {
        public var certificate: String
        public var key: String
        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }

    public let options: Options
    public let feed: StatusFeed
    public let sessions: SessionStore
    public let accounts: AccountDirectory
    let templates: Templates
    let logger: Logger

    public init(options: Options, logger: Logger, now: @escaping @Sendable () -> Duration = SessionStore.monotonicNow) async throws {
        self.options = options
        self.logger = logger
        self.feed = StatusFeed(link: options.link, interval: options.pollInterval, logger: logger)
        self.sessions = SessionStore(table: options.sessions, now: now)
        self.accounts = AccountDirectory(path: options.accountsPath, throttle: options.loginThrottle, now: now)
        self.templates = try await Templates.load()
    }

    /// Pages and API, behind the access middleware.
    public func router() -> Router<WebContext> {
        let router = Router(context: WebContext.self)
        let secure = self.options.tls != nil
        router.add(middleware: AccessMiddleware(sessions: self.sessions, secure: secure))
        PageRoutes(templates: self.templates, feed: self.feed, link: self.options.link, accounts: self.accounts,
                   sessions: self.sessions, cookieSecure: secure).add(to: router)
        APIRoutes(link: self.options.link, feed: self.feed, accounts: self.accounts, sessions: self.sessions,
                  cookieSecure: secure).add(to: router)
        self.consoleRoutes.add(to: router)
        return router
    }

    /// The websocket upgrades (screen and serial console), behind the same access middleware. A refused upgrade is
    /// answered 400 by NIO's upgrader; the same path without an upgrade reaches `router()`, which says why.
    public func webSocketRouter() -> Router<WebContext> {
        let router = Router(context: WebContext.self)
        router.add(middleware: AccessMiddleware(sessions: self.sessions, secure: self.options.tls != nil))
        self.consoleRoutes.addWebSockets(to: router)
        return router
    }

    var consoleRoutes: ConsoleRoutes {
        ConsoleRoutes(templates: self.templates, feed: self.feed, link: self.options.link, dialer: self.options.console)
    }

    /// HTTP/1.1 with the console's websocket upgrades.
    public func httpServer() -> HTTPServerBuilder { .http1WebSocketUpgrade(webSocketRouter: self.webSocketRouter()) }

    /// `/metrics` only; no login (bind it to a management address).
    public func metricsRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("metrics") { _, _ -> Response in
            let frame = await self.feed.refresh()
            let moves = await self.feed.moveCounts
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: MetricsReport.render(frame: frame, moves: moves, qdevice: frame.config?.quorum))))
        }
        return router
    }

    /// Runs both servers and the poller until SIGTERM/SIGINT.
    public func run() async throws {
        let server: HTTPServerBuilder
        if let tls = self.options.tls {
            let chain = try NIOSSLCertificate.fromPEMFile(tls.certificate).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: tls.key, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            server = try .tls(self.httpServer(), tlsConfiguration: configuration)
        } else {
            server = self.httpServer()
        }
        let console = Application(
            router: self.router(), server: server,
            configuration: .init(address: .hostname(self.options.bind, port: self.options.port), serverName: "clevervm-web"),
            logger: self.logger)
        let metrics = Application(
            router: self.metricsRouter(),
            configuration: .init(address: .hostname(self.options.metricsBind, port: self.options.metricsPort), serverName: "clevervm-metrics"),
            logger: self.logger)
        let feed = self.feed
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await feed.run() }
            group.addTask { try await console.runService() }
            group.addTask { try await metrics.runService() }
            // The first server to stop (a signal, or a port already taken) stops the others.
            try await group.next()
            group.cancelAll()
        }
    }
}
