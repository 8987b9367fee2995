import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A set of file changes that is done whole or not at all: every file replaced or created is remembered
/// (its old bytes and mode) before it is touched, so `rollBack()` puts the host back as it was. Each single
/// write is atomic (AtomicFile); the set is made whole by rolling back on the first failure.
public final class FileTransaction {
    private enum Before {
        case absent
        case file(Data, mode_t)
    }

    private var touched: [(path: String, before: Before)] = []
    private var createdDirectories: [String] = []

    public init() {}

    /// The paths changed so far, in order.
    public var paths: [String] { self.touched.map(\.path) }

    /// Creates `path` and its missing parents (remembered, removed again on roll-back if still empty).
    public func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(AtomicFile.WriteError) {
        var missing: [String] = []
        var current = path
        while !current.isEmpty, current != "/", !FileManager.default.fileExists(atPath: current) {
            missing.append(current)
            current = (current as NSString).deletingLastPathComponent
        }
        for directory in missing.reversed() {
            guard mkdir(directory, mode) == 0 || errno == EEXIST else {
                throw AtomicFile.WriteError(path: directory, reason: "mkdir: \(String(cString: strerror(errno)))")
            }
            self.createdDirectories.append(directory)
        }
    }

    /// Remembers `path` as it is now; call before changing it by other means (e.g. a command writing it).
    public func willChange(_ path: String) {
        guard !self.touched.contains(where: { $0.path == path }) else { return }
        var info = stat()
        if stat(path, &info) == 0, let data = FileManager.default.contents(atPath: path) {
            self.touched.append((path, .file(data, info.st_mode & 0o7777)))
        } else {
            self.touched.append((path, .absent))
        }
    }

    public func write(_ data: Data, to path: String, mode: mode_t) throws(AtomicFile.WriteError) {
        try self.makeDirectory((path as NSString).deletingLastPathComponent)
        self.willChange(path)
        try AtomicFile.write(data, to: path, mode: mode)
        // A replaced file keeps the mode asked for, not the old one's.
        chmod(path, mode)
    }

    /// Puts every remembered file back (newest change first) and removes the directories it made.
    /// Returns what could not be restored.
    @discardableResult
    public func rollBack() -> [String] {
        var problems: [String] = []
        for (path, before) in self.touched.reversed() {
            switch before {
            case .absent:
                if unlink(path) != 0, errno != ENOENT { problems.append("remove \(path): \(String(cString: strerror(errno)))") }
            case .file(let data, let mode):
                do { try AtomicFile.write(data, to: path, mode: mode); chmod(path, mode) } catch { problems.append(error.description) }
            }
        }
        for directory in self.createdDirectories.reversed() { rmdir(directory) }
        self.touched.removeAll()
        self.createdDirectories.removeAll()
        return problems
    }
}
