/// How long survivors wait before starting what a departed host ran, derived from the config, and the bounds
/// the watchdog petting on every host keeps (docs/architecture.md, "Fencing").
///
/// The argument, for a fault at time 0 (a cut, a frozen Corosync, a hung agent, a stuck host):
/// - a host pets its watchdog only while its agent loop and its Corosync answered within `livenessBound` and
///   it counts itself quorate (or runs nothing); so its last pet is no later than `lossBound` after the fault
///   (with a qdevice, votequorum drops a qdevice vote not renewed within the qdevice timeout, and the agent
///   hears the verdict within a token more; without one the verdict comes with the new ring; a silent agent loop
///   or Corosync stops the petting after `livenessBound`, which is no longer);
/// - its watchdog resets it at most W (+ `resetLatency`) after that last pet;
/// - a survivor's view change comes no earlier than one token timeout after the fault.
/// Hence a survivor that waits `lossBound + W + resetLatency - token` after its own view change (on a
/// monotonic clock) starts nothing before the departed host's last possible pet + W. Never shorter than W.
public struct FencingTiming: Hashable, Sendable {
    public static let defaultWatchdogTimeout = Seconds(5)
    public static let defaultToken = Seconds(1)
    public static let defaultQdeviceTimeout = Seconds(3)
    public static let defaultQdeviceSyncTimeout = Seconds(5)
    /// From the watchdog's expiry to the host being gone (a reset, or the lab's power-off).
    public static let resetLatency = Seconds(0.25)
    /// How often the petting thread re-checks the conditions and pets (far below any W, which is ≥ 1 s).
    public static let petInterval = Seconds(0.1)

    public var token: Seconds
    public var consensus: Seconds
    /// nil without a qdevice.
    public var qdeviceTimeout: Seconds?
    public var qdeviceSyncTimeout: Seconds?
    public var watchdogTimeout: Seconds
    public var selfFenceTimeout: Seconds

    public init(config: ClusterConfig) {
        let properties = config.properties
        self.token = properties.token ?? Self.defaultToken
        self.consensus = properties.consensus ?? Seconds(self.token.value * 1.2)
        let qdevice = config.quorum?.qdeviceHost != nil
        self.qdeviceTimeout = qdevice ? config.quorum?.timeout ?? Self.defaultQdeviceTimeout : nil
        self.qdeviceSyncTimeout = qdevice ? config.quorum?.syncTimeout ?? Self.defaultQdeviceSyncTimeout : nil
        self.watchdogTimeout = properties.watchdogTimeout ?? Self.defaultWatchdogTimeout
        self.selfFenceTimeout = properties.selfFenceTimeout
    }

    /// W of one host: its own override, else the cluster's.
    public func watchdogTimeout(of node: NodeConfig) -> Seconds { node.watchdogTimeout ?? self.watchdogTimeout }

    /// The agent loop must have beaten, and Corosync answered, within this for the host to pet. As long as the
    /// loss bound: the survivors' wait covers a host that stops petting that late anyway, and Corosync's IPC stalls
    /// for a second or two during a membership change on a loaded host (measured in the lab: 2.0 s while a peer
    /// rejoined), which a bound of one token turned into a reset of the survivor.
    public var livenessBound: Seconds { self.lossBound }

    /// After a fault, the longest a host may still count itself quorate (and pet).
    public var lossBound: Seconds {
        if let qdeviceTimeout { return Seconds(qdeviceTimeout.value + self.token.value) }
        return Seconds(self.token.value + self.consensus.value)
    }

    /// How long after its own view change a survivor waits before starting what `node` ran: that host's last
    /// possible pet + its W (or, with `watchdog: none`, its self-fence time) + the reset itself.
    public func survivorWait(for node: NodeConfig?) -> Seconds {
        let stop = node?.watchdog?.devicePath != nil ? self.watchdogTimeout(of: node!) : self.selfFenceTimeout
        let wait = self.lossBound.value - self.token.value + stop.value + Self.resetLatency.value
        return Seconds(max(wait, stop.value + Self.resetLatency.value))
    }
}
