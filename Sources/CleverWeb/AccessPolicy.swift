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
        if path.hasPrefix("/static/") || path.hasPrefix("/novnc/") || path == "/api/v1/openapi.json" || path == "/favicon.ico" {
            return isRead ? .open : .operator
        }
        // A console is typed into, not only watched: its pages and websockets need an operator (as Proxmox's
        // VM.Console privilege, which its auditor role lacks).
        if self.isConsole(path) { return .operator }
        if path == "/login" || path == "/api/v1/login" { return isRead ? .open : .login }
        if isRead { return .viewer }
        return self.viewerActions.contains(path) ? .viewer : .operator
    }

    public static func isAction(_ method: HTTPRequest.Method) -> Bool { method != .get && method != .head }

    /// `/vm/ID/screen`, `/vm/ID/serial` and their websockets.
    public static func isConsole(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4 || parts.count == 5, parts[0].isEmpty, parts[1] == "vm", !parts[2].isEmpty,
            parts[3] == "screen" || parts[3] == "serial"
        else { return false }
        return parts.count == 4 || parts[4] == "websocket"
    }

    /// A websocket: the browser sends the session cookie with it but no CSRF token, so it must come from a page of
    /// this console (its `Origin`).
    public static func isWebSocket(_ path: String) -> Bool { self.isConsole(path) && path.hasSuffix("/websocket") }
}
