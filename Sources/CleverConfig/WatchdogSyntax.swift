import CleverModel

/// The watchdog keys' values: the device and the timeouts the kernel and Corosync accept.
extension ValueSyntax {
    /// `none`, or an absolute device path (`/dev/watchdog`, `/dev/watchdog0`, the lab's `/run/clevervm-watchdog`).
    static func watchdog(_ text: String) -> Result<WatchdogSetting, ValueProblem> {
        if text == WatchdogSetting.noneKeyword { return .success(.disabled) }
        guard text.hasPrefix("/"), !text.contains(" "), text.count > 1 else {
            return .failure(ValueProblem("'\(text)' is neither a watchdog device path nor none",
                                         hint: "/dev/watchdog (modprobe softdog, or a hardware driver) or none"))
        }
        return .success(.device(text))
    }

    /// W: the kernel's watchdog API counts whole seconds (WDIOC_SETTIMEOUT), at least 1.
    static func watchdogTimeout(_ text: String) -> Result<Seconds, ValueProblem> {
        self.positiveDuration(text).flatMap { seconds in
            guard seconds.value >= 1, seconds.value == seconds.value.rounded(), seconds.value <= 3600 else {
                return .failure(ValueProblem("a watchdog timeout is whole seconds from 1s to 1h, found '\(text)'",
                                             hint: "the kernel's watchdog timeout is set in seconds, e.g. 5s"))
            }
            return .success(seconds)
        }
    }

    /// corosync-qdevice accepts 1 s … 2 min for its timeouts (whole milliseconds).
    static func qdeviceTimeout(_ text: String) -> Result<Seconds, ValueProblem> {
        self.positiveDuration(text).flatMap { seconds in
            guard seconds.value >= 1, seconds.value <= 120 else {
                return .failure(ValueProblem("a qdevice timeout is from 1s to 2m, found '\(text)'"))
            }
            return .success(seconds)
        }
    }
}

/// Checks that the fencing settings fit together: no policy that keeps a VM or a volume running without quorum,
/// and Corosync timeouts that Corosync and the survivors' wait (`FencingTiming`) can work with.
extension ConfigDecoder {
    mutating func checkFencing(_ decoded: DecodedConfig) {
        let config = decoded.config
        let properties = config.properties
        let neverTwice = config.resources.filter { resource in
            switch resource.kind {
            case .vm, .volume: true
            default: false
            }
        }
        if properties.noQuorumPolicy != .stop, let first = neverTwice.first {
            self.report(
                "no-quorum-policy \(properties.noQuorumPolicy.rawValue) keeps \(first.kind.typeName) '\(first.id)' running in a "
                    + "partition without quorum while the quorate side starts it too: it would run twice",
                path: "cluster.properties.no-quorum-policy",
                hint: "use stop (the default) when the cluster has vm or volume resources")
        }
        let timing = FencingTiming(config: config)
        if timing.consensus.value < timing.token.value * 1.2 - 1e-9 {
            self.report(
                "consensus \(timing.consensus) is shorter than 1.2 × token (\(timing.token)); Corosync needs at least that",
                path: properties.consensus != nil ? "cluster.properties.consensus" : "cluster.properties.token",
                hint: "leave consensus out (1.2 × token) or raise it")
        }
        if let timeout = timing.qdeviceTimeout, let sync = timing.qdeviceSyncTimeout, sync < timeout {
            self.report(
                "quorum sync-timeout \(sync) is shorter than timeout \(timeout); corosync-qdevice needs sync-timeout ≥ timeout",
                path: config.quorum?.syncTimeout != nil ? "quorum.sync-timeout" : "quorum.timeout")
        }
        // A watchdog that fires sooner than a token resets a host for a pause Corosync itself tolerates.
        for (node, path) in zip(config.nodes, decoded.nodePaths) where node.watchdog?.devicePath != nil {
            let w = timing.watchdogTimeout(of: node)
            if w.value < timing.token.value {
                self.report(
                    "watchdog-timeout \(w) of node '\(node.name)' is shorter than the token (\(timing.token)): a pause "
                        + "Corosync tolerates would reset the host",
                    path: node.watchdogTimeout != nil ? KeyPath.child(path, "watchdog-timeout") : "cluster.properties.watchdog-timeout",
                    hint: "a watchdog timeout of at least the token timeout")
            }
        }
    }
}
