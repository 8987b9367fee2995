/// The accounts file as the running console sees it: read again at each login, so `clevervm-web user …`
/// takes effect without a restart.
public actor AccountDirectory {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public func verify(name: String, password: String) -> Account? {
        guard let file = try? AccountFile.load(path: self.path) else { return nil }
        return file.verify(name: name, password: password)
    }

    public func isEmpty() -> Bool {
        (try? AccountFile.load(path: self.path))?.accounts.isEmpty ?? true
    }
}
