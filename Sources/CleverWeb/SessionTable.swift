/// Logged-in sessions: pure bookkeeping over a monotonic `now` the caller passes in. A session ends after
/// `idleTimeout` without a request, or `lifetime` after login, whichever comes first.
public struct SessionTable: Sendable {
    public struct Session: Hashable, Sendable {
        public var user: String
        public var role: Role
        /// Sent with every action (form field `csrf` or header `X-CSRF-Token`); never in a URL.
        public var csrfToken: String
        public var started: Duration
        public var lastSeen: Duration
    }

    public var idleTimeout: Duration
    public var lifetime: Duration
    private var sessions: [String: Session] = [:]

    public init(idleTimeout: Duration = .seconds(30 * 60), lifetime: Duration = .seconds(12 * 3600)) {
        self.idleTimeout = idleTimeout
        self.lifetime = lifetime
    }

    public var count: Int { self.sessions.count }

    /// Records a new session under `token` (random, from the shell).
    public mutating func open(token: String, csrfToken: String, user: String, role: Role, now: Duration) -> Session {
        self.expire(now: now)
        let session = Session(user: user, role: role, csrfToken: csrfToken, started: now, lastSeen: now)
        self.sessions[token] = session
        return session
    }

    /// The live session for `token`, refreshed; nil (and forgotten) when it expired.
    public mutating func touch(token: String, now: Duration) -> Session? {
        guard var session = self.sessions[token] else { return nil }
        guard !self.isExpired(session, now: now) else {
            self.sessions[token] = nil
            return nil
        }
        session.lastSeen = now
        self.sessions[token] = session
        return session
    }

    public mutating func close(token: String) {
        self.sessions[token] = nil
    }

    /// Ends every session of `user` (after its password changed or the account was removed).
    public mutating func closeAll(user: String) {
        self.sessions = self.sessions.filter { $0.value.user != user }
    }

    public mutating func expire(now: Duration) {
        self.sessions = self.sessions.filter { !self.isExpired($0.value, now: now) }
    }

    func isExpired(_ session: Session, now: Duration) -> Bool {
        now - session.lastSeen >= self.idleTimeout || now - session.started >= self.lifetime
    }
}
