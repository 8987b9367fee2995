import CleverSystem
import Foundation
import HummingbirdBcrypt

/// What a console user may do. A viewer sees everything and may simulate; an operator may also act.
public enum Role: String, Codable, Hashable, Sendable, CaseIterable, Comparable {
    case viewer, `operator`

    public static func < (lhs: Role, rhs: Role) -> Bool {
        Self.allCases.firstIndex(of: lhs)! < Self.allCases.firstIndex(of: rhs)!
    }
}

/// A local console account. Only a bcrypt hash of the password is kept.
public struct Account: Codable, Hashable, Sendable {
    public var name: String
    public var role: Role
    public var passwordHash: String

    public init(name: String, role: Role, passwordHash: String) {
        self.name = name
        self.role = role
        self.passwordHash = passwordHash
    }
}

/// The accounts file (JSON, mode 0600, written atomically), managed by `clevervm-web user …`.
public struct AccountFile: Sendable {
    public static let defaultPath = "/etc/clevervm/web-users.json"
    public static let minimumPasswordLength = 10
    /// bcrypt's work factor: about a quarter of a second per login on this class of machine.
    public static let bcryptCost: UInt8 = 12

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    public var path: String
    public private(set) var accounts: [Account]

    public init(path: String, accounts: [Account] = []) {
        self.path = path
        self.accounts = accounts
    }

    /// Reads the file; a missing file is an empty account list.
    public static func load(path: String) throws(Failure) -> AccountFile {
        guard FileManager.default.fileExists(atPath: path) else { return AccountFile(path: path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure("\(path): cannot read the accounts file (permissions?)")
        }
        do {
            return AccountFile(path: path, accounts: try JSONDecoder().decode([Account].self, from: data))
        } catch {
            throw Failure("\(path): not a valid accounts file: \(error)")
        }
    }

    public func save() throws(Failure) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do { data = try encoder.encode(self.accounts) } catch { throw Failure("cannot encode the accounts: \(error)") }
        let directory = (self.path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        do { try AtomicFile.write(data, to: self.path, mode: 0o600) } catch { throw Failure(error.description) }
    }

    public func account(named name: String) -> Account? { self.accounts.first { $0.name == name } }

    /// Adds an account, or replaces the password and role of an existing one when `replace` is set.
    public mutating func set(name: String, role: Role, password: String, replace: Bool, cost: UInt8 = Self.bcryptCost) throws(Failure) {
        try Self.validate(name: name)
        guard password.count >= Self.minimumPasswordLength else {
            throw Failure("the password for '\(name)' is too short: at least \(Self.minimumPasswordLength) characters")
        }
        let existing = self.accounts.firstIndex { $0.name == name }
        if existing != nil, !replace { throw Failure("account '\(name)' exists already (use `user passwd` to change it)") }
        if existing == nil, replace { throw Failure("no account named '\(name)' (use `user add` to create it)") }
        let account = Account(name: name, role: role, passwordHash: Bcrypt.hash(password, cost: cost))
        if let existing { self.accounts[existing] = account } else { self.accounts.append(account) }
    }

    public mutating func remove(name: String) throws(Failure) {
        guard let index = self.accounts.firstIndex(where: { $0.name == name }) else {
            throw Failure("no account named '\(name)' in \(self.path)")
        }
        self.accounts.remove(at: index)
    }

    /// The account if the password matches. The same work is done for an unknown name, so timing does not
    /// tell which names exist.
    public func verify(name: String, password: String) -> Account? {
        guard let account = self.account(named: name) else {
            _ = Bcrypt.verify(password, hash: Self.decoyHash)
            return nil
        }
        return Bcrypt.verify(password, hash: account.passwordHash) ? account : nil
    }

    static func validate(name: String) throws(Failure) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard !name.isEmpty, name.count <= 64, name.allSatisfy(allowed.contains) else {
            throw Failure("invalid account name '\(name)': 1 to 64 of letters, digits, '.', '_' and '-'")
        }
    }

    /// A bcrypt hash of nothing anyone types, for the unknown-name path.
    static let decoyHash = Bcrypt.hash("decoy-password-never-used", cost: Self.bcryptCost)
}
