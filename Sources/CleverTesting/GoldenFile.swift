import Foundation

/// Checked-in bytes a test compares against: wire formats that must not change by accident.
public enum GoldenFile {
    public struct Missing: Error, CustomStringConvertible {
        public var path: String
        public var description: String { "golden file \(self.path) is missing (CLEVERVM_WRITE_GOLDEN=1 writes it; review the diff)" }
    }

    /// The stored text of `name` in `directory` and the text of `bytes`, for the test to compare.
    /// With `CLEVERVM_WRITE_GOLDEN=1` the file is written from `bytes` first (then review the diff).
    public static func stored(_ bytes: [UInt8], name: String, in directory: URL) throws -> (stored: String, actual: String) {
        let url = directory.appendingPathComponent(name)
        let actual = String(decoding: bytes, as: UTF8.self)
        if ProcessInfo.processInfo.environment["CLEVERVM_WRITE_GOLDEN"] == "1" { try Data((actual + "\n").utf8).write(to: url) }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw Missing(path: url.path) }
        return (String(decoding: data.dropLast(), as: UTF8.self), actual)
    }
}
