import CleverCluster
import CleverModel

extension AgentCore {
    /// A start on a host whose node config names no watchdog (neither a device nor `none`) is refused: nothing would
    /// reset the host if it hung with the resource running. The refusal is the action's result, as if it had failed
    /// here with "not configured"; nil when the action may run.
    public func refusalWithoutWatchdog(_ request: ActionRequest, now: Timestamp) -> OperationResult? {
        guard [.start, .promote, .migrateFrom].contains(request.action), let node = self.config.node(named: self.localNode),
            node.watchdog == nil
        else { return nil }
        return OperationResult(
            request: request.id, resource: request.resource, node: request.node, action: request.action,
            exitCode: OCFExit.notConfigured, migrationTarget: request.migrationTarget, at: now,
            output: "node \(node.name) has no watchdog configured: set `watchdog: /dev/watchdog` or `watchdog: none` in its node config")
    }
}
