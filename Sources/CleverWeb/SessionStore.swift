import Foundation

/// The shell around `SessionTable`: random tokens and the monotonic clock.
public actor SessionStore {
    private var table: SessionTable
    private let now: @Sendable () -> Duration

    public init(table: SessionTable = SessionTable(), now: @escaping @Sendable () -> Duration = SessionStore.monotonicNow) {
        self.table = table
        self.now = now
    }

    public static let monotonicNow: @Sendable () -> Duration = {
        let start = ContinuousClock.Instant.now
        return { ContinuousClock.Instant.now - start }
    }()

    public func open(user: String, role: Role) -> (token: String, session: SessionTable.Session) {
        let token = Self.randomToken()
        let session = self.table.open(token: token, csrfToken: Self.randomToken(), user: user, role: role, now: self.now())
        return (token, session)
    }

    public func session(token: String) -> SessionTable.Session? {
        self.table.touch(token: token, now: self.now())
    }

    public func close(token: String) { self.table.close(token: token) }

    public var lifetimeSeconds: Int { Int(self.table.lifetime.components.seconds) }

    /// 256 random bits, URL-safe base64.
    public static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Compares secrets in time independent of where they differ.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}
