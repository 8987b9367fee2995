/// Failed logins, per account and per source address: pure bookkeeping over a monotonic `now` the caller passes in.
///
/// Too many failures from one address block that address; too many failures on one account block that account —
/// but only for addresses that have never logged into it: the address an operator logged in from before keeps
/// working, so an attacker failing on `admin` from anywhere cannot lock the admin out. Every block is short and
/// ends by itself (it doubles while failures go on, up to `maxBlock`), and an attempt during a block is refused
/// without checking the password (no bcrypt work, no guess tested).
public struct LoginThrottle: Sendable {
    public struct Policy: Sendable, Hashable {
        /// Failures within `window` that block an address (over all accounts it tries).
        public var perAddress: Int
        /// Failures within `window` that block an account (for addresses that never logged into it).
        public var perAccount: Int
        public var window: Duration
        public var firstBlock: Duration
        public var maxBlock: Duration
        /// How long a successful login keeps its address trusted for the account.
        public var trustFor: Duration
        /// Entries kept at most per table (addresses, accounts, trusted pairs); the stalest go first.
        public var capacity: Int

        public init(perAddress: Int = 10, perAccount: Int = 5, window: Duration = .seconds(15 * 60), firstBlock: Duration = .seconds(30),
                    maxBlock: Duration = .seconds(15 * 60), trustFor: Duration = .seconds(30 * 86_400), capacity: Int = 10_000) {
            self.perAddress = perAddress
            self.perAccount = perAccount
            self.window = window
            self.firstBlock = firstBlock
            self.maxBlock = maxBlock
            self.trustFor = trustFor
            self.capacity = capacity
        }
    }

    /// Why an attempt is refused, and for how long.
    public struct Refusal: Sendable, Hashable, Error {
        public enum Subject: String, Sendable, Hashable { case address, account }
        public var subject: Subject
        public var retryAfter: Duration

        /// Whole seconds, rounded up (the `Retry-After` header and the message).
        public var retryAfterSeconds: Int {
            let (seconds, attoseconds) = self.retryAfter.components
            return Int(seconds) + (attoseconds > 0 ? 1 : 0)
        }

        public var message: String {
            switch self.subject {
            case .address:
                "Too many failed logins from your address: try again in \(self.retryAfterSeconds) s."
            case .account:
                "Too many failed logins for this account: try again in \(self.retryAfterSeconds) s "
                    + "(a host you logged in from before is not held back)."
            }
        }
    }

    /// One address's or one account's recent failures and its block.
    struct Counter: Sendable, Hashable {
        var failures: [Duration] = []
        var blockedUntil: Duration?
        /// Blocks in a row (each twice as long as the one before), forgotten after a quiet `window`.
        var strikes = 0
        var lastSeen: Duration
    }

    struct Pair: Hashable, Sendable {
        var account: String
        var address: String
    }

    public let policy: Policy
    private var addresses: [String: Counter] = [:]
    private var accounts: [String: Counter] = [:]
    private var trusted: [Pair: Duration] = [:]

    public init(policy: Policy = Policy()) {
        self.policy = policy
    }

    /// nil when `account` may try a password from `address` now; else the refusal to show.
    public func check(account: String, address: String, now: Duration) -> Refusal? {
        if let until = self.addresses[address]?.blockedUntil, now < until {
            return Refusal(subject: .address, retryAfter: until - now)
        }
        if !self.isTrusted(account: account, address: address, now: now), let until = self.accounts[account]?.blockedUntil, now < until {
            return Refusal(subject: .account, retryAfter: until - now)
        }
        return nil
    }

    /// A wrong password (or an unknown account: counted the same, so the throttle tells nothing about which exist).
    public mutating func recordFailure(account: String, address: String, now: Duration) {
        Self.fail(&self.addresses[address, default: Counter(lastSeen: now)], limit: self.policy.perAddress, now: now, policy: self.policy)
        if !self.isTrusted(account: account, address: address, now: now) {
            Self.fail(&self.accounts[account, default: Counter(lastSeen: now)], limit: self.policy.perAccount, now: now, policy: self.policy)
        }
        self.trim(now: now)
    }

    /// A login: the address's failures are forgotten, and it is trusted for the account from now on.
    public mutating func recordSuccess(account: String, address: String, now: Duration) {
        self.addresses[address] = nil
        self.trusted[Pair(account: account, address: address)] = now
        self.trim(now: now)
    }

    /// Addresses and accounts tracked (for the bound's test).
    public var trackedEntries: Int { self.addresses.count + self.accounts.count + self.trusted.count }

    func isTrusted(account: String, address: String, now: Duration) -> Bool {
        guard let since = self.trusted[Pair(account: account, address: address)] else { return false }
        return now - since < self.policy.trustFor
    }

    static func fail(_ counter: inout Counter, limit: Int, now: Duration, policy: Policy) {
        if now - counter.lastSeen >= policy.window && counter.blockedUntil.map({ now >= $0 }) != false { counter.strikes = 0 }
        counter.lastSeen = now
        counter.failures = counter.failures.filter { now - $0 < policy.window } + [now]
        guard counter.failures.count >= limit else { return }
        counter.strikes += 1
        var block = policy.firstBlock
        for _ in 1..<counter.strikes where block < policy.maxBlock { block = block * 2 }
        counter.blockedUntil = now + min(block, policy.maxBlock)
        counter.failures = []
    }

    /// Forgets what no longer matters, and keeps each table within `capacity` (the stalest entries go).
    mutating func trim(now: Duration) {
        let policy = self.policy
        func stale(_ counter: Counter) -> Bool {
            now - counter.lastSeen >= policy.window && counter.blockedUntil.map { now >= $0 } != false
        }
        if self.addresses.count > policy.capacity / 2 { self.addresses = self.addresses.filter { !stale($0.value) } }
        if self.accounts.count > policy.capacity / 2 { self.accounts = self.accounts.filter { !stale($0.value) } }
        if self.trusted.count > policy.capacity / 2 { self.trusted = self.trusted.filter { now - $0.value < policy.trustFor } }
        Self.cap(&self.addresses, policy.capacity) { $0.lastSeen }
        Self.cap(&self.accounts, policy.capacity) { $0.lastSeen }
        Self.cap(&self.trusted, policy.capacity) { $0 }
    }

    static func cap<Key, Value>(_ table: inout [Key: Value], _ capacity: Int, by time: (Value) -> Duration) {
        guard table.count > capacity else { return }
        let keep = table.sorted { time($0.value) > time($1.value) }.prefix(capacity)
        table = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
    }
}
