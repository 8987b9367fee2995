import CleverModel

/// On a host set up by `clevervm init`/`join`, corosync.conf follows the cluster config the agents apply: a host
/// added (or removed) on one member reaches every member's nodelist, and Corosync reloads it. Pure.
extension CorosyncConfigFile {
    public enum Follow: Hashable, Sendable {
        /// The file says what the config says (comments aside).
        case unchanged
        /// Write this text, then reload Corosync (`corosync-cfgtool -R`).
        case rewrite(String)
        /// The config cannot become a corosync.conf: the file is left as it is.
        case cannotRender([String])
    }

    /// What to do with `current` (the file's text, nil when there is none) for `config`. Comment lines do not count:
    /// the header names the config's epoch, which every apply raises, and a reload for a resource change would only
    /// disturb Corosync.
    public static func follow(_ config: ClusterConfig, current: String?, options: Options = Options()) -> Follow {
        let text: String
        do { text = try Self.render(config, options: options) } catch { return .cannotRender(error.problems) }
        guard let current, Self.significantLines(current) == Self.significantLines(text) else { return .rewrite(text) }
        return .unchanged
    }

    static func significantLines(_ text: String) -> [Substring] {
        text.split(separator: "\n").filter { line in
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            return !trimmed.isEmpty && !trimmed.hasPrefix("#")
        }
    }
}
