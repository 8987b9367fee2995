import Foundation
import HTTPTypes
import Hummingbird

/// Finds the session from its cookie, then enforces `AccessPolicy`: login, role, and the CSRF token on every
/// action. A page request without a session is sent to the login page; an API request gets 401.
public struct AccessMiddleware: RouterMiddleware {
    public typealias Context = WebContext
    static let sessionCookie = "clevervm_session"
    static let loginCookie = "clevervm_login"
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!

    let sessions: SessionStore
    /// Whether the console is served over HTTPS: the scheme a same-origin websocket's `Origin` names.
    var secure = true

    public func handle(_ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response) async throws -> Response {
        var request = request
        var context = context
        let path = request.uri.path
        if let token = request.cookies[Self.sessionCookie]?.value, let session = await self.sessions.session(token: token) {
            context.session = session
            context.sessionToken = token
        }
        let requirement = AccessPolicy.requirement(method: request.method, path: path)
        switch requirement {
        case .open:
            return try await next(request, context)
        case .login:
            if path.hasPrefix("/api/") {
                // A cross-site page cannot send a JSON body without the browser asking first (CORS preflight,
                // which this console never grants).
                guard request.headers[.contentType]?.hasPrefix("application/json") == true else {
                    throw WebError(.unsupportedMediaType, "POST /api/v1/login takes a JSON body {\"user\", \"password\"}")
                }
                return try await next(request, context)
            }
            // Double-submit: the login form carries the random value of the login cookie it came with.
            let field = try await Self.submittedToken(&request, context: context)
            guard let cookie = request.cookies[Self.loginCookie]?.value, let field, SessionStore.constantTimeEqual(cookie, field) else {
                throw WebError(.forbidden, "the login form expired or did not come from this console: reload the login page")
            }
            return try await next(request, context)
        case .viewer, .operator:
            guard let session = context.session else {
                if path.hasPrefix("/api/") { throw WebError(.unauthorized, "log in first (POST /api/v1/login)") }
                if AccessPolicy.isWebSocket(path) { throw WebError(.unauthorized, "log in first: a console websocket needs a session") }
                if AccessPolicy.isAction(request.method) { throw WebError(.unauthorized, "your session expired: log in again") }
                let target = request.uri.string
                return .redirect(to: "/login?next=" + (target.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/"), type: .normal)
            }
            if AccessPolicy.isAction(request.method) {
                let submitted = try await Self.submittedToken(&request, context: context)
                guard let submitted, SessionStore.constantTimeEqual(submitted, session.csrfToken) else {
                    throw WebError(.forbidden, "missing or wrong CSRF token: reload the page and try again")
                }
            }
            if requirement == .operator, session.role < .operator {
                throw WebError(.forbidden, "\(session.user) is a viewer: this action needs the operator role")
            }
            if AccessPolicy.isWebSocket(path), !Self.isSameOrigin(request, secure: self.secure) {
                throw WebError(.forbidden, "a console websocket opens only from this console's own pages (Origin \(request.headers[.origin] ?? "missing"))")
            }
            return try await next(request, context)
        }
    }

    /// Whether the request's `Origin` is this console as the browser reached it (scheme and the `Host` it asked
    /// for): a websocket carries the session cookie but no CSRF token, and a page of another site could open one.
    static func isSameOrigin(_ request: Request, secure: Bool) -> Bool {
        guard let origin = request.headers[.origin]?.lowercased(), let authority = request.head.authority?.lowercased() else { return false }
        return origin == (secure ? "https://" : "http://") + authority
    }

    /// The CSRF token from the `X-CSRF-Token` header, or the `csrf` field of a urlencoded form (the body is
    /// collected, and stays readable for the handler).
    static func submittedToken(_ request: inout Request, context: WebContext) async throws -> String? {
        if let header = request.headers[Self.csrfHeader] { return header }
        guard request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true else { return nil }
        let body = try await request.collectBody(upTo: 64 * 1024)
        let text = String(buffer: body)
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.first == "csrf" { return parts.count > 1 ? parts[1].removingPercentEncoding ?? parts[1] : "" }
        }
        return nil
    }
}
