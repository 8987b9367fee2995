import CleverControl
import CleverModel
import Foundation
import Hummingbird

/// The server-rendered pages. Every page reads the same frame as the SSE stream and /metrics.
struct PageRoutes {
    let templates: Templates
    let feed: StatusFeed
    let link: AgentLink
    let accounts: AccountDirectory
    let sessions: SessionStore
    let cookieSecure: Bool

    struct LoginForm: Decodable { var user: String; var password: String; var csrf: String; var next: String? }
    struct LoginView { var csrf: String; var next: String; var error: String?; var noAccounts: Bool }
    struct Session { var isOperator: Bool; var user: String }

    func add(to router: Router<WebContext>) {
        router.get("login") { request, context in try await self.loginPage(request: request, error: nil) }
        router.post("login") { request, context -> Response in
            let form = try await request.decode(as: LoginForm.self, context: context)
            let account: Account
            switch await self.accounts.login(name: form.user, password: form.password, address: context.remoteAddress) {
            case .success(let found): account = found
            case .wrongPassword:
                var response = try await self.loginPage(request: request, error: "Wrong user name or password.")
                response.status = .unauthorized
                return response
            case .throttled(let refusal):
                var response = try await self.loginPage(request: request, error: refusal.message)
                response.status = .tooManyRequests
                response.headers[.retryAfter] = String(refusal.retryAfterSeconds)
                return response
            }
            let (token, _) = await self.sessions.open(user: account.name, role: account.role)
            var response = Response.redirect(to: Self.safeNext(form.next), type: .normal)
            response.setCookie(await SessionCookie.make(token: token, sessions: self.sessions, secure: self.cookieSecure))
            return response
        }
        router.post("logout") { _, context -> Response in
            if let token = context.sessionToken { await self.sessions.close(token: token) }
            var response = Response.redirect(to: "/login", type: .normal)
            response.setCookie(SessionCookie.cleared(secure: self.cookieSecure))
            return response
        }
        router.get("/") { request, context -> Response in
            let frame = await self.feed.frame
            return try self.templates.page(request: request, context: context, name: "overview", title: "Overview",
                                           live: Views.overview(frame, qdevice: frame.config?.quorum), version: frame.version)
        }
        router.get("vm/:id") { request, context -> Response in
            let id = try context.parameters.require("id")
            let frame = await self.feed.frame
            let view = Views.vm(id, frame: frame, config: frame.config)
            guard view.found || frame.status == nil else { throw WebError(.notFound, "no VM named '\(id)'") }
            return try self.templates.page(request: request, context: context, name: "vm", title: "VM \(id)", live: view,
                                           controls: view, version: frame.version)
        }
        router.get("volumes") { request, context -> Response in
            let frame = await self.feed.frame
            let view = Views.volumes(frame)
            return try self.templates.page(request: request, context: context, name: "volumes", title: "Volumes", live: view,
                                           controls: view, version: frame.version)
        }
        router.get("events") { request, context -> Response in
            let frame = await self.feed.frame
            let filter = EventFilter(vm: request.uri.queryParameters.get("vm"), host: request.uri.queryParameters.get("host"))
            let view = Views.events(frame, filter: filter)
            return try self.templates.page(request: request, context: context, name: "events", title: "Events", live: view,
                                           controls: view, version: frame.version)
        }
        router.get("whatif") { request, context -> Response in
            let frame = await self.feed.frame
            let view = Views.events(frame, filter: EventFilter(vm: nil, host: nil))
            return try self.templates.page(request: request, context: context, name: "whatif", title: "What if", live: Views.banner(frame),
                                           controls: view, version: frame.version)
        }
        router.get("explain/:resource") { request, context -> Response in
            let resource = try context.parameters.require("resource")
            let explanation = try await Explain.explanation(resource, link: self.link)
            struct View { var resource: String; var text: String; var command: String }
            return try self.templates.page(request: request, context: context, name: "explain", title: "Explain \(resource)",
                                           live: View(resource: resource, text: explanation.render(), command: "clevervm explain \(Shell.quote(resource))"),
                                           version: 0)
        }
        router.get("static/:file") { _, context -> Response in try StaticFiles.response(try context.parameters.require("file")) }
    }

    func loginPage(request: Request, error: String?) async throws -> Response {
        let token = SessionStore.randomToken()
        let next = Self.safeNext(request.uri.queryParameters.get("next")?.removingPercentEncoding)
        let view = LoginView(csrf: token, next: next, error: error, noAccounts: await self.accounts.isEmpty())
        var response = Response(status: .ok, headers: Templates.htmlHeaders, body: .init(byteBuffer: ByteBuffer(string: try self.templates.render(view, "login"))))
        response.setCookie(Cookie(name: AccessMiddleware.loginCookie, value: token, maxAge: 3600, path: "/login",
                                  secure: self.cookieSecure, httpOnly: true, sameSite: .strict))
        return response
    }

    /// Only a path on this console: never an open redirect to another site.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.contains("\\") else { return "/" }
        return next
    }
}
