import CleverWeb
import Testing

/// Login rate limiting: per address, per account, never a lockout an attacker can hold against the admin.
struct LoginThrottleTests {
    let policy = LoginThrottle.Policy(perAddress: 4, perAccount: 3, window: .seconds(600), firstBlock: .seconds(30),
                                      maxBlock: .seconds(120), trustFor: .seconds(86_400))

    @Test func anAddressIsHeldBackAfterTooManyFailuresAndTheBlockEnds() {
        var throttle = LoginThrottle(policy: self.policy)
        // Four failures over four accounts (none reaches the account limit): the address is blocked.
        for (index, name) in ["a", "b", "c", "d"].enumerated() {
            #expect(throttle.check(account: name, address: "192.0.2.7", now: .seconds(index)) == nil)
            throttle.recordFailure(account: name, address: "192.0.2.7", now: .seconds(index))
        }
        let refusal = throttle.check(account: "e", address: "192.0.2.7", now: .seconds(4))
        #expect(refusal?.subject == .address)
        #expect(refusal?.retryAfterSeconds == 29)
        #expect(refusal?.message == "Too many failed logins from your address: try again in 29 s.")
        // Another address is not affected.
        #expect(throttle.check(account: "e", address: "192.0.2.8", now: .seconds(4)) == nil)
        // The block ends by itself.
        #expect(throttle.check(account: "e", address: "192.0.2.7", now: .seconds(33)) == nil)
    }

    @Test func blocksDoubleWhileFailuresGoOnUpToTheMaximum() {
        var throttle = LoginThrottle(policy: self.policy)
        var now = Duration.zero
        var blocks: [Int] = []
        for _ in 0..<5 {
            while throttle.check(account: "x", address: "192.0.2.7", now: now) == nil {
                throttle.recordFailure(account: "x\(now)", address: "192.0.2.7", now: now)
                now += .seconds(1)
            }
            let refusal = throttle.check(account: "x", address: "192.0.2.7", now: now)!
            blocks.append(refusal.retryAfterSeconds)
            now += refusal.retryAfter
        }
        #expect(blocks == [29, 59, 119, 119, 119])
        // A quiet window later, the next block is short again.
        now += .seconds(600)
        for _ in 0..<4 { throttle.recordFailure(account: "y\(now)", address: "192.0.2.7", now: now) }
        #expect(throttle.check(account: "y", address: "192.0.2.7", now: now)?.retryAfterSeconds == 30)
    }

    @Test func anAttackOnTheAdminDoesNotLockTheAdminOut() {
        var throttle = LoginThrottle(policy: self.policy)
        // The admin logged in from their workstation once.
        throttle.recordSuccess(account: "admin", address: "198.51.100.20", now: .zero)
        // An attacker fails on admin from many addresses (each below the address limit).
        for index in 0..<30 {
            let address = "203.0.113.\(index % 10)"
            if throttle.check(account: "admin", address: address, now: .seconds(10 + index)) == nil {
                throttle.recordFailure(account: "admin", address: address, now: .seconds(10 + index))
            }
        }
        // New addresses are held back on admin, with a message saying why…
        let refusal = throttle.check(account: "admin", address: "203.0.113.99", now: .seconds(40))
        #expect(refusal?.subject == .account)
        #expect(refusal?.message.contains("a host you logged in from before is not held back") == true)
        // …but the admin's own host is not, and neither is another account.
        #expect(throttle.check(account: "admin", address: "198.51.100.20", now: .seconds(40)) == nil)
        #expect(throttle.check(account: "olga", address: "203.0.113.99", now: .seconds(40)) == nil)
        // And the account's block is short: it ends on its own even for new addresses.
        #expect(throttle.check(account: "admin", address: "203.0.113.99", now: .seconds(40 + 120)) == nil)
    }

    @Test func aLoginForgetsTheAddressesFailures() {
        var throttle = LoginThrottle(policy: self.policy)
        for second in 0..<3 { throttle.recordFailure(account: "olga\(second)", address: "192.0.2.7", now: .seconds(second)) }
        throttle.recordSuccess(account: "olga", address: "192.0.2.7", now: .seconds(3))
        throttle.recordFailure(account: "olga9", address: "192.0.2.7", now: .seconds(4))
        #expect(throttle.check(account: "olga", address: "192.0.2.7", now: .seconds(5)) == nil)
    }

    @Test func theTablesStayBounded() {
        var throttle = LoginThrottle(policy: .init(perAddress: 100, perAccount: 100, capacity: 50))
        for index in 0..<1_000 { throttle.recordFailure(account: "u\(index)", address: "10.\(index / 256).\(index % 256).1", now: .seconds(index)) }
        #expect(throttle.trackedEntries <= 100)
    }
}
