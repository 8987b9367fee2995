import Foundation

/// A cluster.json that cannot be read (a torn write, a disk error, a hand edit) must not keep the agent from
/// starting (issue 11, finding 8): it is moved aside for inspection and the agent starts from the config file;
/// the next sync adopts the cluster's current document from the other members.
extension Agent {
    /// Renames the damaged file to `cluster.json.damaged-UNIXTIME` and returns the error event's text.
    static func setAsideDamagedDocument(at path: String, error: any Error, configPath: String) -> String {
        let aside = "\(path).damaged-\(Int(Date().timeIntervalSince1970))"
        let moved = rename(path, aside) == 0
        return moved
            ? "\(path) is damaged (\(error)); moved it to \(aside) and started from \(configPath)"
            : "\(path) is damaged (\(error)) and cannot be moved aside (\(String(cString: strerror(errno)))); started from \(configPath)"
    }
}
