import CleverControl
import CleverModel
import CleverWeb
import Foundation
import Testing

/// The console's pure parts: sessions, accounts, the event filter, quoting.
struct CoreTests {
    @Test func aSessionEndsWhenIdleOrTooOld() {
        var table = SessionTable(idleTimeout: .seconds(10), lifetime: .seconds(25))
        _ = table.open(token: "t", csrfToken: "c", user: "olga", role: .operator, now: .zero)
        #expect(table.touch(token: "t", now: .seconds(9))?.user == "olga")
        #expect(table.touch(token: "t", now: .seconds(18))?.user == "olga")
        // Active all along, but 25 s after login: over.
        #expect(table.touch(token: "t", now: .seconds(25)) == nil)
        #expect(table.count == 0)
        _ = table.open(token: "u", csrfToken: "c", user: "olga", role: .operator, now: .seconds(30))
        #expect(table.touch(token: "u", now: .seconds(40)) == nil)
        #expect(table.touch(token: "nope", now: .seconds(40)) == nil)
    }

    @Test func closingAllSessionsOfAUser() {
        var table = SessionTable()
        _ = table.open(token: "a", csrfToken: "x", user: "olga", role: .operator, now: .zero)
        _ = table.open(token: "b", csrfToken: "y", user: "victor", role: .viewer, now: .zero)
        table.closeAll(user: "olga")
        #expect(table.touch(token: "a", now: .seconds(1)) == nil)
        #expect(table.touch(token: "b", now: .seconds(1))?.role == .viewer)
    }

    @Test func accountsKeepOnlyABcryptHash() throws {
        let path = "/tmp/cvw-accounts-\(UUID().uuidString.prefix(8)).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var file = AccountFile(path: path)
        try file.set(name: "olga", role: .operator, password: "correct horse battery", replace: false, cost: 4)
        try file.save()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains("correct horse"))
        #expect(text.contains("$2b$04$"))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let loaded = try AccountFile.load(path: path)
        #expect(loaded.verify(name: "olga", password: "correct horse battery")?.role == .operator)
        #expect(loaded.verify(name: "olga", password: "wrong horse battery") == nil)
        #expect(loaded.verify(name: "nobody", password: "correct horse battery") == nil)
    }

    @Test func badAccountInputIsRefusedAndChangesNothing() throws {
        var file = AccountFile(path: "/tmp/unused.json")
        #expect(throws: AccountFile.Failure.self) { try file.set(name: "olga", role: .viewer, password: "short", replace: false, cost: 4) }
        #expect(throws: AccountFile.Failure.self) { try file.set(name: "bad name", role: .viewer, password: "long enough pw", replace: false, cost: 4) }
        #expect(throws: AccountFile.Failure.self) { try file.set(name: "olga", role: .viewer, password: "long enough pw", replace: true, cost: 4) }
        #expect(throws: AccountFile.Failure.self) { try file.remove(name: "olga") }
        #expect(file.accounts.isEmpty)
        try file.set(name: "olga", role: .viewer, password: "long enough pw", replace: false, cost: 4)
        do {
            try file.set(name: "olga", role: .viewer, password: "another long pw", replace: false, cost: 4)
            Issue.record("a second add of the same name must fail")
        } catch {
            #expect(error.description.contains("exists already"))
        }
    }

    @Test func eventsFilterByWholeNames() {
        let at = Timestamp(seconds: 0)
        let events = [
            EventRecord(at: at, node: "alpha", text: "started vm1 on alpha"),
            EventRecord(at: at, node: "beta", text: "started vm10 on beta"),
            EventRecord(at: at, node: "alpha", text: "moved vm1 to beta"),
        ]
        #expect(EventFilter(vm: "vm1", host: nil).apply(events).map(\.text) == ["started vm1 on alpha", "moved vm1 to beta"])
        #expect(EventFilter(vm: nil, host: "beta").apply(events).count == 2)
        #expect(EventFilter(vm: "vm1", host: "beta").apply(events).map(\.text) == ["moved vm1 to beta"])
        #expect(EventFilter(vm: "", host: "").apply(events).count == 3)
    }

    @Test func equivalentCommandsQuoteWhatTheShellWouldSplit() {
        #expect(EquivalentCommand.of(.migrate(node: "alpha", to: "beta", expires: nil), lifetime: "2h") == "clevervm migrate --node alpha --to beta --lifetime 2h")
        #expect(EquivalentCommand.of(.cleanup(resource: "vm 1", node: nil)) == "clevervm cleanup 'vm 1'")
        #expect(EquivalentCommand.of(.unmigrate(node: .thisHost)) == "clevervm unmigrate")
        #expect(Shell.quote("it's") == #"'it'\''s'"#)
    }

    @Test func rolesAreOrdered() {
        #expect(Role.viewer < Role.operator)
        #expect(AccessPolicy.requirement(method: .post, path: "/api/v1/simulate") == .viewer)
        #expect(AccessPolicy.requirement(method: .delete, path: "/api/v1/status") == .operator)
        #expect(AccessPolicy.requirement(method: .post, path: "/static/app.js") == .operator)
    }
}
