/// How long survivors wait before starting what a departed host ran, derived from the config, and the bounds
/// the watchdog petting on every host keeps (docs/architecture.md, "Fencing").
///
/// The argument, for a fault at time 0 (a cut, a frozen Corosync, a hung agent, a stuck host):
/// - a host pets its watchdog only while its agent loop and its Corosync answered within `livenessBound` and
///   it counts itself quorate (or runs nothing); so its last pet is no later than `lastPetBound` after the fault
///   (with a qdevice, votequorum drops a qdevice vote not renewed within the qdevice timeout, and the agent
///   hears the verdict within a token more (`lossBound`); without one the verdict comes with the new ring; a
///   silent agent loop or Corosync stops the petting after `livenessBound`);
/// - its watchdog resets it at most W (+ `resetLatency`) after that last pet;
/// - a survivor's view change comes no earlier than one token timeout after the fault.
/// Hence a survivor that waits `lastPetBound + W + resetLatency - token` after its own view change (on a
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

    /// The agent loop must have beaten, and Corosync answered, within this for the host to pet: the longest Corosync
    /// may legitimately keep its IPC (and with it the agent, blocked in a CPG call) silent — a membership change
    /// (token + consensus) and its sync, which with a qdevice waits up to the qdevice sync timeout. Measured in the
    /// lab: 1.1 s when a peer left and more than 3 s while it rejoined; a bound of one token reset the survivor.
    public var livenessBound: Seconds {
        Seconds(self.token.value + self.consensus.value + (self.qdeviceSyncTimeout?.value ?? 0))
    }

    /// After a fault, the latest a host may still pet: while it counts itself quorate, or until its silent agent
    /// loop or Corosync exceeds the liveness bound.
    public var lastPetBound: Seconds { max(self.lossBound, self.livenessBound) }

    /// After a fault, the longest a host may still count itself quorate (and pet).
    public var lossBound: Seconds {
        if let qdeviceTimeout { return Seconds(qdeviceTimeout.value + self.token.value) }
        return Seconds(self.token.value + self.consensus.value)
    }

    /// How long after its own view change a survivor waits before starting what `node` ran: that host's last
    /// possible pet + its W (or, with `watchdog: none`, its self-fence time) + the reset itself.
    public func survivorWait(for node: NodeConfig?) -> Seconds {
        // Without a watchdog nothing bounds the departed host's last act but its own self-fence: the survivors wait
        // the self-fence time, as before watchdog fencing (Pacemaker's stonith-enabled=false; status warns).
        guard let node, node.watchdog?.devicePath != nil else { return self.selfFenceTimeout }
        let stop = self.watchdogTimeout(of: node)
        let wait = self.lastPetBound.value - self.token.value + stop.value + Self.resetLatency.value
        return Seconds(max(wait, stop.value + Self.resetLatency.value))
    }
}
