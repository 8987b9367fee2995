extension StatusReport {
    /// Hosts nothing resets when they hang (issue 11): said in status as Pacemaker says `stonith-enabled=false`.
    var watchdogProblems: [String] {
        self.nodes.compactMap { node in
            switch node.watchdog {
            case "none":
                "node \(node.name) runs without a watchdog (watchdog: none): if it hangs with a VM running, nothing resets it "
                    + "and the VM may run twice"
            case nil:
                "node \(node.name) has no watchdog configured: it runs no resources (set `watchdog: /dev/watchdog` or "
                    + "`watchdog: none` in its node config)"
            default:
                nil
            }
        }
    }
}
