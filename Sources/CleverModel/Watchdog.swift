/// A host's watchdog: the device that resets the host when its agent stops petting it (sbd's model). Written
/// in the node config as `watchdog: /dev/watchdog` (softdog or a hardware driver) or `watchdog: none`.
public enum WatchdogSetting: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The device path; the agent opens it, sets the timeout and pets it while the host may run resources.
    case device(String)
    /// No watchdog, on purpose: a hung host is not reset and the cluster relies on the host stopping its own
    /// resources within `self-fence-timeout` (Pacemaker's `stonith-enabled=false`). Status warns.
    case disabled

    public static let noneKeyword = "none"

    public var description: String {
        switch self {
        case .device(let path): path
        case .disabled: Self.noneKeyword
        }
    }

    public var devicePath: String? {
        if case .device(let path) = self { return path }
        return nil
    }

    /// Stored as the string written in the config: a path or "none".
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = text == Self.noneKeyword ? .disabled : .device(text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }
}
