import Hummingbird

/// Who may call a route: decided from the method and path alone, before any handler runs, so no route can
/// forget its check. Every method but GET and HEAD is an action and needs the session's CSRF token.
public enum AccessPolicy {
    public enum Requirement: Hashable, Sendable {
        /// Login pages, static files, the OpenAPI document.
        case open
        /// A login form post: checked against the login cookie instead of a session (there is none yet).
        case login
        /// Any logged-in user.
        case viewer
        /// Logged in as an operator.
        case `operator`
    }

    /// Actions a viewer may take: they change nothing in the cluster.
    static let viewerActions: Set<String> = ["/logout", "/api/v1/logout", "/api/v1/simulate"]

    public static func requirement(method: HTTPRequest.Method, path: String) -> Requirement {
        let isRead = method == .get || method == .head
        if path.hasPrefix("/static/") || path == "/api/v1/openapi.json" || path == "/favicon.ico" { return isRead ? .open : .operator }
        if path == "/login" || path == "/api/v1/login" { return isRead ? .open : .login }
        if isRead { return .viewer }
        return self.viewerActions.contains(path) ? .viewer : .operator
    }

    public static func isAction(_ method: HTTPRequest.Method) -> Bool { method != .get && method != .head }
}
