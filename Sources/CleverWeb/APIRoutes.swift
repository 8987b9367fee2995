import CleverCluster
import CleverControl
import CleverModel
import CleverScheduler
import CleverVolume
import Foundation
import Hummingbird

/// `/api/v1`: the CLI's operations with its `--json` shapes (docs: /api/v1/openapi.json). The pages use it too.
struct APIRoutes {
    let link: AgentLink
    let feed: StatusFeed
    let accounts: AccountDirectory
    let sessions: SessionStore
    let cookieSecure: Bool

    struct Login: Decodable { var user: String; var password: String }
    struct SessionInfo: Encodable { var user: String; var role: Role; var csrfToken: String }
    struct Result: Encodable { var result: String; var command: String }
    struct SimulateBody: Decodable { var events: [String] }
    struct CleanupBody: Decodable { var resource: String?; var node: String? }
    struct MigrateBody: Decodable { var node: String; var to: String?; var lifetime: String? }
    struct UnmigrateBody: Decodable { var node: String? }
    struct ResolveBody: Decodable { var discard: String; var dryRun: Bool? }

    func add(to router: Router<WebContext>) {
        let api = router.group("api/v1")
        api.get("openapi.json") { _, _ in try OpenAPIDocument.response() }
        api.post("login") { request, context -> Response in
            let body = try await request.decode(as: Login.self, context: context)
            let account: Account
            switch await self.accounts.login(name: body.user, password: body.password, address: context.remoteAddress) {
            case .success(let found): account = found
            case .wrongPassword: throw WebError(.unauthorized, "wrong user name or password")
            case .throttled(let refusal):
                throw WebError(.tooManyRequests, refusal.message, headers: [.retryAfter: String(refusal.retryAfterSeconds)])
            }
            let (token, session) = await self.sessions.open(user: account.name, role: account.role)
            var response = try JSONResponse.make(SessionInfo(user: session.user, role: session.role, csrfToken: session.csrfToken))
            response.setCookie(await SessionCookie.make(token: token, sessions: self.sessions, secure: self.cookieSecure))
            return response
        }
        api.post("logout") { _, context -> Response in
            if let token = context.sessionToken { await self.sessions.close(token: token) }
            var response = try JSONResponse.make(["result": "logged out"])
            response.setCookie(SessionCookie.cleared(secure: self.cookieSecure))
            return response
        }
        api.get("session") { _, context -> Response in
            let session = try context.requireSession()
            return try JSONResponse.make(SessionInfo(user: session.user, role: session.role, csrfToken: session.csrfToken))
        }
        api.get("status") { _, _ in try JSONResponse.make(try await self.link.status()) }
        api.get("events") { request, _ -> Response in
            let last = request.uri.queryParameters.get("last", as: Int.self) ?? 50
            guard (1...10_000).contains(last) else { throw WebError(.badRequest, "last: \(last) is not between 1 and 10000") }
            let filter = EventFilter(vm: request.uri.queryParameters.get("vm"), host: request.uri.queryParameters.get("host"))
            return try JSONResponse.make(filter.apply(try await self.link.events(limit: last)))
        }
        api.get("stream") { request, _ in try await EventStream(feed: self.feed).response(lastEventID: request.headers[EventStream.lastEventID]) }
        api.get("explain/:resource") { _, context -> Response in
            let resource = try context.parameters.require("resource")
            return try JSONResponse.make(try await Explain.explanation(resource, link: self.link))
        }
        api.post("simulate") { request, context -> Response in
            let body = try await request.decode(as: SimulateBody.self, context: context)
            let snapshot = try await self.link.snapshot()
            return try JSONResponse.make(try SimulationReport(config: snapshot.config, state: snapshot.state, now: snapshot.now, events: body.events))
        }
        api.post("forcestart/:resource") { _, context in try await self.act(.forceStart(resource: try context.parameters.require("resource"))) }
        api.post("forcestop/:resource") { _, context in try await self.act(.forceStop(resource: try context.parameters.require("resource"))) }
        api.post("standby/:node") { _, context in try await self.act(.standby(node: try context.parameters.require("node"))) }
        api.post("unstandby/:node") { _, context in try await self.act(.unstandby(node: try context.parameters.require("node"))) }
        api.post("cleanup") { request, context -> Response in
            let body = try await request.decode(as: CleanupBody.self, context: context)
            return try await self.act(.cleanup(resource: body.resource.nonEmpty, node: body.node.nonEmpty))
        }
        api.post("migrate") { request, context -> Response in
            let body = try await request.decode(as: MigrateBody.self, context: context)
            var expires: Timestamp?
            if let lifetime = body.lifetime.nonEmpty {
                guard let duration = Seconds(parsing: lifetime), duration.value > 0 else {
                    throw WebError(.badRequest, "lifetime: '\(lifetime)' is not a duration (e.g. 30m, 2h)")
                }
                expires = Timestamp(seconds: Date().timeIntervalSince1970) + duration
            }
            guard !body.node.isEmpty else { throw WebError(.badRequest, "node: the host to empty is missing") }
            return try await self.act(.migrate(node: .named(body.node), to: body.to.nonEmpty, expires: expires), lifetime: body.lifetime.nonEmpty)
        }
        api.post("unmigrate") { request, context -> Response in
            let body = try await request.decode(as: UnmigrateBody.self, context: context)
            return try await self.act(.unmigrate(node: body.node.map(NodeSelector.init(typed:))))
        }
        api.get("volumes") { _, _ in try JSONResponse.make(await self.feed.refresh().volumes) }
        api.get("volumes/:name") { _, context -> Response in
            let name = try await self.volumeName(context)
            return try JSONResponse.make(try await self.link.volume(name, .init(command: .status)))
        }
        api.post("volumes/:name/verify") { _, context -> Response in
            let name = try await self.volumeName(context)
            return try self.volumeResult(try await self.link.volume(name, .init(command: .verify)), command: "clevervm volume verify \(name)")
        }
        api.post("volumes/:name/resolve") { request, context -> Response in
            let name = try await self.volumeName(context)
            let body = try await request.decode(as: ResolveBody.self, context: context)
            let dryRun = body.dryRun ?? true
            let reply = try await self.link.volume(name, .init(command: .resolve, discard: body.discard, dryRun: dryRun))
            return try self.volumeResult(reply, command: "clevervm volume resolve \(name) --discard \(Shell.quote(body.discard))" + (dryRun ? " --dry-run" : ""))
        }
    }

    /// Records an operator intent, as the CLI's verbs do, and answers with the equivalent command.
    func act(_ intent: OperatorIntent, lifetime: String? = nil) async throws -> Response {
        let message = try await self.link.intent(intent)
        await self.feed.refresh()
        return try JSONResponse.make(Result(result: message, command: EquivalentCommand.of(intent, lifetime: lifetime)))
    }

    func volumeName(_ context: WebContext) async throws -> String {
        let name = try context.parameters.require("name")
        let status = try await self.link.status()
        guard status.resources.contains(where: { $0.id == name && $0.type == "volume" }) else {
            let known = status.resources.filter { $0.type == "volume" }.map(\.id).joined(separator: ", ")
            throw WebError(.notFound, "no volume named '\(name)' (volumes: \(known.isEmpty ? "none" : known))")
        }
        return name
    }

    struct VolumeResult: Encodable { var ok: Bool; var message: String; var status: VolumeStatus?; var command: String }

    func volumeResult(_ reply: VolumeControlReply, command: String) throws -> Response {
        try JSONResponse.make(VolumeResult(ok: reply.ok, message: reply.message, status: reply.status, command: command),
                              status: reply.ok ? .ok : .unprocessableContent)
    }
}

/// The `clevervm` command that does what a console action does.
public enum EquivalentCommand {
    public static func of(_ intent: OperatorIntent, lifetime: String? = nil) -> String {
        switch intent {
        case .migrate(let node, let to, _):
            "clevervm migrate" + (node.named.map { " --node \(Shell.quote($0))" } ?? "") + (to.map { " --to \(Shell.quote($0))" } ?? "")
                + (lifetime.map { " --lifetime \(Shell.quote($0))" } ?? "")
        case .unmigrate(let node): "clevervm unmigrate" + (node?.named.map { " --node \(Shell.quote($0))" } ?? "")
        case .forceStart(let resource): "clevervm forcestart \(Shell.quote(resource))"
        case .forceStop(let resource): "clevervm forcestop \(Shell.quote(resource))"
        case .cleanup(let resource, let node):
            "clevervm cleanup" + (resource.map { " \(Shell.quote($0))" } ?? "") + (node.map { " --node \(Shell.quote($0))" } ?? "")
        case .standby(let node): "clevervm standby \(Shell.quote(node))"
        case .unstandby(let node): "clevervm unstandby \(Shell.quote(node))"
        case .outdateDisk(let volume, let node): "clevervm volume outdate \(Shell.quote(volume)) --node \(Shell.quote(node))"
        case .clearOutdated(let volume, let node): "clevervm volume accept \(Shell.quote(volume)) --node \(Shell.quote(node))"
        }
    }
}

/// The events page's and API's filter: by VM (named in the text) and by host (where it was recorded, or named).
public struct EventFilter: Sendable {
    public var vm: String?
    public var host: String?

    public init(vm: String?, host: String?) {
        self.vm = vm.nonEmpty
        self.host = host.nonEmpty
    }

    public func apply(_ events: [EventRecord]) -> [EventRecord] {
        events.filter { event in
            if let vm = self.vm, !Self.mentions(event.text, vm) { return false }
            if let host = self.host, event.node != host, !Self.mentions(event.text, host) { return false }
            return true
        }
    }

    /// Whole-word match, so filtering by `vm1` does not show `vm10`.
    static func mentions(_ text: String, _ word: String) -> Bool {
        let separators = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_.")).inverted
        return text.components(separatedBy: separators).contains(word)
    }
}

enum Explain {
    static func explanation(_ resource: String, link: AgentLink) async throws -> Explanation {
        let snapshot = try await link.snapshot()
        guard snapshot.config.resource(named: resource) != nil else {
            let known = snapshot.config.resources.map(\.id).joined(separator: ", ")
            throw WebError(.notFound, "no resource named '\(resource)' (resources: \(known))")
        }
        let transition = Scheduler(config: snapshot.config).schedule(state: snapshot.state, now: snapshot.now)
        guard let explanation = Explanation(resource: resource, config: snapshot.config, transition: transition) else {
            throw WebError(.notFound, "the scheduler has no scores for '\(resource)'")
        }
        return explanation
    }
}

enum SessionCookie {
    static func make(token: String, sessions: SessionStore, secure: Bool) async -> Cookie {
        Cookie(name: AccessMiddleware.sessionCookie, value: token, maxAge: await sessions.lifetimeSeconds, path: "/",
               secure: secure, httpOnly: true, sameSite: .strict)
    }

    static func cleared(secure: Bool) -> Cookie {
        Cookie(name: AccessMiddleware.sessionCookie, value: "", maxAge: 0, path: "/", secure: secure, httpOnly: true, sameSite: .strict)
    }
}

extension WebContext {
    func requireSession() throws -> SessionTable.Session {
        guard let session = self.session else { throw WebError(.unauthorized, "log in first") }
        return session
    }
}

extension Optional where Wrapped == String {
    var nonEmpty: String? {
        guard let value = self, !value.isEmpty else { return nil }
        return value
    }
}
