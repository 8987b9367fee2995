/// The accounts file as the running console sees it: read again at each login, so `clevervm-web user …`
/// takes effect without a restart. Logins go through the throttle here, in one isolated step (check, bcrypt,
/// record), so parallel attempts cannot all slip past the check before the first failure is counted.
public actor AccountDirectory {
    public let path: String
    private var throttle: LoginThrottle
    private let now: @Sendable () -> Duration

    public init(path: String, throttle: LoginThrottle.Policy = .init(), now: @escaping @Sendable () -> Duration = SessionStore.monotonicNow) {
        self.path = path
        self.throttle = LoginThrottle(policy: throttle)
        self.now = now
    }

    /// What a login attempt came to.
    public enum Outcome: Sendable {
        case success(Account)
        case wrongPassword
        /// Refused before the password was checked.
        case throttled(LoginThrottle.Refusal)
    }

    /// A login attempt for `name` from `address` (nil: unknown, e.g. a test channel; all such share one counter).
    public func login(name: String, password: String, address: String?) -> Outcome {
        let address = address ?? "unknown", now = self.now()
        if let refusal = self.throttle.check(account: name, address: address, now: now) { return .throttled(refusal) }
        guard let account = self.verify(name: name, password: password) else {
            self.throttle.recordFailure(account: name, address: address, now: now)
            return .wrongPassword
        }
        self.throttle.recordSuccess(account: name, address: address, now: now)
        return .success(account)
    }

    func verify(name: String, password: String) -> Account? {
        guard let file = try? AccountFile.load(path: self.path) else { return nil }
        return file.verify(name: name, password: password)
    }

    public func isEmpty() -> Bool {
        (try? AccountFile.load(path: self.path))?.accounts.isEmpty ?? true
    }
}
